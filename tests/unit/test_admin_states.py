"""The admin page's events called directly, bypassing the UI, from anonymous, member, moderator and admin."""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from projectalgo import admin, charts, members
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import AuditEntry, Invitation, Membership, PasswordReset, Strategy, User
from projectalgo.pages.admin import AdminState
from projectalgo.runtime import services
from tests.factories import grant_membership, make_admin, make_member, make_strategy
from tests.support.states import browser_view, call, signed_in_state


@pytest.fixture
def people(app_services):
    engine = app_services
    boss = make_admin(engine, name="Boss")
    target = make_member(engine, inviter=boss, name="Target")
    member = make_member(engine, inviter=boss, name="Plain")
    moderator = make_member(engine, inviter=boss, name="Mod")
    grant_membership(engine, target, days=30)
    with session_scope(engine) as session:
        members.change_role(session, user=session.get(User, moderator.id), role="moderator", grant=True)
        invitation_id = session.scalar(select(Invitation.id).where(Invitation.owner_id == target.id))
    return {
        "engine": engine,
        "admin": boss,
        "target": target,
        "member": member,
        "moderator": moderator,
        "anonymous": None,
        "invitation_id": invitation_id,
    }


ACTIONS = {
    "make moderator": lambda p: (AdminState.set_role, [p["target"].id, "moderator", True]),
    "disable": lambda p: (AdminState.set_disabled, [p["target"].id, True]),
    "grant membership": lambda p: (AdminState.grant_membership, [{"user_id": str(p["target"].id), "days": "30"}]),
    "end membership": lambda p: (AdminState.end_membership, [{"user_id": str(p["target"].id), "reason": "r"}]),
    "invite uses": lambda p: (AdminState.set_invite_uses, [{"invitation_id": str(p["invitation_id"]), "uses": "9"}]),
    "disable invite": lambda p: (AdminState.set_invite_disabled, [p["invitation_id"], True]),
    "create invite": lambda p: (AdminState.create_invite, [{"user_id": str(p["target"].id), "uses": "2"}]),
}


def _world(engine):
    with session_scope(engine) as session:
        target = session.scalar(select(User).where(User.name == "Target"))
        invitations = sorted(
            (i.id, i.uses_remaining, i.disabled_at is not None) for i in session.scalars(select(Invitation))
        )
        memberships = sorted((m.user_id, m.ends_at) for m in session.scalars(select(Membership)))
        return target.roles, target.disabled_at, invitations, memberships


def _refusals(engine):
    with session_scope(engine) as session:
        return [
            (e.action, e.actor_id) for e in session.scalars(select(AuditEntry).where(AuditEntry.outcome == "refused"))
        ]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("who", ["anonymous", "member", "moderator"])
def test_only_admins_may_change_anything_and_refusals_are_audited(people, action, who):
    before = _world(people["engine"])
    handler, args = ACTIONS[action](people)
    state = signed_in_state(AdminState, people[who])
    redirect = call(state, handler, *args)
    assert ("/login" if who == "anonymous" else "/dashboard") in str(redirect)
    assert _world(people["engine"]) == before
    actor_id = people[who].id if people[who] else None
    assert [by for _, by in _refusals(people["engine"])] == [actor_id]
    assert "Target" not in browser_view(state)


@pytest.mark.parametrize("action", ACTIONS)
def test_an_admin_may(people, action):
    before = _world(people["engine"])
    handler, args = ACTIONS[action](people)
    state = signed_in_state(AdminState, people["admin"])
    assert call(state, handler, *args) is None
    assert state.error == "" and state.notice
    assert _world(people["engine"]) != before
    assert state.audit[0].actor == people["admin"].email and state.audit[0].outcome == "done"


def test_moderators_read_users_and_strategies_only_and_members_read_nothing(people):
    moderator = signed_in_state(AdminState, people["moderator"])
    assert call(moderator, AdminState.open_admin) is None
    assert {u.name for u in moderator.users} >= {"Boss", "Target"}
    assert moderator.invites == [] and moderator.payments == [] and moderator.audit == []

    member = signed_in_state(AdminState, people["member"])
    assert "/dashboard" in str(call(member, AdminState.open_admin))
    assert member.users == [] and "Target" not in browser_view(member)
    assert _refusals(people["engine"]) == [("open admin page", people["member"].id)]


def test_bad_input_gets_a_message_and_changes_nothing(people):
    state = signed_in_state(AdminState, people["admin"])
    call(state, AdminState.open_admin)
    before = _world(people["engine"])
    for handler, args, message in [
        (AdminState.set_invite_uses, [{"invitation_id": str(people["invitation_id"]), "uses": "-3"}], "between 0"),
        (AdminState.grant_membership, [{"user_id": str(people["target"].id), "days": "4000"}], "between 1"),
        (AdminState.grant_membership, [{"user_id": "999999", "days": "3"}], "No such user"),
        (AdminState.set_role, ["not-a-number", "admin", True], "No such user"),
        (AdminState.set_role, [people["admin"].id, "admin", False], "your own admin role"),
        (AdminState.set_disabled, [people["admin"].id, True], "disable yourself"),
    ]:
        assert call(state, handler, *args) is None
        assert message in state.error
    assert _world(people["engine"]) == before


# Refusal floods and browser text in the audit log (issue 12)


def _entries(engine):
    with session_scope(engine) as session:
        return [(e.action, e.target, e.outcome) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_a_flood_of_refused_set_role_calls_writes_a_few_short_rows_per_tab(people, caplog):
    engine = people["engine"]
    tab = signed_in_state(AdminState, None)
    with caplog.at_level(logging.WARNING, logger="projectalgo.admin"):
        for _ in range(20):
            assert "/login" in str(call(tab, AdminState.set_role, people["target"].id, "x" * 200_000, True))
    assert _entries(engine) == [("grant invalid role", f"user {people['target'].id}", "refused")] * (
        admin.REFUSALS_PER_TAB
    )
    assert [r.getMessage().rsplit("count=", 1)[1] for r in caplog.records] == ["1", "2", "4", "8"]
    assert "xxxx" not in caplog.text


def test_refusals_from_tab_after_tab_stop_at_the_cap_for_all_anonymous_callers(people):
    for _ in range(admin.REFUSALS_PER_ACTOR + 5):
        call(signed_in_state(AdminState, None), AdminState.open_admin)
        call(signed_in_state(AdminState, None), AdminState.set_role, people["target"].id, "admin", True)
    assert len(_refusals(people["engine"])) == admin.REFUSALS_PER_ACTOR
    boss = signed_in_state(AdminState, people["admin"])
    call(boss, AdminState.grant_membership, {"user_id": str(people["target"].id), "days": "7", "reason": "real"})
    assert boss.audit[0].reason == "real" and boss.audit[0].outcome == "done"


def test_every_refused_admin_event_records_only_whitelisted_text(people):
    """Whatever the browser sends, the refusal names the event, not the browser's text."""
    junk = "<script>" + "j" * 100_000
    calls = [
        (AdminState.set_role, [junk, junk, junk]),
        (AdminState.set_disabled, [junk, junk]),
        (AdminState.set_invite_disabled, [junk, junk]),
        (AdminState.issue_reset_link, [junk]),
        (AdminState.grant_membership, [{"user_id": junk, "days": junk, "reason": junk}]),
        (AdminState.end_membership, [{"user_id": junk, "reason": junk}]),
        (AdminState.set_invite_uses, [{"invitation_id": junk, "uses": junk, "reason": junk}]),
        (AdminState.create_invite, [{"user_id": junk, "uses": junk, "reason": junk}]),
        (AdminState.search_users, [{"search": junk}]),
        (AdminState.change_page, [junk]),
    ]
    for handler, args in calls:
        call(signed_in_state(AdminState, people["member"]), handler, *args)
    entries = _entries(people["engine"])
    assert len(entries) == len(calls)
    assert all("j" * 10 not in action + target and "<" not in action + target for action, target, _ in entries)
    assert [a for a, _, _ in entries] == [
        "change invalid role",
        "disable or enable user",
        "disable or enable invite",
        "issue password reset link",
        "grant membership",
        "end membership",
        "set invite uses",
        "create invite",
        "search users",
        "page users",
    ]


# Crafted arguments: every handler answers with a message, never an exception (issue 12)

BAD_FORMS = [None, "user_id=1", 7, ["user_id", "1"], {"user_id": ["1"]}, {"user_id": {"$gt": 0}}, {"user_id": None}]


def _crafted(p):
    uid, iid = str(p["target"].id), str(p["invitation_id"])
    huge = "9" * 1_000_000
    return {
        "grant_membership": (
            AdminState.grant_membership,
            [*([f] for f in BAD_FORMS), [{}], [{"user_id": uid}], [{"user_id": uid, "days": huge}],
             [{"user_id": uid, "days": "30", "reason": "r" * 100_000}], [{"user_id": huge, "days": "30"}],
             [{"user_id": uid, "days": 30.5}], [{"user_id": uid, "days": ["30"]}]],
        ),
        "end_membership": (
            AdminState.end_membership,
            [*([f] for f in BAD_FORMS), [{}], [{"user_id": uid}], [{"user_id": uid, "reason": ["r"]}],
             [{"user_id": uid, "reason": "r" * 100_000}], [{"user_id": str(2**40), "reason": "r"}]],
        ),
        "set_invite_uses": (
            AdminState.set_invite_uses,
            [*([f] for f in BAD_FORMS), [{}], [{"invitation_id": iid}], [{"invitation_id": iid, "uses": huge}],
             [{"invitation_id": iid, "uses": "1", "reason": {"r": 1}}], [{"invitation_id": huge, "uses": "1"}]],
        ),
        "create_invite": (
            AdminState.create_invite,
            [*([f] for f in BAD_FORMS), [{}], [{"user_id": uid}], [{"user_id": uid, "uses": "-1"}],
             [{"user_id": uid, "uses": "2", "reason": "r" * 100_000}], [{"user_id": "", "uses": "2"}]],
        ),
        "search_users": (
            AdminState.search_users,
            [[None], ["x"], [[1]], [{"search": ["a"]}], [{"search": None}], [{"search": "s" * 100_000}]],
        ),
        "change_page": (AdminState.change_page, [[None], ["1"], [1.0], [True], [10**100], [[1]], [{"step": 1}]]),
        "set_role": (
            AdminState.set_role,
            [[uid, "moderator", "false"], [uid, "moderator", None], [uid, ["admin"], True], [uid, None, True],
             [[uid], "moderator", True], [2**63, "moderator", True], [huge, "moderator", True],
             [{"id": uid}, "admin", False], [uid, "member", True], [uid, "superuser", True]],
        ),
        "set_disabled": (
            AdminState.set_disabled,
            [[uid, "true"], [uid, 1], [uid, None], [None, True], [2**63, True], [huge, True], [[uid], True]],
        ),
        "set_invite_disabled": (
            AdminState.set_invite_disabled,
            [[iid, "true"], [iid, 0], [iid, [True]], [None, True], [-5, True], [2**63, False], [huge, True]],
        ),
        "issue_reset_link": (AdminState.issue_reset_link, [[None], [[uid]], [2**63], [huge], ["-1"], [0], [True]]),
    }  # fmt: skip


@pytest.mark.parametrize(
    "handler",
    ["grant_membership", "end_membership", "set_invite_uses", "create_invite", "search_users", "change_page",
     "set_role", "set_disabled", "set_invite_disabled", "issue_reset_link"],
)  # fmt: skip
def test_crafted_arguments_get_a_message_and_change_nothing(people, handler):
    state = signed_in_state(AdminState, people["admin"])
    call(state, AdminState.open_admin)
    before = _world(people["engine"])
    event, argument_sets = _crafted(people)[handler]
    for args in argument_sets:
        state.error = ""
        assert call(state, event, *args) is None, args
        assert state.error, args  # a readable message, not an exception
        assert len(state.error) < 200 and "Traceback" not in state.error
        assert state.reset_link == ""
    assert _world(people["engine"]) == before
    assert not [e for e in _entries(people["engine"]) if e[2] == "done"]
    assert {u.name for u in state.users} >= {"Boss", "Target"}  # the page still works


# Password reset links (issue 12)


def _resets(engine):
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(PasswordReset))


def test_an_admin_sees_a_reset_link_once_and_the_next_click_forgets_it(people):
    engine, target = people["engine"], people["target"]
    state = signed_in_state(AdminState, people["admin"])
    call(state, AdminState.open_admin)
    assert call(state, AdminState.issue_reset_link, target.id) is None
    prefix = f"{services().settings.public_url}/reset/"
    assert state.reset_link.startswith(prefix) and state.reset_link_for == target.email and state.error == ""
    token = state.reset_link.removeprefix(prefix)
    with session_scope(engine) as session:
        assert members.password_reset_usable(session, token)
    assert token in browser_view(state)
    assert token not in repr(_entries(engine)) and token not in repr(state.audit)
    assert state.audit[0].action == "issue password reset link" and state.audit[0].target == target.email

    call(state, AdminState.open_admin)  # a reload
    assert state.reset_link == "" and token not in browser_view(state)
    call(state, AdminState.issue_reset_link, target.id)
    call(state, AdminState.search_users, {"search": "Target"})  # any other click
    assert state.reset_link == ""
    call(state, AdminState.issue_reset_link, target.id)
    call(state, AdminState.close_reset_link)
    assert state.reset_link == "" and state.reset_link_for == ""
    with session_scope(engine) as session:
        assert not members.password_reset_usable(session, token)  # a newer link replaced it


@pytest.mark.parametrize("who", ["anonymous", "member", "moderator"])
def test_only_admins_get_reset_links_and_refusals_are_audited(people, who):
    state = signed_in_state(AdminState, people[who])
    redirect = call(state, AdminState.issue_reset_link, people["target"].id)
    assert ("/login" if who == "anonymous" else "/dashboard") in str(redirect)
    assert state.reset_link == "" and _resets(people["engine"]) == 0
    actor_id = people[who].id if people[who] else None
    assert _refusals(people["engine"]) == [("issue password reset link", actor_id)]


# Statuses that follow the clock on an open page (issue 13)


def _last_snapshot(engine, strategy_id, minutes_ago):
    with session_scope(engine) as session:
        session.get(Strategy, strategy_id).last_snapshot_at = utcnow() - timedelta(minutes=minutes_ago)


def _minute_passes(state):
    state._statuses_read_at -= charts.TICK_MS / 1000


@pytest.mark.parametrize("who", ["moderator", "admin"])
def test_the_tabs_timer_recomputes_statuses_once_a_minute_and_keeps_what_the_page_shows(people, who):
    engine = people["engine"]
    never, _ = make_strategy(engine, people["target"], name="Quiet")
    fresh, _ = make_strategy(engine, people["target"], name="Busy")
    fading, _ = make_strategy(engine, people["target"], name="Fading")
    stale_after, offline_after = services().settings.stale_after_minutes, services().settings.offline_after_minutes
    _last_snapshot(engine, fresh, minutes_ago=stale_after - 1)
    _last_snapshot(engine, fading, minutes_ago=offline_after - 1)
    state = signed_in_state(AdminState, people[who])
    call(state, AdminState.open_admin)
    assert {s.name: s.status for s in state.strategies} == {"Quiet": "never", "Busy": "live", "Fading": "stale"}
    state.error, state.notice, state.reset_link = "shown error", "shown notice", "shown link"

    _last_snapshot(engine, fresh, minutes_ago=stale_after + 1)  # the clock moved on; Quiet's bot posted
    _last_snapshot(engine, never, minutes_ago=0)
    _last_snapshot(engine, fading, minutes_ago=offline_after + 1)
    assert call(state, AdminState.refresh_statuses, "a few seconds ago") is None  # the timer's first, on mount
    before = {"Quiet": "never", "Busy": "live", "Fading": "stale"}
    assert {s.name: s.status for s in state.strategies} == before  # nothing was read

    _minute_passes(state)
    assert call(state, AdminState.refresh_statuses, "a minute ago") is None
    assert {s.name: s.status for s in state.strategies} == {"Quiet": "live", "Busy": "stale", "Fading": "offline"}
    assert (state.error, state.notice, state.reset_link) == ("shown error", "shown notice", "shown link")
    assert (state.invites != []) == (who == "admin")  # the rest of the page stays as it was loaded


@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_the_timer_event_from_anyone_else_reads_nothing_and_is_refused(people, who):
    make_strategy(people["engine"], people["target"], name="Secret Sauce")
    state = signed_in_state(AdminState, people[who])
    redirect = call(state, AdminState.refresh_statuses, "")
    assert ("/login" if who == "anonymous" else "/dashboard") in str(redirect)
    assert state.strategies == [] and "Secret Sauce" not in browser_view(state)
    actor_id = people[who].id if people[who] else None
    assert _refusals(people["engine"]) == [("refresh statuses", actor_id)]


def test_a_moderator_demoted_while_the_page_is_open_is_refused_at_the_next_tick(people):
    make_strategy(people["engine"], people["target"], name="Secret Sauce")
    state = signed_in_state(AdminState, people["moderator"])
    call(state, AdminState.open_admin)
    assert [s.name for s in state.strategies] == ["Secret Sauce"]
    with session_scope(people["engine"]) as session:
        members.change_role(session, user=session.get(User, people["moderator"].id), role="moderator", grant=False)
    _minute_passes(state)
    assert "/dashboard" in str(call(state, AdminState.refresh_statuses, ""))
    assert state.strategies == [] and "Secret Sauce" not in browser_view(state)


@pytest.mark.parametrize(
    ("action", "read_again"),
    [("disable invite", {"invitations"}), ("grant membership", {"users"}), ("disable", {"users"})],
)
def test_a_change_reads_again_only_the_tables_it_changed_and_the_audit_log(people, action, read_again):
    page = signed_in_state(AdminState, people["admin"])
    call(page, AdminState.open_admin)
    handler, args = ACTIONS[action](people)
    tables: set[str] = set()

    def note(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            named = ("users", "invitations", "payments", "strategies", "audit_log")
            tables.update(t for t in named if f" {t}" in statement)

    event.listen(services().engine, "before_cursor_execute", note)
    try:
        call(page, handler, *args)
    finally:
        event.remove(services().engine, "before_cursor_execute", note)
    assert page.notice and not page.error
    assert "payments" not in tables and "strategies" not in tables and "audit_log" in tables
    assert read_again <= tables
