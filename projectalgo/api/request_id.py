"""A request id on every API call: the caller's X-Request-ID when it is sane, else a new one; in the answer's
X-Request-ID, and on every log line written while the call is served (projectalgo.logs.REQUEST_ID).

Pure ASGI, wrapped around the whole app by http_policy.wrap (outside FastAPI's own error handling, so that the
log line of an unexpected error and its 500 carry the id too); only paths under /api/ get one.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from projectalgo.logs import REQUEST_ID

HEADER = b"x-request-id"
MAX_LENGTH = 128
# What a proxy's or a client's id may hold to be kept: letters, digits and . _ : - only (no spaces, quotes or line
# breaks to forge log text with), at most MAX_LENGTH of them. Anything else is replaced, not repaired.
SANE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")
API_PREFIX = "/api/"
log = logging.getLogger("projectalgo.api")


def request_id(scope: Scope) -> str:
    """The caller's id when it is sane, else a new random one (32 hex digits)."""
    for name, value in scope["headers"]:
        if name == HEADER:
            text = value.decode("latin-1")
            return text if SANE.fullmatch(text) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestId:
    """ASGI middleware: a request id for each HTTP request under /api/ (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode("latin-1"))]}
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # The path alone: a query string may hold a download link's signature.
            log.debug(
                "api.request method=%s path=%s status=%s ms=%d",
                scope["method"],
                scope["path"],
                status or "none",
                (time.perf_counter() - started) * 1000,
            )
            REQUEST_ID.reset(token)
