"""The HTTP API mounted beside the Reflex app (rx.App(api_transformer=...)): wiring only."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

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
    api.include_router(health_router)
    api.include_router(ingest_router)
    api.include_router(downloads_router)
    api.include_router(stripe_webhook_router)

    # Everything else is served by Reflex's front end; an unknown /api/ path is an API error, not a page.
    @api.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unknown_api_route(path: str) -> JSONResponse:
        return errors.error_response(404, "not_found", f"There is no API route /api/{path}.")

    return api


def around_reflex(reflex_app: ASGIApp) -> FastAPI:
    """rx.App(api_transformer=around_reflex): the API first, then Reflex for every other path.

    A function rather than the FastAPI app itself: Reflex then adds its CORS middleware only once, around
    everything (rxconfig's cors_allowed_origins), instead of a second time around the API.
    """
    api = build_api()
    api.mount("", reflex_app)
    return api
