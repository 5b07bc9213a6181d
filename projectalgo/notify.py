"""Alerts' delivery (issue 17): the outbox of firings (models.AlertFiring) and their deliveries, one per channel.

A firing is stored first, with a delivery row for each channel its user has, in the same transaction; delivering
is a later step (`deliver_due`) that claims due rows one at a time, tries each and records the attempt, so a crash
or a failing receiver neither loses a firing nor sends it under two keys: every attempt of a delivery carries its
idempotency key (a webhook's `Idempotency-Key` header and generic body's `id`, an email's Message-ID), and a
receiver that saw a key already can drop the resend. The attempts themselves are alert_senders.py's; webhooks go
to public addresses only (webhook_guard.py).

Members' channel settings are read and changed here too, by their owner only. No Reflex here. Everything that
sends (deliver_due) or resolves a host name (save_channels) blocks: callers on an event loop use a thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.from_thread
from sqlalchemy import ColumnElement, Engine, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import alert_senders, webhook_guard
from projectalgo.alert_senders import Outcome, Outgoing
from projectalgo.db import session_scope
from projectalgo.errors import InvalidInputError, NotAllowedError, RateLimitedError
from projectalgo.live import Broadcast, Notice, alerts_topic
from projectalgo.members import Actor
from projectalgo.models import AlertAttempt, AlertChannels, AlertDelivery, AlertFiring, User, id_of, max_length
from projectalgo.settings import Settings

APP, EMAIL, WEBHOOK = "app", "email", "webhook"
CHANNELS = (APP, EMAIL, WEBHOOK)
PENDING, SENT, FAILED = "pending", "sent", "failed"
PRESETS = ("generic", "discord", "slack", "telegram")
# Waits after the 1st, 2nd, ... failed attempt; a delivery failing once more than this has is "failed".
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
# How long a sender holds a claimed delivery: far beyond one attempt's timeouts, so only a sender that died (or
# stalled) lets another retry it. A batch claims no more after BATCH_SECONDS, so a claim made at the caller's `now`
# still lasts minutes in fact (and the sweep holding the lease ends in time); the rest waits for the next sweep.
CLAIM = timedelta(minutes=5)
BATCH_SECONDS = 60
PUBLISH_TIMEOUT_SECONDS = 5
DETAIL_MAX_LENGTH = max_length(AlertAttempt, "detail")
TEST_KIND = "test"
TESTS_PER_MINUTE = 5  # "send a test" per member: each may call out to a webhook or send an email
TELEGRAM_CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
log = logging.getLogger("projectalgo.notify")


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


# --- Sending ---------------------------------------------------------------------------------------------------


def deliver_due(
    engine: Engine,
    settings: Settings,
    broadcast: Broadcast,
    *,
    now: datetime,
    limit: int = 100,
    loop: asyncio.AbstractEventLoop | None = None,
) -> int:
    """Send up to `limit` due deliveries (for BATCH_SECONDS at most), one claimed at a time, as at `now`; return how
    many were attempted. Blocking: run it in a worker thread. In-app notices are published on `loop` (the caller's
    event loop) or, without one, through anyio.from_thread (for a caller using anyio.to_thread.run_sync).

    Safe with several senders at once: a claim is one conditional UPDATE, so each delivery is taken by one sender;
    a claim whose sender died expires after CLAIM and the delivery is due again, with the same idempotency key."""
    started = time.monotonic()
    attempted = 0
    while attempted < limit and time.monotonic() - started < BATCH_SECONDS:
        delivery_id = _claim(engine, now)
        if delivery_id is None:
            break
        attempted += 1
        outgoing = _read(engine, delivery_id)
        outcome = _attempt(outgoing, settings, now)
        _record(engine, delivery_id, outcome, now)
        if outgoing.channel == APP and outcome.ok:
            _tell_tabs(broadcast, outgoing.user_id, loop)
    return attempted


def _due(at: datetime) -> ColumnElement[bool]:
    claimed_until = col(AlertDelivery.claimed_until)
    return (
        (col(AlertDelivery.status) == PENDING)
        & (col(AlertDelivery.next_attempt_at) <= at)
        & (claimed_until.is_(None) | (claimed_until <= at))
    )


def _claim(engine: Engine, at: datetime) -> int | None:
    """Claim the next due delivery until at + CLAIM, or None when none is due. One statement whose WHERE holds the
    due test again: of two senders reaching the same row, the second finds it claimed (PostgreSQL re-checks the row
    after the first's commit, or skips it while locked; SQLite runs one writer at a time)."""
    due = _due(at)
    next_one = (
        select(col(AlertDelivery.id))
        .where(due)
        .order_by(col(AlertDelivery.next_attempt_at), col(AlertDelivery.id))
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claim = (
        update(AlertDelivery)
        .where(col(AlertDelivery.id) == next_one, due)
        .values(claimed_until=at + CLAIM)
        .returning(col(AlertDelivery.id))
    )
    with session_scope(engine) as session:
        return session.scalar(claim)


def _read(engine: Engine, delivery_id: int) -> Outgoing:
    with session_scope(engine) as session:
        delivery = session.get_one(AlertDelivery, delivery_id)
        firing = session.get_one(AlertFiring, delivery.firing_id)
        user = session.get_one(User, firing.user_id)
        chosen = session.get(AlertChannels, firing.user_id) or AlertChannels(user_id=firing.user_id)
        return Outgoing(
            delivery.channel,
            delivery.idempotency_key,
            firing.user_id,
            user.email,
            user.disabled_at is not None,
            firing,
            chosen,
        )


def _attempt(outgoing: Outgoing, settings: Settings, at: datetime) -> Outcome:
    """One try on the delivery's channel. Never raises: a fault is a failed attempt (its text logged, not kept)."""
    if outgoing.disabled:
        return Outcome(False, "not sent: the account is disabled", final=True)
    try:
        if outgoing.channel == APP:
            return Outcome(True, "shown in the app")
        if outgoing.channel == EMAIL:
            return alert_senders.send_email(outgoing, settings)
        return alert_senders.post_webhook(outgoing, settings, at)
    except Exception:
        log.exception("alerts.delivery_fault channel=%s", outgoing.channel)
        return Outcome(False, "failed: an error on our side (logged)")


def _record(engine: Engine, delivery_id: int, outcome: Outcome, at: datetime) -> None:
    """Keep the attempt, and mark the delivery sent, due again after its backoff, or failed after the last."""
    with session_scope(engine) as session:
        session.add(
            AlertAttempt(delivery_id=delivery_id, at=at, ok=outcome.ok, detail=outcome.detail[:DETAIL_MAX_LENGTH])
        )
        delivery = session.get_one(AlertDelivery, delivery_id)
        if delivery.status != PENDING:  # a stalled sender's late word never takes back another's outcome
            return
        delivery.attempts += 1
        delivery.claimed_until = None
        if outcome.ok:
            delivery.status, delivery.sent_at = SENT, at
        elif outcome.final or delivery.attempts > len(BACKOFF):
            delivery.status = FAILED
        else:
            delivery.next_attempt_at = at + BACKOFF[delivery.attempts - 1]
    log.info("alerts.delivery_attempt delivery=%s ok=%s detail=%s", delivery_id, outcome.ok, outcome.detail)


def _tell_tabs(broadcast: Broadcast, user_id: int, loop: asyncio.AbstractEventLoop | None) -> None:
    """The user's open tabs read their unread firings again; published on the caller's event loop, never blocking
    it. A failure is logged only: the firing is stored, and a tab shows it when it next reads."""
    notice = Notice(alerts_topic(user_id))
    try:
        if loop is None:
            anyio.from_thread.run(broadcast.publish, notice)
        else:
            asyncio.run_coroutine_threadsafe(broadcast.publish(notice), loop).result(PUBLISH_TIMEOUT_SECONDS)
    except Exception:
        log.warning("alerts.notice_failed user=%s", user_id, exc_info=True)


# --- Members' channels -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelsView:
    """A member's own channels, as their settings show them (to them only: it holds their signing secret)."""

    email_available: bool  # the server can send email (SMTP_HOST set); else the email channel is hidden
    email_enabled: bool
    email: str
    webhook_url: str
    webhook_preset: str
    webhook_secret: str  # the receiver verifies signatures with it
    telegram_chat_id: str


def _view(session: Session, actor: Actor, settings: Settings) -> ChannelsView:
    chosen = session.get(AlertChannels, actor.user_id) or AlertChannels(user_id=actor.user_id)
    user = session.get_one(User, actor.user_id)
    available = settings.smtp_host is not None
    return ChannelsView(
        email_available=available,
        email_enabled=available and chosen.email_enabled,
        email=user.email if available else "",
        webhook_url=chosen.webhook_url,
        webhook_preset=chosen.webhook_preset,
        webhook_secret=chosen.webhook_secret,
        telegram_chat_id=chosen.telegram_chat_id,
    )


def channels_view(session: Session, actor: Actor, settings: Settings) -> ChannelsView:
    """The actor's own channels (a member never reads another's)."""
    return _view(session, actor, settings)


def _new_secret() -> str:
    return secrets.token_hex(32)


def save_channels(
    session: Session,
    actor: Actor,
    settings: Settings,
    *,
    email_enabled: bool,
    webhook_url: str,
    webhook_preset: str,
    telegram_chat_id: str,
) -> ChannelsView:
    """Change the actor's own channels. An empty URL removes the webhook; a set one must pass the address guard
    (this resolves its host: blocking). Telegram needs the chat id. The first save makes the signing secret."""
    if webhook_preset not in PRESETS:
        raise InvalidInputError(f"Choose a message format: {', '.join(PRESETS)}.")
    webhook_url = webhook_url.strip()
    if webhook_url:
        webhook_url = check_webhook_url(webhook_url, settings)
    telegram_chat_id = telegram_chat_id.strip()
    if telegram_chat_id and not TELEGRAM_CHAT_ID.match(telegram_chat_id):
        raise InvalidInputError("A Telegram chat id is a number (such as -1001234567890) or a @channelname.")
    if webhook_url and webhook_preset == "telegram" and not telegram_chat_id:
        raise InvalidInputError("Telegram needs the chat id to send to.")
    chosen = session.get(AlertChannels, actor.user_id) or AlertChannels(user_id=actor.user_id)
    chosen.email_enabled = email_enabled
    chosen.webhook_url = webhook_url
    chosen.webhook_preset = webhook_preset
    chosen.telegram_chat_id = telegram_chat_id
    chosen.webhook_secret = chosen.webhook_secret or _new_secret()
    session.add(chosen)
    session.flush()
    return _view(session, actor, settings)


def new_webhook_secret(session: Session, actor: Actor, settings: Settings) -> ChannelsView:
    """A fresh signing secret for the actor's webhook; the old one no longer verifies what is sent from now on."""
    chosen = session.get(AlertChannels, actor.user_id) or AlertChannels(user_id=actor.user_id)
    chosen.webhook_secret = _new_secret()
    session.add(chosen)
    session.flush()
    return _view(session, actor, settings)


def check_webhook_url(url: str, settings: Settings) -> str:
    """The URL normalized, or InvalidInputError saying why not: http(s) with a host, no user name or password,
    at most as long as the column, and every address its host resolves to public (private, loopback, link-local
    and other special addresses only with ALERT_WEBHOOKS_ALLOW_PRIVATE). Resolves the host: blocking."""
    parsed = webhook_guard.parse(url)
    webhook_guard.public_address(parsed, settings.alert_webhooks_allow_private)
    return str(parsed)


def send_test(session: Session, actor: Actor, channel: str, settings: Settings, now: datetime) -> int:
    """A test firing to the actor with one delivery on `channel` (sent by the next sweep); returns its id."""
    chosen = session.get(AlertChannels, actor.user_id) or AlertChannels(user_id=actor.user_id)
    if channel not in CHANNELS:
        raise InvalidInputError("Choose a channel: the app, email or webhook.")
    if channel == EMAIL and not settings.smtp_host:
        raise InvalidInputError("This server sends no email: ask an admin to set up SMTP.")
    if channel == EMAIL and not chosen.email_enabled:
        raise InvalidInputError("Email alerts are off: turn them on first.")
    if channel == WEBHOOK and not chosen.webhook_url:
        raise InvalidInputError("Set a webhook URL first.")
    recent = session.scalar(
        select(func.count())
        .select_from(AlertFiring)
        .where(
            col(AlertFiring.user_id) == actor.user_id,
            col(AlertFiring.kind) == TEST_KIND,
            col(AlertFiring.created_at) > now - timedelta(minutes=1),
        )
    )
    if (recent or 0) >= TESTS_PER_MINUTE:
        raise RateLimitedError("That is enough tests for a minute; try again shortly.", retry_after_seconds=60)
    names = {APP: "in the app", EMAIL: "by email", WEBHOOK: "by webhook"}
    firing = AlertFiring(
        user_id=actor.user_id,
        kind=TEST_KIND,
        title="Test alert",
        body=f"This is a test of your alerts {names[channel]}. If you read it, the channel works.",
        created_at=now,
    )
    session.add(firing)
    session.flush()
    session.add(new_delivery(id_of(firing), channel, now))
    session.flush()
    return id_of(firing)


# --- Admins ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedDeliveryView:
    """A delivery that gave up, as /admin lists it: whose, where, what kind, and the last attempt's result (never a
    message, URL or secret)."""

    delivery_id: int
    user_id: int
    user_name: str
    user_email: str
    channel: str
    kind: str
    attempts: int
    fired_at: datetime
    last_attempt_at: datetime | None
    last_detail: str


def failed_deliveries(session: Session, actor: Actor, *, limit: int = 100) -> list[FailedDeliveryView]:
    """The newest failed deliveries, for admins only."""
    if not actor.is_admin:
        raise NotAllowedError("Only admins may see failed deliveries.")
    rows = session.execute(
        select(AlertDelivery, AlertFiring, User)
        .join(AlertFiring, col(AlertFiring.id) == AlertDelivery.firing_id)
        .join(User, col(User.id) == AlertFiring.user_id)
        .where(col(AlertDelivery.status) == FAILED)
        .order_by(col(AlertDelivery.id).desc())
        .limit(limit)
    ).all()
    last: dict[int, AlertAttempt] = {}
    ids = [id_of(delivery) for delivery, _, _ in rows]
    for attempt in session.scalars(
        select(AlertAttempt).where(col(AlertAttempt.delivery_id).in_(ids)).order_by(col(AlertAttempt.id))
    ):
        last[attempt.delivery_id] = attempt
    return [
        FailedDeliveryView(
            delivery_id=id_of(delivery),
            user_id=id_of(user),
            user_name=user.name,
            user_email=user.email,
            channel=delivery.channel,
            kind=firing.kind,
            attempts=delivery.attempts,
            fired_at=firing.created_at,
            last_attempt_at=last[id_of(delivery)].at if id_of(delivery) in last else None,
            last_detail=last[id_of(delivery)].detail if id_of(delivery) in last else "",
        )
        for delivery, firing, user in rows
    ]
