"""The one shape of every API error."""

from __future__ import annotations

from fastapi.responses import JSONResponse


def error_response(status: int, error: str, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every API error has this one shape: {"error": <code>, "detail": <human text or list>}."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)
