"""The API's one error shape: {"error": <code>, "detail": <human text or list>}, never a traceback; and the one
mapping of the domain's refusals (projectalgo.errors) to HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from projectalgo.errors import (
    SOMETHING_WRONG,
    ConflictError,
    DomainError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
    RateLimitedError,
    TryLaterError,
    UnauthenticatedError,
    UnavailableError,
    UnreadableError,
)

log = logging.getLogger("projectalgo.api")
# The OpenAPI schema of every error answer.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. invalid_snapshot."},
        "detail": {"description": "Human text, or a list naming every problem."},
    },
}


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error answers, each in the one error shape."""
    return {
        status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for status, text in descriptions.items()
    }


class TooLargeError(Exception):
    """A request body over the route's limit."""


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The request's body, refused (TooLargeError) as soon as it is known to be over `max_bytes`: by its
    Content-Length, or while it streams in, never read whole first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLargeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise TooLargeError
    return bytes(body)


def error_response(status: int, error: str, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


# The status of each kind of refusal: an error's most specific kind decides (the first of its class's MRO here).
STATUS: dict[type[DomainError], int] = {
    UnreadableError: 400,
    InvalidInputError: 422,
    UnauthenticatedError: 401,
    NotAllowedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    RateLimitedError: 429,
    UnavailableError: 503,
    DomainError: 400,  # a refusal of no more precise kind
}


def refusal_response(error: DomainError) -> JSONResponse:
    """The HTTP answer to a domain refusal: its kind's status and its code; as detail, every problem it names,
    else its message; Retry-After when it says when to try again."""
    status = next(STATUS[kind] for kind in type(error).__mro__ if kind in STATUS)
    headers = {"Retry-After": str(error.retry_after_seconds)} if isinstance(error, TryLaterError) else None
    return error_response(status, error.code, error.problems or error.message, headers)


async def refusal(_request: Request, exc: DomainError) -> JSONResponse:
    """A route's refusal that it did not answer itself."""
    return refusal_response(exc)


def method_not_allowed(method: str, path: str, allowed: list[str]) -> JSONResponse:
    """405 with the Allow header (RFC 9110): `path` exists, but not for `method`."""
    allow = ", ".join(allowed)
    return error_response(
        405, "method_not_allowed", f"{path} does not answer {method}; it answers {allow}.", {"Allow": allow}
    )


async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, getattr(exc, "headers", None))


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, "invalid", [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()])


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("api.unhandled_error path=%s", request.url.path, exc_info=exc)
    return error_response(500, "internal_error", SOMETHING_WRONG)
