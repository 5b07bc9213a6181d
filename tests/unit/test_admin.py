from datetime import timedelta

import pytest
from sqlalchemy import select

from projectalgo import accounts, admin, billing, strategies
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import AuditEntry, Invitation, User
from tests.factories import actor_of, make_admin, make_member, make_strategy, resolve


def _do(engine, work):
    with session_scope(engine) as session:
        return work(session)


def _audit(engine):
    return _do(engine, lambda s: [(e.action, e.outcome, e.reason) for e in s.scalars(select(AuditEntry))])


def test_the_last_admin_cannot_be_demoted_nor_remove_their_own_admin_role(engine):
    boss = make_admin(engine)
    with pytest.raises(admin.AdminError, match="your own admin role"):
        _do(engine, lambda s: admin.set_role(s, actor_of(boss), user_id=boss.id, role="admin", grant=False))
    second = make_member(engine, inviter=boss)
    _do(
        engine,
        lambda s: admin.set_role(s, actor_of(boss), user_id=second.id, role="admin", grant=True, reason="co-admin"),
    )
    second = _do(engine, lambda s: s.get(User, second.id))
    # Now two admins: the second may demote the first, then is the last and stays.
    _do(engine, lambda s: admin.set_role(s, actor_of(second), user_id=boss.id, role="admin", grant=False))
    assert _do(engine, lambda s: s.get(User, boss.id)).roles == ["member"]
    assert _audit(engine) == [("grant admin", "done", "co-admin"), ("remove admin", "done", "")]


def test_the_last_admin_rule_counts_only_enabled_admins(engine):
    boss, other = make_admin(engine), make_admin(engine)
    _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=other.id, disabled=True))
    with pytest.raises(admin.AdminError, match="last admin"):
        _do(engine, lambda s: admin.set_role(s, actor_of(boss), user_id=other.id, role="admin", grant=False))


def test_disabling_ends_sessions_and_bot_tokens_but_keeps_data_and_not_oneself(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    strategy_id, token = make_strategy(engine, member)
    session_token = _do(engine, lambda s: accounts.start_session(s, user=member, days=1))
    with pytest.raises(admin.AdminError, match="disable yourself"):
        _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=boss.id, disabled=True))
    _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=member.id, disabled=True, reason="abuse"))
    assert _do(engine, lambda s: accounts.user_for_session(s, session_token)) is None
    assert _do(engine, lambda s: resolve(s, token)) is None
    assert _do(engine, lambda s: strategies.get_strategy(s, actor_of(boss), strategy_id)).name == "Trend"
    _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=member.id, disabled=False))
    assert _do(engine, lambda s: resolve(s, token)) is not None
    assert _do(engine, lambda s: accounts.user_for_session(s, session_token)) is None  # ended sessions stay ended


def test_invites_can_be_changed_disabled_and_created_within_bounds(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    own = _do(engine, lambda s: accounts.own_invitation(s, member.id))
    act = actor_of(boss)
    _do(engine, lambda s: admin.set_invite_uses(s, act, invitation_id=own.id, uses=10, reason="trusted"))
    for bad in (-1, 10_001):
        with pytest.raises(admin.AdminError, match="between 0 and 10000"):
            _do(engine, lambda s, bad=bad: admin.set_invite_uses(s, act, invitation_id=own.id, uses=bad))
    with pytest.raises(admin.AdminError, match="No such invitation"):
        _do(engine, lambda s: admin.set_invite_uses(s, act, invitation_id=999, uses=1))
    _do(engine, lambda s: admin.set_invite_disabled(s, act, invitation_id=own.id, disabled=True))
    extra = _do(engine, lambda s: admin.create_invite(s, act, user_id=member.id, uses=3))
    rows = {r.id: r for r in _do(engine, lambda s: admin.list_invites(s, act))}
    assert (rows[own.id].uses_remaining, rows[own.id].disabled) == (10, True)
    assert (rows[extra.id].uses_remaining, rows[extra.id].owner_email) == (3, member.email)
    boss_invite = _do(engine, lambda s: accounts.own_invitation(s, boss.id))
    assert rows[boss_invite.id].registrations == 1  # the member registered with it
    assert [a for a, _, _ in _audit(engine)] == ["invite uses 5 -> 10", "disable invite", "create invite (3 uses)"]


def test_memberships_are_granted_within_1_to_3650_days_and_ended_with_a_reason(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    act = actor_of(boss)
    for bad in (0, 3651):
        with pytest.raises(admin.AdminError, match="between 1 and 3650"):
            _do(engine, lambda s, bad=bad: admin.grant_membership(s, act, user_id=member.id, days=bad))
    with pytest.raises(admin.AdminError, match="No such user"):
        _do(engine, lambda s: admin.grant_membership(s, act, user_id=999, days=5))
    _do(engine, lambda s: admin.grant_membership(s, act, user_id=member.id, days=30, reason="comp"))
    _do(engine, lambda s: admin.grant_membership(s, act, user_id=member.id, days=30))
    status = _do(engine, lambda s: billing.status(s, s.get(User, member.id)))
    assert status.active and status.ends_at > utcnow() + timedelta(days=59)
    with pytest.raises(admin.AdminError, match="reason"):
        _do(engine, lambda s: admin.end_membership(s, act, user_id=member.id, reason=" "))
    _do(engine, lambda s: admin.end_membership(s, act, user_id=member.id, reason="refunded"))
    assert not _do(engine, lambda s: billing.status(s, s.get(User, member.id))).active


def test_users_are_searched_and_paged(engine):
    boss = make_admin(engine, name="Boss")
    invitation_id = _do(engine, lambda s: accounts.own_invitation(s, boss.id).id)
    _do(engine, lambda s: admin.set_invite_uses(s, actor_of(boss), invitation_id=invitation_id, uses=30))
    for n in range(30):
        make_member(engine, inviter=boss, name=f"Trader {n}", email=f"trader{n}@example.com")
    rows, total = _do(engine, lambda s: admin.list_users(s, actor_of(boss), page=2))
    assert total == 31 and len(rows) == 6
    rows, total = _do(engine, lambda s: admin.list_users(s, actor_of(boss), search="TRADER 1"))
    assert total == 11 and {r.name for r in rows} >= {"Trader 1", "Trader 19"}


@pytest.mark.parametrize("role", [None, "member", "moderator"])
def test_only_admins_change_and_only_moderators_read(engine, role):
    boss = make_admin(engine)
    target = make_member(engine, inviter=boss)
    invitation_id = _do(engine, lambda s: s.scalar(select(Invitation.id)))
    actor = None
    if role:
        user = make_member(engine, inviter=boss)
        if role == "moderator":
            _do(engine, lambda s: accounts.change_role(s, user=s.get(User, user.id), role="moderator", grant=True))
        actor = accounts.Actor(user.id, ("member", role) if role == "moderator" else ("member",))
    changes = [
        lambda s: admin.set_role(s, actor, user_id=target.id, role="moderator", grant=True),
        lambda s: admin.set_disabled(s, actor, user_id=target.id, disabled=True),
        lambda s: admin.set_invite_uses(s, actor, invitation_id=invitation_id, uses=50),
        lambda s: admin.set_invite_disabled(s, actor, invitation_id=invitation_id, disabled=True),
        lambda s: admin.create_invite(s, actor, user_id=target.id, uses=5),
        lambda s: admin.grant_membership(s, actor, user_id=target.id, days=365),
        lambda s: admin.end_membership(s, actor, user_id=target.id, reason="x"),
        lambda s: admin.list_invites(s, actor),
        lambda s: admin.list_payments(s, actor),
        lambda s: admin.audit_log(s, actor),
    ]
    for change in changes:
        with pytest.raises(admin.NotAllowedError):
            _do(engine, change)
    reads = [lambda s: admin.list_users(s, actor), lambda s: admin.list_strategies(s, actor)]
    for read in reads:
        if role == "moderator":
            _do(engine, read)
        else:
            with pytest.raises(admin.NotAllowedError):
                _do(engine, read)
    assert _audit(engine) == []
