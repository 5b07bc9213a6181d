"""Alerts' delivery (issue 17): the outbox of firings (models.AlertFiring) and their deliveries, one per channel.

A firing is stored first, with a delivery row for each channel its user has, in the same transaction; delivering
is a later step that claims due rows, tries them and records each attempt, so a crash or a failing receiver
neither loses a firing nor sends it under two keys. No Reflex here.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from projectalgo.models import AlertChannels, AlertDelivery
from projectalgo.settings import Settings

APP, EMAIL, WEBHOOK = "app", "email", "webhook"
CHANNELS = (APP, EMAIL, WEBHOOK)


def new_delivery(firing_id: int, channel: str, now: datetime) -> AlertDelivery:
    """A firing's delivery on one channel, due now, with the idempotency key every attempt of it carries."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown alert channel {channel!r}")
    return AlertDelivery(firing_id=firing_id, channel=channel, idempotency_key=uuid.uuid4().hex, next_attempt_at=now)


def channels_for(session: Session, user_id: int, settings: Settings) -> tuple[str, ...]:
    """The channels a firing for this user goes to now: the app always; email when the server can send it and the
    user has not turned it off; their webhook when they set one."""
    chosen = session.get(AlertChannels, user_id) or AlertChannels(user_id=user_id)
    return (
        APP,
        *((EMAIL,) if settings.smtp_host and chosen.email_enabled else ()),
        *((WEBHOOK,) if chosen.webhook_url else ()),
    )
