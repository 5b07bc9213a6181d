"""Alerts' delivery (issue 17) through real parts: a real SMTP server in its own process (aiosmtpd) and a real HTTP
receiver on loopback that answers 200, 500 or never, as each test scripts it. Each delivery is sent with its
idempotency key on every attempt, retried with backoff, given up after the last, and a sender that died mid-send
is taken over once its claim expires, under the same key."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import Engine, select

from projectalgo import alert_senders, notify
from projectalgo.db import session_scope
from projectalgo.errors import NotAllowedError
from projectalgo.live import LocalBroadcast, Message, Notice, alerts_topic
from projectalgo.models import AlertAttempt, AlertDelivery, AlertFiring, User
from projectalgo.settings import Settings, load_settings
from tests.conftest import SMTP_MAIL_DIR, TEST_SECRET_KEY_BASE, TEST_SMTP_PASSWORD, TEST_SMTP_USER
from tests.factories import actor_of, make_admin, make_member
from tests.support import servers
from tests.support.smtp_server import received
from tests.support.webhook_receiver import HANG, WebhookReceiver, webhook_receiver
from tests.support.workers import until

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SENDER = """
import sys
from datetime import datetime
from projectalgo import alert_senders, notify
from projectalgo.db import make_engine
from projectalgo.live import LocalBroadcast
from projectalgo.settings import load_settings
notify.deliver_due(make_engine(sys.argv[1]), load_settings(), LocalBroadcast(), now=datetime.fromisoformat(sys.argv[2]))
"""


def settings_for(smtp_server: servers.Server | None = None, **env: str) -> Settings:
    """Settings with the test SMTP server (plain, with its login) and webhooks allowed to call loopback, where the
    test receiver listens: the guard refuses it by default (tests/unit/test_webhook_guard.py)."""
    base = {"APP_ENV": "test", "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE, "ALERT_WEBHOOKS_ALLOW_PRIVATE": "true"}
    if smtp_server is not None:
        port = smtp_server.url.rsplit(":", 1)[1]
        base |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_TLS": "none"}
        base |= {"SMTP_USER": TEST_SMTP_USER, "SMTP_PASSWORD": TEST_SMTP_PASSWORD}
    return load_settings(base | env)


def fire(engine: Engine, user: User, channel: str, *, now: datetime = NOW) -> tuple[int, str]:
    """A firing to `user` with one delivery on `channel`, stored as alerts.fire stores them: (delivery id, key)."""
    with session_scope(engine) as session:
        firing = AlertFiring(
            user_id=user.id,
            kind="drawdown",
            title="Trend: drawdown 12.5%",
            body="Trend is 12.5% below its peak of $10,000.",
            created_at=now,
        )
        session.add(firing)
        session.flush()
        delivery = notify.new_delivery(firing.id, channel, now)
        session.add(delivery)
        session.flush()
        return delivery.id, delivery.idempotency_key


def set_webhook(engine: Engine, user: User, url: str, preset: str = "generic", chat_id: str = "") -> str:
    """The user's webhook, saved as the member saves it; returns its signing secret."""
    with session_scope(engine) as session:
        view = notify.save_channels(
            session,
            actor_of(user),
            settings_for(),
            email_enabled=True,
            webhook_url=url,
            webhook_preset=preset,
            telegram_chat_id=chat_id,
        )
    return view.webhook_secret


def deliver(engine: Engine, settings: Settings, now: datetime) -> int:
    return notify.deliver_due(engine, settings, LocalBroadcast(), now=now)


def delivery_of(engine: Engine, delivery_id: int) -> AlertDelivery:
    with session_scope(engine) as session:
        return session.get_one(AlertDelivery, delivery_id)


def attempts_of(engine: Engine, delivery_id: int) -> list[AlertAttempt]:
    with session_scope(engine) as session:
        query = select(AlertAttempt).where(AlertAttempt.delivery_id == delivery_id).order_by(AlertAttempt.id)
        return list(session.scalars(query))


@pytest.fixture
def receiver() -> WebhookReceiver:
    with webhook_receiver() as running:
        yield running


def test_an_email_reaches_the_member_with_the_firing_and_its_key(
    engine: Engine, smtp_server: servers.Server, server_logs: Path
) -> None:
    member = make_member(engine, name="Mia")
    delivery_id, key = fire(engine, member, notify.EMAIL)

    assert deliver(engine, settings_for(smtp_server), NOW) == 1

    [mail] = [mail for mail in received(server_logs / SMTP_MAIL_DIR) if member.email in mail.recipients]
    assert mail.login == TEST_SMTP_USER  # the settings' login was used
    assert mail.message["To"] == member.email
    assert mail.message["Subject"] == "ProjectAlgo: Trend: drawdown 12.5%"
    assert mail.message["Message-ID"] == f"<{key}@localhost>"
    text = mail.message.get_content()
    assert "Trend is 12.5% below its peak of $10,000." in text
    assert "/alerts" in text
    delivery = delivery_of(engine, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 1, NOW)
    [attempt] = attempts_of(engine, delivery_id)
    assert (attempt.ok, attempt.detail) == (True, "SMTP: accepted")


def test_a_wrong_smtp_login_is_a_failed_attempt_without_the_password(
    engine: Engine, smtp_server: servers.Server
) -> None:
    member = make_member(engine)
    delivery_id, _ = fire(engine, member, notify.EMAIL)

    deliver(engine, settings_for(smtp_server, SMTP_PASSWORD="not-the-password"), NOW)

    [attempt] = attempts_of(engine, delivery_id)
    assert not attempt.ok
    assert attempt.detail == "SMTP 535 (SMTPAuthenticationError)"
    assert delivery_of(engine, delivery_id).next_attempt_at == NOW + notify.BACKOFF[0]


def verify(secret: str, request_headers: dict[str, str], body: bytes) -> bool:
    """What README tells a receiver to do: HMAC-SHA256 of "<timestamp>.<raw body>" with the secret."""
    timestamp = request_headers["x-projectalgo-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request_headers["x-projectalgo-signature"], f"sha256={expected}")


@pytest.mark.parametrize(
    ("preset", "chat_id", "expected"),
    [
        ("discord", "", {"content": "Trend: drawdown 12.5%\nTrend is 12.5% below its peak of $10,000."}),
        ("slack", "", {"text": "Trend: drawdown 12.5%\nTrend is 12.5% below its peak of $10,000."}),
        (
            "telegram",
            "-1001234567890",
            {"chat_id": "-1001234567890", "text": "Trend: drawdown 12.5%\nTrend is 12.5% below its peak of $10,000."},
        ),
    ],
)
def test_each_preset_sends_its_message_format(
    engine: Engine, receiver: WebhookReceiver, preset: str, chat_id: str, expected: dict[str, str]
) -> None:
    member = make_member(engine)
    secret = set_webhook(engine, member, f"{receiver.url}/bot123:token/sendMessage", preset, chat_id)
    delivery_id, key = fire(engine, member, notify.WEBHOOK)

    deliver(engine, settings_for(), NOW)

    [request] = receiver.received
    assert request.path == "/bot123:token/sendMessage"
    assert json.loads(request.body) == expected
    assert request.headers["idempotency-key"] == key
    assert request.headers["content-type"] == "application/json"
    assert verify(secret, request.headers, request.body)
    assert delivery_of(engine, delivery_id).status == "sent"


def test_the_generic_body_is_signed_with_the_members_secret(engine: Engine, receiver: WebhookReceiver) -> None:
    member = make_member(engine)
    secret = set_webhook(engine, member, f"{receiver.url}/hook")
    delivery_id, key = fire(engine, member, notify.WEBHOOK)

    deliver(engine, settings_for(), NOW)

    [request] = receiver.received
    assert json.loads(request.body) == {
        "id": key,
        "kind": "drawdown",
        "title": "Trend: drawdown 12.5%",
        "body": "Trend is 12.5% below its peak of $10,000.",
        "created_at": NOW.isoformat(),
        "strategy_id": None,
    }
    assert request.headers["host"] == receiver.url.removeprefix("http://")  # the URL's host, not only its address
    assert request.headers["x-projectalgo-timestamp"] == str(int(NOW.timestamp()))
    assert verify(secret, request.headers, request.body)
    assert not verify("another secret", request.headers, request.body)
    tampered = request.body.replace(b"12.5%", b"99.9%")
    assert not verify(secret, request.headers, tampered)
    [attempt] = attempts_of(engine, delivery_id)
    assert (attempt.ok, attempt.detail) == (True, "HTTP 200")


def test_a_receiver_failing_twice_gets_three_attempts_under_one_key(engine: Engine, receiver: WebhookReceiver) -> None:
    member = make_member(engine)
    set_webhook(engine, member, f"{receiver.url}/hook")
    delivery_id, key = fire(engine, member, notify.WEBHOOK)
    receiver.answer(500, 500)
    settings = settings_for()

    assert deliver(engine, settings, NOW) == 1
    assert deliver(engine, settings, NOW + timedelta(seconds=29)) == 0  # not due before its backoff
    assert deliver(engine, settings, NOW + timedelta(seconds=30)) == 1
    second_due = delivery_of(engine, delivery_id).next_attempt_at
    assert second_due == NOW + timedelta(seconds=30) + notify.BACKOFF[1]
    assert deliver(engine, settings, second_due) == 1
    assert deliver(engine, settings, second_due + timedelta(days=1)) == 0  # sent: never again

    assert [(a.ok, a.detail) for a in attempts_of(engine, delivery_id)] == [
        (False, "HTTP 500"),
        (False, "HTTP 500"),
        (True, "HTTP 200"),
    ]
    assert receiver.keys() == [key, key, key]
    delivery = delivery_of(engine, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 3, second_due)


def test_a_receiver_that_never_answers_is_a_timed_out_attempt(
    engine: Engine, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alert_senders, "WEBHOOK_TIMEOUT", httpx.Timeout(1))
    member = make_member(engine)
    set_webhook(engine, member, f"{receiver.url}/hook")
    delivery_id, _ = fire(engine, member, notify.WEBHOOK)
    receiver.answer(HANG)

    deliver(engine, settings_for(), NOW)

    [attempt] = attempts_of(engine, delivery_id)
    assert (attempt.ok, attempt.detail) == (False, "timed out")
    assert delivery_of(engine, delivery_id).status == "pending"


def test_backoff_schedule_then_failed_and_listed_for_admins(engine: Engine, receiver: WebhookReceiver) -> None:
    admin = make_admin(engine)
    member = make_member(engine, inviter=admin, name="Mia")
    set_webhook(engine, member, f"{receiver.url}/hook")
    delivery_id, _ = fire(engine, member, notify.WEBHOOK)
    receiver.answer(*[503] * 10)
    settings = settings_for()

    at = NOW
    for wait in notify.BACKOFF:
        assert deliver(engine, settings, at) == 1
        delivery = delivery_of(engine, delivery_id)
        assert (delivery.status, delivery.next_attempt_at) == ("pending", at + wait)
        at += wait
    assert deliver(engine, settings, at) == 1  # the last attempt
    delivery = delivery_of(engine, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("failed", 6, None)
    assert deliver(engine, settings, at + timedelta(days=7)) == 0
    assert len(receiver.received) == 6

    with session_scope(engine) as session:
        [failed] = notify.failed_deliveries(session, actor_of(admin))
        with pytest.raises(NotAllowedError):
            notify.failed_deliveries(session, actor_of(member))
    assert (failed.delivery_id, failed.user_name, failed.user_email) == (delivery_id, "Mia", member.email)
    assert (failed.channel, failed.kind, failed.attempts, failed.last_detail) == ("webhook", "drawdown", 6, "HTTP 503")
    assert failed.last_attempt_at == at
    assert not {"title", "body", "url", "webhook_url", "secret"} & set(vars(failed))


def test_the_address_is_checked_again_when_sending(engine: Engine, receiver: WebhookReceiver) -> None:
    """Saved while loopback was allowed, sent when it is not: refused, and the receiver hears nothing."""
    member = make_member(engine)
    set_webhook(engine, member, f"{receiver.url}/hook")
    delivery_id, _ = fire(engine, member, notify.WEBHOOK)

    deliver(engine, settings_for(ALERT_WEBHOOKS_ALLOW_PRIVATE="false"), NOW)

    [attempt] = attempts_of(engine, delivery_id)
    assert not attempt.ok
    assert "a loopback address (127.0.0.1)" in attempt.detail
    assert receiver.received == []


def test_a_webhook_removed_before_sending_fails_at_once(engine: Engine, receiver: WebhookReceiver) -> None:
    member = make_member(engine)
    set_webhook(engine, member, f"{receiver.url}/hook")
    delivery_id, _ = fire(engine, member, notify.WEBHOOK)
    set_webhook(engine, member, "")

    deliver(engine, settings_for(), NOW)

    assert delivery_of(engine, delivery_id).status == "failed"
    assert [a.detail for a in attempts_of(engine, delivery_id)] == ["not sent: no webhook is set"]


def test_a_sender_killed_mid_delivery_is_taken_over_under_the_same_key(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    member = make_member(engine)
    set_webhook(engine, member, f"{receiver.url}/hook")
    delivery_id, key = fire(engine, member, notify.WEBHOOK)
    receiver.answer(HANG)  # the first sender's request arrives, and it waits for an answer...
    env = {**os.environ, "APP_ENV": "test", "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE}
    env |= {"ALERT_WEBHOOKS_ALLOW_PRIVATE": "true"}
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER, str(engine.url), NOW.isoformat()], cwd=servers.ROOT, env=env
    )
    try:
        until("the first sender's request", lambda: receiver.received, timeout=60)
    finally:
        sender.send_signal(signal.SIGKILL)  # ... and dies before it hears back or records anything
        sender.wait()

    delivery = delivery_of(engine, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.claimed_until) == ("pending", 0, NOW + notify.CLAIM)
    settings = settings_for()
    assert deliver(engine, settings, NOW + notify.CLAIM - timedelta(seconds=1)) == 0  # still claimed
    assert deliver(engine, settings, NOW + notify.CLAIM) == 1  # the claim expired: due again

    assert receiver.keys() == [key, key]  # the resend is recognisable...
    assert len({json.loads(request.body)["id"] for request in receiver.received}) == 1  # ...one message by its key
    delivery = delivery_of(engine, delivery_id)
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_an_app_delivery_tells_the_members_open_tabs(engine: Engine) -> None:
    """deliver_due in a worker thread publishes the notice on the caller's event loop: through anyio's thread, or
    the loop given."""
    member = make_member(engine)
    other = make_member(engine)
    heard: list[Message] = []
    broadcast = LocalBroadcast()

    async def listen(message: Message) -> None:
        heard.append(message)

    broadcast.subscribe(listen)

    async def sweep() -> tuple[int, int]:
        first = fire(engine, member, notify.APP)[0]
        by_anyio = await anyio.to_thread.run_sync(
            lambda: notify.deliver_due(engine, settings_for(), broadcast, now=NOW)
        )
        fire(engine, other, notify.APP)
        loop = asyncio.get_running_loop()
        by_loop = await asyncio.to_thread(notify.deliver_due, engine, settings_for(), broadcast, now=NOW, loop=loop)
        assert delivery_of(engine, first).status == "sent"
        return by_anyio, by_loop

    assert asyncio.run(sweep()) == (1, 1)
    assert heard == [Notice(alerts_topic(member.id)), Notice(alerts_topic(other.id))]
