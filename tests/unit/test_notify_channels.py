"""Members' alert channels (issue 17): each member reads and changes only their own, with readable refusals; the
signing secret is made on the first save and renewed on demand; "send a test" per channel that is set up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from projectalgo import notify
from projectalgo.db import session_scope
from projectalgo.errors import InvalidInputError, RateLimitedError
from projectalgo.models import AlertDelivery, AlertFiring
from projectalgo.settings import Settings, load_settings
from tests.conftest import TEST_SECRET_KEY_BASE
from tests.factories import actor_of, make_member

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOOK = "http://127.0.0.1:9/hook"  # loopback: these tests allow private addresses, as a trusted network would


def settings(**env: str) -> Settings:
    base = {"APP_ENV": "test", "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE, "ALERT_WEBHOOKS_ALLOW_PRIVATE": "true"}
    return load_settings(base | env)


WITH_SMTP = {"SMTP_HOST": "127.0.0.1", "SMTP_TLS": "none"}


def save(engine: Engine, user, app_settings: Settings | None = None, **changes: object) -> notify.ChannelsView:
    fields = {"email_enabled": True, "webhook_url": HOOK, "webhook_preset": "generic", "telegram_chat_id": ""}
    with session_scope(engine) as session:
        return notify.save_channels(session, actor_of(user), app_settings or settings(), **(fields | changes))


def view(engine: Engine, user, app_settings: Settings | None = None) -> notify.ChannelsView:
    with session_scope(engine) as session:
        return notify.channels_view(session, actor_of(user), app_settings or settings())


def test_email_shows_only_when_the_server_can_send_it(engine: Engine) -> None:
    member = make_member(engine)
    hidden = view(engine, member)
    assert (hidden.email_available, hidden.email_enabled, hidden.email) == (False, False, "")
    shown = view(engine, member, settings(**WITH_SMTP))
    assert (shown.email_available, shown.email_enabled, shown.email) == (True, True, member.email)
    assert (shown.webhook_url, shown.webhook_preset, shown.webhook_secret) == ("", "generic", "")


def test_each_member_saves_and_reads_only_their_own_channels(engine: Engine) -> None:
    alice, bob = make_member(engine), make_member(engine)
    saved = save(engine, alice, webhook_preset="telegram", telegram_chat_id="-1001234567890", email_enabled=False)
    assert (saved.webhook_url, saved.webhook_preset, saved.telegram_chat_id) == (HOOK, "telegram", "-1001234567890")
    assert len(saved.webhook_secret) == 64  # made on the first save
    assert view(engine, alice) == saved
    assert view(engine, bob).webhook_url == ""  # Bob sees his own (none), never Alice's
    assert view(engine, alice, settings(**WITH_SMTP)).email_enabled is False

    again = save(engine, alice, webhook_url=" http://127.0.0.1:9/other ")
    assert (again.webhook_url, again.webhook_secret) == ("http://127.0.0.1:9/other", saved.webhook_secret)
    with session_scope(engine) as session:
        renewed = notify.new_webhook_secret(session, actor_of(alice), settings())
    assert renewed.webhook_secret not in ("", saved.webhook_secret)
    assert save(engine, alice, webhook_url="").webhook_url == ""  # removed


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"webhook_preset": "teams"}, "Choose a message format"),
        ({"webhook_preset": "telegram"}, "Telegram needs the chat id"),
        ({"telegram_chat_id": "12; DROP"}, "A Telegram chat id is"),
        ({"webhook_url": "ftp://127.0.0.1/hook"}, "starts with https://"),
    ],
)
def test_wrong_channels_are_refused_readably_and_nothing_is_saved(engine: Engine, changes: dict, reason: str) -> None:
    member = make_member(engine)
    with pytest.raises(InvalidInputError) as refused:
        save(engine, member, **changes)
    assert reason in refused.value.message
    assert view(engine, member).webhook_url == ""


def test_loopback_is_refused_unless_the_setting_allows_it(engine: Engine) -> None:
    member = make_member(engine)
    with pytest.raises(InvalidInputError, match="loopback"):
        save(engine, member, settings(ALERT_WEBHOOKS_ALLOW_PRIVATE="false"))
    assert save(engine, member).webhook_url == HOOK


def test_send_a_test_on_each_channel_that_is_set_up(engine: Engine) -> None:
    member = make_member(engine)
    actor = actor_of(member)
    with session_scope(engine) as session:
        with pytest.raises(InvalidInputError, match="sends no email"):
            notify.send_test(session, actor, notify.EMAIL, settings(), NOW)
        with pytest.raises(InvalidInputError, match="Set a webhook URL first"):
            notify.send_test(session, actor, notify.WEBHOOK, settings(), NOW)
        with pytest.raises(InvalidInputError, match="Choose a channel"):
            notify.send_test(session, actor, "sms", settings(), NOW)
        firing_id = notify.send_test(session, actor, notify.APP, settings(), NOW)
    save(engine, member, email_enabled=False)
    with session_scope(engine) as session:
        with pytest.raises(InvalidInputError, match="Email alerts are off"):
            notify.send_test(session, actor, notify.EMAIL, settings(**WITH_SMTP), NOW)
        notify.send_test(session, actor, notify.WEBHOOK, settings(), NOW)
        firing = session.get_one(AlertFiring, firing_id)
        [delivery] = session.scalars(select(AlertDelivery).where(AlertDelivery.firing_id == firing_id))
    assert (firing.user_id, firing.kind, firing.created_at) == (member.id, "test", NOW)
    assert (delivery.channel, delivery.status, delivery.next_attempt_at) == ("app", "pending", NOW)


def test_tests_are_limited_per_minute(engine: Engine) -> None:
    member = make_member(engine)
    with session_scope(engine) as session:
        for _ in range(notify.TESTS_PER_MINUTE):
            notify.send_test(session, actor_of(member), notify.APP, settings(), NOW)
        with pytest.raises(RateLimitedError):
            notify.send_test(session, actor_of(member), notify.APP, settings(), NOW)
        notify.send_test(session, actor_of(member), notify.APP, settings(), NOW + timedelta(minutes=1))
