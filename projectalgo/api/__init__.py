"""The HTTP API mounted beside the Reflex app (rx.App(api_transformer=...)): wiring only."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from projectalgo import __version__
from projectalgo.api.errors import error_response
from projectalgo.api.health import router as health_router
from projectalgo.api.stripe_webhook import router as stripe_webhook_router

log = logging.getLogger("projectalgo.api")


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, getattr(exc, "headers", None))


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, "invalid", [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()])


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("api.unhandled_error path=%s", request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")


def build_api() -> FastAPI:
    api = FastAPI(
        title="ProjectAlgo API",
        version=__version__,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(Exception, _unexpected_error)
    api.include_router(health_router)
    api.include_router(stripe_webhook_router)

    # Everything else is served by Reflex's front end; an unknown /api/ path is an API error, not a page.
    @api.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unknown_api_route(path: str) -> JSONResponse:
        return error_response(404, "not_found", f"There is no API route /api/{path}.")

    return api
