import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from projectalgo import admin, forms, members, memberships, strategies
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.errors import InvalidInputError, NotAllowedError
from projectalgo.models import AuditEntry, Invitation, PasswordReset, User
from tests.factories import actor_of, make_admin, make_member, make_strategy, resolve

IDLE = timedelta(days=1)


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
    session_token = _do(engine, lambda s: members.start_session(s, user=member, days=1))
    with pytest.raises(admin.AdminError, match="disable yourself"):
        _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=boss.id, disabled=True))
    _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=member.id, disabled=True, reason="abuse"))
    assert _do(engine, lambda s: members.user_for_session(s, session_token, idle=IDLE)) is None
    assert _do(engine, lambda s: resolve(s, token)).owner_disabled  # the ingestion refuses it, saying why
    assert _do(engine, lambda s: strategies.get_strategy(s, actor_of(boss), strategy_id)).name == "Trend"
    _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=member.id, disabled=False))
    assert not _do(engine, lambda s: resolve(s, token)).owner_disabled
    assert (
        _do(engine, lambda s: members.user_for_session(s, session_token, idle=IDLE)) is None
    )  # ended sessions stay ended


def test_invites_can_be_changed_disabled_and_created_within_bounds(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    own = _do(engine, lambda s: members.own_invitation(s, member.id))
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
    boss_invite = _do(engine, lambda s: members.own_invitation(s, boss.id))
    assert rows[boss_invite.id].registrations == 1  # the member registered with it
    assert [a for a, _, _ in _audit(engine)] == ["invite uses 5 -> 10", "disable invite", "create invite (3 uses)"]


def test_memberships_are_granted_within_1_to_3650_days_and_ended_with_a_reason(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    act = actor_of(boss)
    for bad in (0, 3651):
        with pytest.raises(InvalidInputError, match="between 1 and 3650"):
            _do(engine, lambda s, bad=bad: admin.grant_membership(s, act, user_id=member.id, days=bad))
    with pytest.raises(admin.AdminError, match="No such user"):
        _do(engine, lambda s: admin.grant_membership(s, act, user_id=999, days=5))
    _do(engine, lambda s: admin.grant_membership(s, act, user_id=member.id, days=30, reason="comp"))
    _do(engine, lambda s: admin.grant_membership(s, act, user_id=member.id, days=30))
    status = _do(engine, lambda s: memberships.status(s, s.get(User, member.id)))
    assert status.active and status.ends_at > utcnow() + timedelta(days=59)
    with pytest.raises(admin.AdminError, match="reason"):
        _do(engine, lambda s: admin.end_membership(s, act, user_id=member.id, reason=" "))
    _do(engine, lambda s: admin.end_membership(s, act, user_id=member.id, reason="refunded"))
    assert not _do(engine, lambda s: memberships.status(s, s.get(User, member.id))).active


def test_users_are_searched_and_paged(engine):
    boss = make_admin(engine, name="Boss")
    invitation_id = _do(engine, lambda s: members.own_invitation(s, boss.id).id)
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
            _do(engine, lambda s: members.change_role(s, user=s.get(User, user.id), role="moderator", grant=True))
        actor = members.Actor(user.id, ("member", role) if role == "moderator" else ("member",))
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
        with pytest.raises(NotAllowedError):
            _do(engine, change)
    reads = [lambda s: admin.list_users(s, actor), lambda s: admin.list_strategies(s, actor)]
    for read in reads:
        if role == "moderator":
            _do(engine, read)
        else:
            with pytest.raises(NotAllowedError):
                _do(engine, read)
    assert _audit(engine) == []


# Audit text from the browser, and refusal floods (issue 12)


def _rows(engine):
    return _do(engine, lambda s: [(e.action, e.target, e.outcome) for e in s.scalars(select(AuditEntry))])


def test_refusal_text_is_cut_to_the_audit_columns(engine):
    _do(engine, lambda s: admin.record_refusal(s, None, "x" * 100_000, "y" * 100_000))
    ((action, target, outcome),) = _rows(engine)
    assert (len(action), len(target), outcome) == (admin.ACTION_MAX_LENGTH, admin.TARGET_MAX_LENGTH, "refused")
    assert (admin.ACTION_MAX_LENGTH, admin.TARGET_MAX_LENGTH, admin.REASON_MAX_LENGTH) == (64, 200, 500)


def test_role_action_lets_only_known_roles_and_verbs_into_the_audit_log():
    assert admin.role_action("admin", True) == "grant admin"
    assert admin.role_action("moderator", False) == "remove moderator"
    assert admin.role_action("A" * 1_000_000, True) == "grant invalid role"
    assert admin.role_action(["admin"], False) == "remove invalid role"
    assert admin.role_action("admin", "false") == "change admin"
    assert admin.role_action(None, None) == "change invalid role"


def test_refusals_are_recorded_at_most_a_few_a_minute_per_actor_and_for_all_anonymous_callers_together(engine):
    member = make_member(engine)
    recorded = [_do(engine, lambda s: admin.record_refusal(s, None, "open admin page", "")) for _ in range(30)]
    assert recorded == [True] * admin.REFUSALS_PER_ACTOR + [False] * (30 - admin.REFUSALS_PER_ACTOR)
    assert _do(engine, lambda s: admin.record_refusal(s, actor_of(member), "open admin page", ""))  # own count
    _do(engine, lambda s: s.execute(update(AuditEntry).values(at=utcnow() - timedelta(minutes=2))))
    assert _do(engine, lambda s: admin.record_refusal(s, None, "open admin page", ""))  # a new minute
    assert len(_rows(engine)) == admin.REFUSALS_PER_ACTOR + 2


def test_a_tab_records_a_few_refusals_a_minute_and_logs_how_many_it_did_not(caplog):
    budget, now = admin.RefusalBudget(), 1_000_000.0
    for _ in range(admin.REFUSALS_PER_TAB):
        budget = budget.take(now)
        assert budget is not None
    assert budget.take(now + 59) is None
    with caplog.at_level(logging.WARNING, logger="projectalgo.admin"):
        for _ in range(9):
            budget = budget.skip(actor=None, action="grant invalid role", tab="client-token-secret-part")
    counts = [r.getMessage().rsplit("count=", 1)[1] for r in caplog.records]
    assert counts == ["1", "2", "4", "8"] and budget.unrecorded == 9
    assert all("tab=client-t " in r.getMessage() for r in caplog.records)  # a prefix, never the whole token
    renewed = budget.take(now + 60)
    assert renewed is not None and (renewed.recorded, renewed.unrecorded) == (1, 9)


def test_refusals_never_push_changes_off_the_audit_view(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    _do(engine, lambda s: admin.grant_membership(s, actor_of(boss), user_id=member.id, days=3, reason="before"))
    for actor in (None, actor_of(member)):
        for _ in range(admin.REFUSALS_PER_ACTOR):
            _do(engine, lambda s, actor=actor: admin.record_refusal(s, actor, "open admin page", "/admin"))
    _do(engine, lambda s: admin.grant_membership(s, actor_of(boss), user_id=member.id, days=3, reason="after"))
    rows = _do(engine, lambda s: admin.audit_log(s, actor_of(boss), limit=10))
    assert [r.reason for r in rows if r.outcome == "done"] == ["after", "before"]
    assert sum(r.outcome == "refused" for r in rows) == admin.REFUSALS_SHOWN
    assert rows[0].reason == "after" and rows[-1].reason == "before"  # newest first


def test_reasons_longer_than_the_audit_column_are_refused_with_a_message(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    long = "r" * (admin.REASON_MAX_LENGTH + 1)
    with pytest.raises(forms.InputError, match=f"at most {admin.REASON_MAX_LENGTH} characters"):
        _do(engine, lambda s: admin.grant_membership(s, actor_of(boss), user_id=member.id, days=3, reason=long))
    _do(engine, lambda s: admin.end_membership(s, actor_of(boss), user_id=member.id, reason=long[1:]))
    assert _audit(engine) == [("end membership", "done", long[1:])]


@pytest.mark.parametrize("bad_id", [0, -1, 2**31, 10**30, "1", None, True, 1.0])
def test_ids_outside_the_id_columns_match_nothing(engine, bad_id):
    boss = make_admin(engine)
    with pytest.raises(admin.AdminError, match="No such user"):
        _do(engine, lambda s: admin.grant_membership(s, actor_of(boss), user_id=bad_id, days=3))
    with pytest.raises(admin.AdminError, match="No such invitation"):
        _do(engine, lambda s: admin.set_invite_uses(s, actor_of(boss), invitation_id=bad_id, uses=3))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12), (" 7 ", 7), (12, 12), (2**31 - 1, 2**31 - 1), (2**31, -1), ("0", -1), ("-3", -1), ("1e3", -1),
     ("9" * 100_000, -1), (True, -1), (1.0, -1), (None, -1), ([1], -1), ({"id": 1}, -1)],
)  # fmt: skip
def test_parse_id_turns_anything_tampered_into_an_id_that_matches_nothing(value, expected):
    assert forms.parse_id(value) == expected


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (None, forms.FORM_NOT_UNDERSTOOD),
        ("days=3", forms.FORM_NOT_UNDERSTOOD),
        ([["days", "3"]], forms.FORM_NOT_UNDERSTOOD),
        ({"days": ["3"]}, forms.FORM_NOT_UNDERSTOOD),
        ({"days": 3}, forms.FORM_NOT_UNDERSTOOD),
        ({"days": None}, forms.FORM_NOT_UNDERSTOOD),
        ({}, "Days must be a whole number."),
        ({"days": "three"}, "Days must be a whole number."),
        ({"days": "9" * 1_000_000}, "Days must be a whole number."),
    ],
)
def test_form_fields_that_a_form_cannot_send_get_a_message(form, message):
    with pytest.raises(forms.InputError) as raised:
        forms.form_number(form, "days", label="Days")
    assert str(raised.value) == message


def test_form_text_is_limited_and_flags_are_booleans_only():
    assert forms.form_text({"reason": "ok"}, "reason", max_length=5, label="The reason") == "ok"
    assert forms.form_text({}, "reason", max_length=5, label="The reason") == ""
    with pytest.raises(forms.InputError, match="The reason must be at most 5 characters long"):
        forms.form_text({"reason": "toolong"}, "reason", max_length=5, label="The reason")
    assert forms.parse_flag(True) is True and forms.parse_flag(False) is False
    for bad in ("false", 0, 1, None, [], {}):
        with pytest.raises(forms.InputError):
            forms.parse_flag(bad)


# Password reset links (issue 12)


def test_an_admin_issues_a_one_time_reset_link_which_is_audited_without_its_token(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    token = _do(engine, lambda s: admin.issue_password_reset(s, actor_of(boss), user_id=member.id))
    assert _do(engine, lambda s: members.password_reset_usable(s, token))
    entries = _do(
        engine, lambda s: [(e.action, e.target, e.reason, e.target_user_id) for e in s.scalars(select(AuditEntry))]
    )
    assert entries == [("issue password reset link", member.email, "", member.id)]
    assert token not in repr(entries)
    with pytest.raises(admin.AdminError, match="No such user"):
        _do(engine, lambda s: admin.issue_password_reset(s, actor_of(boss), user_id=999))
    _do(engine, lambda s: admin.set_disabled(s, actor_of(boss), user_id=member.id, disabled=True))
    with pytest.raises(admin.AdminError, match="disabled"):
        _do(engine, lambda s: admin.issue_password_reset(s, actor_of(boss), user_id=member.id))


@pytest.mark.parametrize("role", [None, "member", "moderator"])
def test_only_admins_issue_reset_links(engine, role):
    boss = make_admin(engine)
    target = make_member(engine, inviter=boss)
    actor = None if role is None else members.Actor(make_member(engine, inviter=boss).id, ("member", role))
    with pytest.raises(NotAllowedError):
        _do(engine, lambda s: admin.issue_password_reset(s, actor, user_id=target.id))
    assert _do(engine, lambda s: s.scalar(select(func.count()).select_from(PasswordReset))) == 0


# The command line's changes in the audit log (issue 13)


def test_command_line_changes_are_named_apart_from_anonymous_refusals_and_never_use_their_cap(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    _do(engine, lambda s: admin.record_command_line_change(s, action="grant admin", user=s.get(User, member.id)))
    for _ in range(admin.REFUSALS_PER_ACTOR):
        assert _do(engine, lambda s: admin.record_refusal(s, None, "open admin page", "/admin"))
    rows = _do(engine, lambda s: admin.audit_log(s, actor_of(boss)))
    assert [(r.actor, r.action, r.target) for r in rows if r.outcome == "done"] == [
        (admin.COMMAND_LINE, "grant admin", member.email)
    ]
    refused = [r for r in rows if r.outcome == "refused"]
    assert len(refused) == admin.REFUSALS_PER_ACTOR and {r.actor for r in refused} == {admin.ANONYMOUS}
    target_user = _do(engine, lambda s: s.scalar(select(AuditEntry.target_user_id).where(AuditEntry.outcome == "done")))
    assert target_user == member.id


@pytest.mark.parametrize(("count", "text"), [(0, "0 days"), (1, "1 day"), (2, "2 days"), (365, "365 days")])
def test_counts_read_as_english(count, text):
    assert admin.plural(count, "day") == text


def test_one_day_and_one_use_are_singular_in_the_audit_log(engine):
    boss = make_admin(engine)
    member = make_member(engine, inviter=boss)
    _do(engine, lambda s: admin.grant_membership(s, actor_of(boss), user_id=member.id, days=1))
    _do(engine, lambda s: admin.create_invite(s, actor_of(boss), user_id=member.id, uses=1))
    assert [a for a, _, _ in _audit(engine)] == ["grant membership 1 day", "create invite (1 use)"]
