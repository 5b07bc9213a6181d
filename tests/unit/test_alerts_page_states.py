"""/alerts and the bell through their event handlers (issue 17): the owner manages their rules and channels and
reads their firings, bad input gets a readable message, another member neither sees nor changes any of it, the
signing secret is only in its owner's tab, and the bell counts and toasts only its own user's firings."""

import asyncio
from datetime import timedelta

import pytest

from projectalgo import notify
from projectalgo.clock import utcnow
from projectalgo.components.alerts_bell import BELL, BellState
from projectalgo.db import session_scope
from projectalgo.live import LocalBroadcast, alerts_topic
from projectalgo.live_push import live_push
from projectalgo.members import end_all_sessions
from projectalgo.models import AlertChannels, AlertRule
from projectalgo.pages.admin.alerts import AdminAlertsState
from projectalgo.pages.alerts import AlertsState
from projectalgo.runtime import services
from tests.factories import grant_membership, strategy_world
from tests.support.states import browser_view, call, same_tab, signed_in_state, visit

PUBLIC_HOOK = "https://1.1.1.1/hook"  # a public address, no name to resolve


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    for who in ("alice", "bob"):
        grant_membership(app_services, world[who], days=30)
    return world


def _page(world, who, token="tab-1"):
    page = signed_in_state(AlertsState, world[who])
    visit(page, "/alerts", client_token=token)
    assert call(page, AlertsState.open_alerts) is None
    return page


def _bell(page):
    bell = same_tab(page, BellState)
    call(bell, BellState.tick, "")
    return bell


def _deliver():
    app = services()
    return notify.deliver_due(app.engine, app.settings, LocalBroadcast(), now=utcnow() + timedelta(seconds=1))


def test_the_owner_adds_edits_pauses_and_deletes_rules(world):
    page = _page(world, "alice")
    assert page.rules == [] and [o.label for o in page.strategy_options] == ["Trend"]
    sid = str(world["strategy_id"])
    call(page, AlertsState.save_rule, {"rule_id": "0", "strategy": sid, "kind": "silence", "threshold": "15"})
    call(page, AlertsState.save_rule, {"rule_id": "", "strategy": "all", "kind": "balance", "threshold": "$5,000"})
    assert page.error == "" and page.notice == "Alert added."
    silence, balance = page.rules
    assert (silence.description, silence.unit, silence.strategy) == (
        "Trend: no snapshot for 15 minutes",
        "minutes",
        sid,
    )
    assert (balance.threshold, balance.unit, balance.strategy, balance.paused) == ("5000", "$", "all", False)

    call(page, AlertsState.edit_rule, silence.id)  # the form shows the rule, its unit with it
    assert (page.editing, page.form_kind, page.form_threshold) == (silence.id, "silence", "15")
    assert page.form_unit == "minutes"
    call(page, AlertsState.choose_kind, "drawdown")
    assert page.form_unit == "%"
    form = {"rule_id": str(silence.id), "strategy": sid, "kind": "drawdown", "threshold": "12.5%"}
    call(page, AlertsState.save_rule, form)
    assert page.error == "" and page.editing == 0 and page.rules[0].description == "Trend: drawdown beyond 12.5%"

    call(page, AlertsState.set_paused, balance.id, True)
    assert page.rules[1].paused and page.notice.startswith("Alert paused")
    call(page, AlertsState.set_paused, balance.id, False)
    assert not page.rules[1].paused
    call(page, AlertsState.delete_rule, balance.id)
    assert [r.id for r in page.rules] == [silence.id] and page.notice.startswith("Alert deleted")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"kind": "silence", "threshold": "soon"}, "soon is not a number: write the minutes like 15 or 12.5."),
        ({"kind": "drawdown", "threshold": "150"}, "A drawdown is a percentage above 0 and below 100."),
        ({"kind": "balance", "threshold": "-5"}, "Write a positive amount in dollars."),
        ({"kind": "storm", "threshold": "1"}, "Pick what the alert watches: silence, drawdown, balance or daily loss."),
        ({"kind": "silence", "threshold": "1" * 41}, "The threshold must be at most 40 characters long."),
        ({"kind": ["silence"], "threshold": "1"}, "The form could not be read. Reload the page and try again."),
    ],
)
def test_bad_rules_get_a_readable_message(world, form, message):
    page = _page(world, "alice")
    call(page, AlertsState.save_rule, {"rule_id": "0", "strategy": "all"} | form)
    assert (page.error, page.rules) == (message, [])


def test_another_member_neither_sees_nor_changes_the_owners_rules(world):
    owner = _page(world, "alice")
    call(owner, AlertsState.save_rule, {"strategy": str(world["strategy_id"]), "kind": "silence", "threshold": "15"})
    rule_id = owner.rules[0].id
    bob = _page(world, "bob", token="tab-2")
    assert bob.rules == [] and "Trend" not in browser_view(bob)
    for handler, args in (
        (AlertsState.edit_rule, (rule_id,)),
        (AlertsState.set_paused, (rule_id, True)),
        (AlertsState.delete_rule, (rule_id,)),
        (AlertsState.save_rule, ({"rule_id": str(rule_id), "strategy": "all", "kind": "silence", "threshold": "5"},)),
    ):
        call(bob, handler, *args)
        assert bob.error == "No such alert.", handler
    call(bob, AlertsState.save_rule, {"strategy": str(world["strategy_id"]), "kind": "silence", "threshold": "5"})
    assert bob.error == "No such strategy." and bob.rules == []
    with session_scope(world["engine"]) as session:
        rules = session.query(AlertRule).all()
        assert [(r.owner_id, r.threshold, r.paused) for r in rules] == [(world["alice"].id, "15", False)]


def test_the_owner_sets_channels_and_the_secret_is_in_their_tab_only(world):
    page = _page(world, "alice")
    assert not page.email_available and page.webhook_secret == ""  # no SMTP here: no email channel
    form = {"webhook_url": PUBLIC_HOOK, "webhook_preset": "discord", "telegram_chat_id": ""}
    call(page, AlertsState.save_channels, form)
    assert page.error == "" and (page.webhook_url, page.webhook_preset) == (PUBLIC_HOOK, "discord")
    secret = page.webhook_secret
    assert len(secret) == 64 and secret in browser_view(page)
    call(page, AlertsState.new_secret)
    assert page.webhook_secret not in ("", secret)

    for who in ("bob", "admin"):
        other = _page(world, who, token=f"tab-{who}")
        view = browser_view(other)
        assert other.webhook_url == "" and page.webhook_secret not in view and PUBLIC_HOOK not in view
        call(other, AlertsState.new_secret)  # their own secret: never the owner's
        assert other.webhook_secret not in ("", page.webhook_secret)
    with session_scope(world["engine"]) as session:
        assert session.get(AlertChannels, world["alice"].id).webhook_secret == page.webhook_secret


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"webhook_url": "ftp://example.com/x"}, "A webhook URL starts with https:// (or http://)."),
        ({"webhook_url": PUBLIC_HOOK, "webhook_preset": "telegram"}, "Telegram needs the chat id to send to."),
        ({"webhook_url": PUBLIC_HOOK, "telegram_chat_id": "not a chat"}, "A Telegram chat id is a number"),
        ({"webhook_preset": "pigeon"}, "Choose a message format: generic, discord, slack, telegram."),
        ({"webhook_url": "http://127.0.0.1:9/hook"}, "127.0.0.1"),  # the address guard names the refused address
    ],
)
def test_bad_channels_get_a_readable_message(world, form, message):
    page = _page(world, "alice")
    call(page, AlertsState.save_channels, {"webhook_preset": "generic"} | form)
    assert message in page.error and page.webhook_url == ""


def test_tests_and_firings_with_their_deliveries_reach_the_bell_of_the_owner_only(world):
    page = _page(world, "alice")
    bell = _bell(page)
    assert (bell.unread, bell.toasts) == (0, []) and live_push.watching("tab-1", slot=BELL)
    bobs_bell = _bell(_page(world, "bob", token="tab-2"))

    call(page, AlertsState.send_test, "email")  # no SMTP: no email channel
    assert page.error == "This server sends no email: ask an admin to set up SMTP."
    call(page, AlertsState.send_test, "webhook")
    assert page.error == "Set a webhook URL first."
    call(page, AlertsState.send_test, {"not": "a channel"})
    assert page.error == "The form could not be read. Reload the page and try again."
    call(page, AlertsState.send_test, "app")
    assert page.error == "" and page.notice.startswith("Test alert made")
    (firing,) = page.firings
    deliveries = [(d.channel, d.status, d.tries) for d in firing.deliveries]
    assert firing.unread and deliveries == [("In the app", "waiting", [])]

    assert _deliver() == 1
    asyncio.run(bell._apply_notice(alerts_topic(world["alice"].id)))  # the push the delivery publishes
    assert bell.unread == 1 and [t.title for t in bell.toasts] == ["Test alert"]
    asyncio.run(bobs_bell._apply_notice(alerts_topic(world["alice"].id)))  # another user's topic: nothing
    assert (bobs_bell.unread, bobs_bell.toasts) == (0, [])
    asyncio.run(page._apply_notice(alerts_topic(world["alice"].id)))
    (delivery,) = page.firings[0].deliveries
    assert (delivery.status, [t.result for t in delivery.tries]) == ("sent", ["sent: shown in the app"])

    call(bell, BellState.dismiss, firing.id)
    assert bell.toasts == [] and bell.unread == 1
    call(page, AlertsState.mark_read)
    assert bell.unread == 0 and not page.firings[0].unread
    assert "Test alert" not in browser_view(bobs_bell)


def test_a_bell_whose_sign_in_ended_empties_and_stops(world):
    page = _page(world, "alice")
    bell = _bell(page)
    call(page, AlertsState.send_test, "app")
    _deliver()
    with session_scope(world["engine"]) as session:
        end_all_sessions(session, world["alice"].id)  # signed out everywhere, from another tab
    asyncio.run(bell._apply_notice(alerts_topic(world["alice"].id)))
    assert (bell.unread, bell.toasts) == (0, []) and not live_push.watching("tab-1", slot=BELL)


def test_admins_see_everyones_firings_and_failed_deliveries_and_nobody_else_does(world):
    call(_page(world, "alice"), AlertsState.send_test, "app")
    admin = signed_in_state(AdminAlertsState, world["admin"])
    visit(admin, "/admin")
    assert call(admin, AdminAlertsState.open_alerts) is None
    assert [(f.user, f.title, f.deliveries) for f in admin.firings] == [("Alice", "Test alert", "app pending")]
    assert admin.failed == []
    bob = signed_in_state(AdminAlertsState, world["bob"])
    visit(bob, "/admin", client_token="tab-2")
    assert call(bob, AdminAlertsState.open_alerts) is not None  # sent away, audited
    assert bob.firings == [] and "Test alert" not in browser_view(bob)
