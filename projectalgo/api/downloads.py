"""GET /api/v1/strategies/<id>/snapshots.csv: a strategy's snapshots as CSV, through a signed link."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import anyio
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse

from projectalgo import exports, members, strategies
from projectalgo.api.errors import error_responses
from projectalgo.db import session_scope
from projectalgo.errors import NotAllowedError
from projectalgo.members import Actor
from projectalgo.runtime import services
from projectalgo.snapshots import ALL_TIME_END_MS

router = APIRouter(tags=["members"])
MAX_ID = 2**63 - 1  # the largest SQL BIGINT: ids beyond it name nothing
INVALID_LINK = "This download link is invalid or has expired; download again."


def _may_read(user_id: int, login_session_id: int, strategy_id: int, idle: timedelta) -> str:
    """The strategy's name when the link's login session is live for that user and the user may read the strategy
    now; NotAllowedError (the sign-in has ended) or NotFoundError otherwise."""
    with session_scope(services().engine) as session:
        user = members.live_session_user(session, login_session_id, idle=idle)
        if user is None or user.id != user_id:
            raise NotAllowedError("This link's sign-in has ended; sign in and download again.", code="invalid_link")
        return strategies.get_strategy(session, Actor(user.id, tuple(user.roles)), strategy_id).name


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The snapshots with start <= time < end, oldest first, one CSV line each after the header.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    **error_responses(
        {
            403: "The signature is wrong, the link has expired (or expires later than this server's links do), or "
            "its sign-in has ended.",
            404: "No such strategy, or the user may not read it.",
            422: "A parameter is missing or malformed (sig: 64 lowercase hex digits).",
        }
    ),
}


@router.get(
    "/api/v1/strategies/{strategy_id}/snapshots.csv",
    summary="Download a strategy's snapshots as CSV",
    description=(
        "Follow a link the strategy page signed for one sign-in; it works for "
        f"{exports.LINK_SECONDS} seconds, while that sign-in lasts and its user may read the strategy."
    ),
    response_class=Response,
    responses=RESPONSES,
)
async def snapshots_csv(
    strategy_id: int = Path(ge=1, le=MAX_ID),
    user: int = Query(ge=1, le=MAX_ID),
    login: int = Query(ge=1, le=MAX_ID, description="The sign-in (login session) the link was made for."),
    start: int = Query(ge=0, le=ALL_TIME_END_MS, description="Epoch milliseconds, inclusive."),
    end: int = Query(ge=0, le=ALL_TIME_END_MS, description="Epoch milliseconds, exclusive."),
    expires: int = Query(ge=0, le=ALL_TIME_END_MS, description="Epoch seconds."),
    sig: str = Query(pattern=exports.SIGNATURE_PATTERN, min_length=64, max_length=64),
) -> Response:
    settings = services().settings
    if not exports.link_valid(
        settings.secret_key_base,
        user_id=user,
        login_session_id=login,
        strategy_id=strategy_id,
        start_ms=start,
        end_ms=end,
        expires=expires,
        sig=sig,
        now_s=int(time.time()),
    ):
        raise NotAllowedError(INVALID_LINK, code="invalid_link")
    idle = timedelta(minutes=settings.session_idle_minutes)
    # A refusal raised here is answered by api.errors.refusal.
    name = await anyio.to_thread.run_sync(_may_read, user, login, strategy_id, idle)
    filename = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in name) or "strategy"
    # A sync iterator: Starlette reads each page from the store on a worker thread, off the event loop.
    return StreamingResponse(
        exports.csv_lines(services().snapshot_store, strategy_id, start, end),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}-snapshots.csv"'},
    )
