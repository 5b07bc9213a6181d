"""The HTTP API mounted beside the Reflex app (rx.App(api_transformer=...)): wiring only."""

from __future__ import annotations

import itertools

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from projectalgo import __version__
from projectalgo.api import errors
from projectalgo.api.downloads import router as downloads_router
from projectalgo.api.health import router as health_router
from projectalgo.api.ingest import router as ingest_router
from projectalgo.api.stripe_webhook import router as stripe_webhook_router


def build_api() -> FastAPI:
    api = FastAPI(
        title="ProjectAlgo API",
        version=__version__,
        description="Trading bots post snapshots of their strategies here.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    api.add_exception_handler(StarletteHTTPException, errors.http_error)
    api.add_exception_handler(RequestValidationError, errors.validation_error)
    api.add_exception_handler(Exception, errors.unexpected_error)
    api.include_router(
        health_router,
        responses={503: {"description": "Degraded: the database is unreachable.", "content": {"application/json": {}}}},
    )
    api.include_router(ingest_router)
    api.include_router(downloads_router)
    api.include_router(stripe_webhook_router)

    # Everything else is served by Reflex's front end; an unknown /api/ path is an API error, not a page.
    api.router.routes.append(_unknown_api_route(api))
    return api


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
