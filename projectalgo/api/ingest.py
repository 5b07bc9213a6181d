"""POST /api/v1/strategy/: trading bots post snapshots. The contract of the original app, kept unchanged."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from projectalgo import snapshots
from projectalgo.api.errors import error_response
from projectalgo.clock import utcnow
from projectalgo.ingestion import Post, RefusedError
from projectalgo.runtime import services

log = logging.getLogger("projectalgo.ingest")
router = APIRouter(tags=["bots"])

_number = {"oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$"}]}
_error = {"type": "object", "properties": {"error": {"type": "string"}, "detail": {}}}
OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {
                            "type": "object",
                            "required": [*snapshots.NUMBER_FIELDS, "symbol"],
                            "properties": {
                                "strategy_access_token": {
                                    "type": "string",
                                    "description": "The strategy's token, if not sent as Authorization: Bearer.",
                                },
                                **dict.fromkeys(snapshots.NUMBER_FIELDS, _number),
                                "symbol": {"type": "string", "maxLength": snapshots.SYMBOL_MAX_LENGTH},
                                "created_at": {
                                    "description": "Optional: ISO 8601, or epoch seconds or milliseconds. "
                                    "At most 5 minutes in the future. Default: the server's time.",
                                    "oneOf": [{"type": "string"}, {"type": "number"}],
                                },
                            },
                        }
                    },
                },
                "example": {
                    "data": {
                        "last_price": 9321.5,
                        "margin_balance": 10234.12,
                        "wallet_balance": 10011.7,
                        "realised_pnl": 120.5,
                        "positions": 150,
                        "symbol": "XBTUSD",
                        "average_entry_price": 9300.25,
                    }
                },
            }
        },
    },
    "responses": {
        "201": {
            "description": "Stored durably.",
            "content": {
                "application/json": {
                    "example": {"status": True, "strategy_id": 42, "created_at": "2026-11-25T16:00:00.123Z"}
                }
            },
        },
        "400": {"description": "Not JSON, or not a JSON object.", "content": {"application/json": {"schema": _error}}},
        "401": {
            "description": "Missing, unknown or revoked token.",
            "content": {"application/json": {"schema": _error}},
        },
        "413": {"description": "Body over 16 KB.", "content": {"application/json": {"schema": _error}}},
        "415": {
            "description": "Content-Type is not application/json.",
            "content": {"application/json": {"schema": _error}},
        },
        "422": {
            "description": "Every wrong field named in detail.",
            "content": {"application/json": {"schema": _error}},
        },
        "429": {
            "description": "Too many snapshots for this token; see Retry-After.",
            "content": {"application/json": {"schema": _error}},
        },
        "503": {
            "description": "The store is unreachable; nothing was stored. See Retry-After.",
            "content": {"application/json": {"schema": _error}},
        },
    },
}
DESCRIPTION = (
    "A bot posts one snapshot of its strategy (amounts in USD; send 0 where the broker gives nothing). "
    "Send the token as `Authorization: Bearer <token>` (preferred) or as `data.strategy_access_token`. "
    "Numbers may be JSON numbers or numeric strings, with at most 38 significant digits and a magnitude "
    "between 1e-130 and 1e38 (or 0)."
)


class _TooLargeError(Exception):
    pass


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > snapshots.MAX_BODY_BYTES:
        raise _TooLargeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > snapshots.MAX_BODY_BYTES:
            raise _TooLargeError
    return bytes(body)


def _header_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _refused(status: int, error: str, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    services().ingest_stats.count(error)
    return error_response(status, error, detail, headers)


async def ingest(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _refused(415, "unsupported_media_type", "Send the snapshot as Content-Type: application/json.")
    try:
        raw = await _read_limited(request)
    except _TooLargeError:
        return _refused(413, "too_large", f"The body must be at most {snapshots.MAX_BODY_BYTES} bytes.")
    try:
        body = snapshots.read_body(raw)
    except snapshots.BadBodyError as error:
        return _refused(400, "bad_request", str(error))

    token = _header_token(request) or snapshots.body_token(body)
    if token is None:
        return _refused(
            401,
            "missing_token",
            "Send the strategy token as Authorization: Bearer <token> or data.strategy_access_token.",
        )
    now = utcnow()
    try:
        accepted = snapshots.validate(body, now)
    except snapshots.InvalidSnapshotError as error:
        return _refused(422, "invalid_snapshot", error.problems)

    try:
        stored = (await services().ingestor.submit(Post(token, accepted, snapshots.epoch_ms(now)))).snapshot
    except RefusedError as refusal:
        return _refused(*refusal.args)
    except snapshots.StoreUnavailableError as error:
        log.warning("ingest.store_unavailable error=%s", error)
        return _refused(
            503,
            "store_unavailable",
            "The snapshot store is unreachable; nothing was stored. Retry later.",
            {"Retry-After": "5"},
        )
    services().ingest_stats.count("accepted")
    await services().hub.publish(stored)
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
