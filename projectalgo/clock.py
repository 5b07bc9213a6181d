"""The one way the app reads the time: timezone-aware UTC (sqlmodel stores it as UTC); and the time units the
app counts in epoch milliseconds."""

from datetime import UTC, datetime

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str:
    """ISO 8601 for the browser to show in the viewer's time zone; "" for none."""
    return value.isoformat() if value else ""
