"""CSV exports of a strategy's snapshots, through short-lived signed links.

The sign-in token lives in the browser's storage, not in a cookie, so a plain link could not prove who
follows it: the page signs a link for one user, one of their login sessions, a strategy and a range. The
download route checks the signature, that the link expires within LINK_SECONDS of now (the server caps a
link's life, not the link), that the login session is still live for that user, and the user's right to the
strategy again. No Reflex here.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from collections.abc import Iterator
from urllib.parse import urlencode

from projectalgo.snapshots import NUMBER_FIELDS, Snapshot, SnapshotStore

LINK_SECONDS = 60
SIGNATURE_PATTERN = r"^[0-9a-f]{64}$"  # a SHA-256 HMAC, as lowercase hex
_signature_format = re.compile(SIGNATURE_PATTERN)
COLUMNS = ("time_utc", *NUMBER_FIELDS, "symbol")
# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _signature(
    secret: str, user_id: int, login_session_id: int, strategy_id: int, start_ms: int, end_ms: int, expires: int
) -> str:
    message = f"csv-link:v2:{user_id}:{login_session_id}:{strategy_id}:{start_ms}:{end_ms}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_link(
    secret: str, *, user_id: int, login_session_id: int, strategy_id: int, start_ms: int, end_ms: int, now_s: int
) -> str:
    """The download link for this user's login session, strategy and range, valid for LINK_SECONDS."""
    expires = now_s + LINK_SECONDS
    query = {
        "user": user_id,
        "login": login_session_id,
        "start": start_ms,
        "end": end_ms,
        "expires": expires,
        "sig": _signature(secret, user_id, login_session_id, strategy_id, start_ms, end_ms, expires),
    }
    return f"/api/v1/strategies/{strategy_id}/snapshots.csv?{urlencode(query)}"


def link_valid(
    secret: str,
    *,
    user_id: int,
    login_session_id: int,
    strategy_id: int,
    start_ms: int,
    end_ms: int,
    expires: int,
    sig: str,
    now_s: int,
) -> bool:
    """Signed here over every field, not expired, and expiring no later than a link this server issues now."""
    if not _signature_format.fullmatch(sig) or not now_s <= expires <= now_s + LINK_SECONDS:
        return False
    expected = _signature(secret, user_id, login_session_id, strategy_id, start_ms, end_ms, expires)
    return hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii"))


def neutralise(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that would start a formula gets a leading single quote."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


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
    """One snapshot's cells: the time and numbers as this app writes them (plain, e.g. -12.5), the text made safe."""
    stamp = snapshot.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [stamp, *(str(getattr(snapshot, name)) for name in NUMBER_FIELDS), neutralise(snapshot.symbol)]
