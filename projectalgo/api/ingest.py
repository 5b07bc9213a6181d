"""POST /api/v1/strategy/: trading bots post snapshots. The contract of the original app, kept unchanged."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from projectalgo import snapshots
from projectalgo.api.errors import TooLargeError, error_response, error_responses, read_limited, refusal_response
from projectalgo.clock import utcnow
from projectalgo.errors import DomainError
from projectalgo.runtime import services

log = logging.getLogger("projectalgo.ingest")
router = APIRouter(tags=["bots"])

_ms_number = {"type": "number", "minimum": snapshots.EARLIEST_MS, "exclusiveMaximum": snapshots.MS_LIMIT}
_number = {
    "description": "A JSON number or numeric text: 0, or a magnitude from 1e-130 up to (not including) 1e38, "
    "with at most 38 significant digits.",
    "anyOf": [
        {"type": "number", "const": 0},
        {
            "type": "number",
            "minimum": float(snapshots.NUMBER_MAGNITUDE_MIN),
            "exclusiveMaximum": float(snapshots.NUMBER_MAGNITUDE_LIMIT),
        },
        {
            "type": "number",
            "exclusiveMinimum": -float(snapshots.NUMBER_MAGNITUDE_LIMIT),
            "maximum": -float(snapshots.NUMBER_MAGNITUDE_MIN),
        },
        {"type": "string", "pattern": snapshots.NUMBER_TEXT_PATTERN},
    ],
}
_created_at = {
    "description": "Optional; absent or null: the server's time. ISO 8601 (YYYY-MM-DD, T or a space, hh:mm, "
    "optionally :ss and decimals, optionally Z or an offset; none means UTC) from the year 2000, or epoch seconds or "
    f"milliseconds (values from {snapshots.SECONDS_LIMIT:.0e} are milliseconds) as a number or numeric text. "
    "At most 5 minutes ahead of the server's clock (else 409).",
    "anyOf": [
        {"type": "string", "pattern": snapshots.TIME_TEXT_PATTERN},
        {"type": "string", "pattern": snapshots.EPOCH_TEXT_PATTERN},
        {"type": "number", "minimum": snapshots.EARLIEST_S, "exclusiveMaximum": snapshots.SECONDS_LIMIT},
        _ms_number,
        {"type": "null"},
    ],
}
SNAPSHOT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "required": [*snapshots.NUMBER_FIELDS, "symbol"],
            "properties": {
                "strategy_access_token": {
                    "type": ["string", "null"],
                    "description": "The strategy's token, if not sent as Authorization: Bearer.",
                },
                **dict.fromkeys(snapshots.NUMBER_FIELDS, _number),
                "symbol": {
                    "type": "string",
                    "maxLength": snapshots.SYMBOL_MAX_LENGTH,
                    "pattern": snapshots.SYMBOL_PATTERN,
                    "description": "Stored without surrounding spaces; no NUL character.",
                },
                "created_at": _created_at,
                "cash_flow": {
                    "description": "Optional; absent or null: none stated. Money the bot knows moved into (positive, "
                    "a deposit) or out of (negative, a withdrawal) the wallet since its previous snapshot, in USD; "
                    "0 says nothing moved. It replaces what the server would find from the wallet and realised "
                    "PnL for that interval, so the figures keep it apart from profit. " + str(_number["description"]),
                    "anyOf": [*_number["anyOf"], {"type": "null"}],
                },
            },
        }
    },
}
OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": SNAPSHOT_SCHEMA,
                "example": {"data": snapshots.EXAMPLE_DATA},
            }
        },
    },
    "responses": {
        "201": {
            "description": "Stored durably.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status", "strategy_id", "created_at"],
                        "properties": {
                            "status": {"const": True},
                            "strategy_id": {"type": "integer"},
                            "created_at": {"type": "string", "format": "date-time"},
                        },
                    },
                    "example": {"status": True, "strategy_id": 42, "created_at": "2026-11-25T16:00:00.123Z"},
                }
            },
        },
        **error_responses(
            {
                400: "Not JSON, or not a JSON object.",
                401: "Missing, unknown or revoked token.",
                403: "The token's strategy is archived (strategy_archived) or its owner's account is disabled "
                "(owner_disabled); nothing was stored.",
                409: "created_at is more than 5 minutes ahead of the server's clock (is the bot's clock right?); "
                "nothing was stored.",
                413: "Body over 16 KB.",
                415: "Content-Type is not application/json.",
                422: "Every wrong field named in detail.",
                429: "Too many snapshots for this token; see Retry-After.",
                503: "The store is unreachable; nothing was stored. See Retry-After.",
            }
        ),
    },
}
DESCRIPTION = (
    "A bot posts one snapshot of its strategy (amounts in USD; send 0 where the broker gives nothing). "
    "Send the token as `Authorization: Bearer <token>` (preferred) or as `data.strategy_access_token`. "
    "Numbers may be JSON numbers or numeric text, with at most 38 significant digits and a magnitude "
    "from 1e-130 up to 1e38 (or 0)."
)


def _header_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


async def _refused(status: int, error: str, detail: object) -> JSONResponse:
    """A post refused by HTTP's rules, before ingestion sees it (counted all the same)."""
    await services().ingestor.count_refusal(error)
    return error_response(status, error, detail)


async def ingest(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return await _refused(415, "unsupported_media_type", "Send the snapshot as Content-Type: application/json.")
    try:
        raw = await read_limited(request, snapshots.MAX_BODY_BYTES)
    except TooLargeError:
        return await _refused(413, "too_large", f"The body must be at most {snapshots.MAX_BODY_BYTES} bytes.")
    try:
        stored = await services().ingestor.receive(raw, _header_token(request), utcnow())
    except DomainError as refusal:
        return refusal_response(refusal)
    created_at = stored.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return JSONResponse({"status": True, "strategy_id": stored.strategy_id, "created_at": created_at}, status_code=201)


# Bots post to the path with and without the trailing slash; neither is redirected.
router.add_api_route(
    "/api/v1/strategy/",
    ingest,
    methods=["POST"],
    status_code=201,
    summary="Post a strategy snapshot",
    description=DESCRIPTION,
    openapi_extra=OPENAPI,
)
router.add_api_route("/api/v1/strategy", ingest, methods=["POST"], include_in_schema=False)
