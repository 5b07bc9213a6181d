"""CSV exports of a strategy's snapshots, through short-lived signed links.

The sign-in token lives in the browser's storage, not in a cookie, so a plain link could not prove who
follows it: the page signs a link for one user, strategy and range, valid for a minute, and the download
route checks the signature and the user's right to the strategy again. No Reflex here.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterator
from urllib.parse import urlencode

from projectalgo.snapshots import NUMBER_FIELDS, Snapshot, SnapshotStore

LINK_SECONDS = 60
COLUMNS = ("time_utc", *NUMBER_FIELDS, "symbol")


def _signature(secret: str, user_id: int, strategy_id: int, start_ms: int, end_ms: int, expires: int) -> str:
    message = f"csv:{user_id}:{strategy_id}:{start_ms}:{end_ms}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_link(secret: str, *, user_id: int, strategy_id: int, start_ms: int, end_ms: int, now_s: int) -> str:
    expires = now_s + LINK_SECONDS
    query = {
        "user": user_id,
        "start": start_ms,
        "end": end_ms,
        "expires": expires,
        "sig": _signature(secret, user_id, strategy_id, start_ms, end_ms, expires),
    }
    return f"/api/v1/strategies/{strategy_id}/snapshots.csv?{urlencode(query)}"


def link_valid(
    secret: str, *, user_id: int, strategy_id: int, start_ms: int, end_ms: int, expires: int, sig: str, now_s: int
) -> bool:
    expected = _signature(secret, user_id, strategy_id, start_ms, end_ms, expires)
    return now_s <= expires and hmac.compare_digest(expected, sig)


def _line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def csv_lines(store: SnapshotStore, strategy_id: int, start_ms: int, end_ms: int) -> Iterator[str]:
    """The header, then one line per snapshot in the range, oldest first, read a page at a time."""
    yield _line(list(COLUMNS))
    cursor = None
    while True:
        page = store.between(strategy_id, start_ms, end_ms, limit=1000, cursor=cursor)
        for snapshot in page.items:
            yield _line(_row(snapshot))
        if page.cursor is None:
            return
        cursor = page.cursor


def _row(snapshot: Snapshot) -> list[str]:
    stamp = snapshot.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [stamp, *(str(getattr(snapshot, name)) for name in NUMBER_FIELDS), snapshot.symbol]
