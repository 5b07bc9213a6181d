"""The one way the app reads the time: timezone-aware UTC (sqlmodel stores it as UTC)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
