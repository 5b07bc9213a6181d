"""The HTTP API mounted beside the Reflex app (rx.App(api_transformer=...)): wiring only."""

from __future__ import annotations

import functools
import itertools

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from projectalgo import __version__
from projectalgo.api import errors
from projectalgo.api.downloads import router as downloads_router
from projectalgo.api.health import router as health_router
from projectalgo.api.ingest import router as ingest_router
from projectalgo.api.stripe_webhook import router as stripe_webhook_router
from projectalgo.errors import DomainError

TITLE = "ProjectAlgo API"
OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"
# Swagger UI's files, served by the app itself: the CSP names no other host, and CI has no internet.
DOCS_ASSETS_URL = "/api/docs/assets"
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def build_api() -> FastAPI:
    api = FastAPI(
        title=TITLE,
        version=__version__,
        description="Trading bots post snapshots of their strategies here.",
        # FastAPI's own docs page loads Swagger UI from a CDN: ours below serves it from the app.
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
    )
    # FastAPI's decorator, called: Starlette's add_exception_handler types a handler as taking any Exception.
    api.exception_handler(StarletteHTTPException)(errors.http_error)
    api.exception_handler(RequestValidationError)(errors.validation_error)
    api.exception_handler(DomainError)(errors.refusal)
    api.exception_handler(Exception)(errors.unexpected_error)
    api.include_router(health_router)  # its 503s are declared route by route (live has none)
    api.include_router(ingest_router)
    api.include_router(downloads_router)
    api.include_router(stripe_webhook_router)
    api.add_route(DOCS_URL, _docs_page, methods=["GET"], include_in_schema=False)  # HEAD too, as FastAPI's
    api.mount(DOCS_ASSETS_URL, _SwaggerAssets(directory=swagger_ui_path), name="docs-assets")

    # Everything else is served by Reflex's front end; an unknown /api/ path is an API error, not a page.
    api.router.routes.append(_unknown_api_route(api))
    return api


@functools.cache
def docs_html() -> str:
    """Swagger UI's page at /api/docs, made once: http_policy hashes this very text's inline script into the
    page's CSP, so what is served and what is allowed cannot drift apart (a FastAPI upgrade changes both)."""
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon-32x32.png",
        # No online validator badge: it would load an image from another host.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return bytes(page.body).decode("utf-8")


async def _docs_page(_request: Request) -> HTMLResponse:
    return HTMLResponse(docs_html())


class _SwaggerAssets(StaticFiles):
    """Only the files the docs page loads, not the rest of swagger-ui-dist (its demo page, source maps)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in DOCS_ASSETS:
            raise StarletteHTTPException(404, f"There is no API route {scope['path']}.")
        return await super().get_response(path, scope)


# The methods an Allow header may name (RFC 9110's, less CONNECT, plus PATCH and QUERY).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY")


class _UnknownApiRoute:
    """Every method on /api/<anything> that no route before it answered: 405 with Allow when another method of
    that path is an API route, else 404; both in the API's error shape. An ASGI endpoint, so that Starlette
    routes every method here rather than answering a method it does not list itself."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        # The API's own routes: those before this one (Reflex is mounted after it, on every path).
        routes = list(itertools.takewhile(lambda route: getattr(route, "endpoint", None) is not self, self.api.routes))
        allowed = [
            method
            for method in METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
        ]
        if allowed:
            response = errors.method_not_allowed(request.method, request.url.path, allowed)
        else:
            response = errors.error_response(404, "not_found", f"There is no API route {request.url.path}.")
        await response(scope, receive, send)


def _unknown_api_route(api: FastAPI) -> Route:
    return Route("/api/{path:path}", _UnknownApiRoute(api), include_in_schema=False)


def around_reflex(reflex_app: ASGIApp) -> FastAPI:
    """rx.App(api_transformer=around_reflex): the API first, then Reflex for every other path.

    A function rather than the FastAPI app itself: Reflex then adds its CORS middleware only once, around
    everything (rxconfig's cors_allowed_origins), instead of a second time around the API.
    """
    api = build_api()
    api.mount("", reflex_app)
    return api
