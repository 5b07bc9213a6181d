"""Whether a strategy's bot is posting, from the age of its newest snapshot: the one rule the dashboard, the
strategy page and the admin page show (settings STALE_AFTER_MINUTES and OFFLINE_AFTER_MINUTES). No Reflex."""

from __future__ import annotations

from projectalgo.settings import Settings

STATUSES = ("never", "live", "stale", "offline")


def status(last_snapshot_ms: int | None, now_ms: int, settings: Settings) -> str:
    """never (no snapshot yet), live, stale (silent for longer than the stale setting) or offline."""
    if last_snapshot_ms is None:
        return "never"
    age = now_ms - last_snapshot_ms
    if age <= settings.stale_after_ms:
        return "live"
    if age > settings.offline_after_ms:  # settings keep it at least the stale one
        return "offline"
    return "stale"
