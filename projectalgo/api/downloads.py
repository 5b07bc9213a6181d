"""GET /api/v1/strategies/<id>/snapshots.csv: a strategy's snapshots as CSV, through a signed link."""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from projectalgo import exports, strategies
from projectalgo.accounts import Actor
from projectalgo.api.errors import error_response
from projectalgo.db import session_scope
from projectalgo.models import User
from projectalgo.runtime import services

router = APIRouter(tags=["members"])


def _may_read(user_id: int, strategy_id: int) -> str | None:
    """The strategy's name when the (still enabled) user may read it now, else None."""
    with session_scope(services().engine) as session:
        user = session.get(User, user_id)
        if user is None or user.disabled_at is not None:
            return None
        try:
            return strategies.get_strategy(session, Actor(user.id, tuple(user.roles)), strategy_id).name
        except strategies.NotFoundError:
            return None


@router.get("/api/v1/strategies/{strategy_id}/snapshots.csv", include_in_schema=False)
async def snapshots_csv(
    strategy_id: int,
    user: int = Query(...),
    start: int = Query(...),
    end: int = Query(...),
    expires: int = Query(...),
    sig: str = Query(..., max_length=64),
) -> Response:
    settings = services().settings
    if not exports.link_valid(
        settings.secret_key_base,
        user_id=user,
        strategy_id=strategy_id,
        start_ms=start,
        end_ms=end,
        expires=expires,
        sig=sig,
        now_s=int(time.time()),
    ):
        return error_response(403, "invalid_link", "This download link is invalid or has expired; download again.")
    name = await anyio.to_thread.run_sync(_may_read, user, strategy_id)
    if name is None:
        return error_response(404, "not_found", "No such strategy.")
    filename = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "strategy"
    return StreamingResponse(
        exports.csv_lines(services().snapshot_store, strategy_id, start, end),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}-snapshots.csv"'},
    )
