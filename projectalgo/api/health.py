"""GET /api/v1/health: is the process up, and which database and snapshot store it uses."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from projectalgo import __version__
from projectalgo.runtime import services

router = APIRouter()


def _database_reachable() -> bool:
    try:
        with services().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable" for a health check
        return False


@router.get("/api/v1/health", tags=["health"])
async def health() -> JSONResponse:
    settings = services().settings
    database_ok = await anyio.to_thread.run_sync(_database_reachable)
    body = {
        "status": "ok" if database_ok else "degraded",
        "version": __version__,
        "environment": settings.app_env,
        "database": {"backend": settings.database_backend, "reachable": database_ok},
        "snapshot_store": settings.snapshot_store,
    }
    return JSONResponse(body, status_code=200 if database_ok else 503)
