"""The admin page's events called directly, bypassing the UI, from anonymous, member, moderator and admin."""

import pytest
from sqlalchemy import select

from projectalgo import accounts
from projectalgo.db import session_scope
from projectalgo.models import AuditEntry, Invitation, Membership, User
from projectalgo.pages.admin import AdminState
from tests.factories import grant_membership, make_admin, make_member
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
        accounts.change_role(session, user=session.get(User, moderator.id), role="moderator", grant=True)
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
