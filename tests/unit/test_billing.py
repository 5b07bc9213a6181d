from datetime import timedelta

import pytest

from projectalgo import accounts, billing
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import User
from tests.factories import make_admin, make_member


def _status(engine, user_id):
    with session_scope(engine) as session:
        return billing.status(session, session.get(User, user_id))


def test_a_new_member_has_no_membership_and_admins_and_moderators_are_exempt(engine):
    member = make_member(engine)
    assert not _status(engine, member.id).active
    admin = make_admin(engine)
    assert _status(engine, admin.id).active and _status(engine, admin.id).exempt
    with session_scope(engine) as session:
        accounts.change_role(session, user=session.get(User, member.id), role="moderator", grant=True)
    assert _status(engine, member.id).exempt


def test_granting_starts_now_and_extending_starts_from_the_current_end(engine):
    member = make_member(engine)
    before = utcnow()
    with session_scope(engine) as session:
        first = billing.grant(session, user_id=member.id, days=365, source="stripe")
    assert before <= first.starts_at <= utcnow()
    assert first.ends_at - first.starts_at == timedelta(days=365)
    with session_scope(engine) as session:
        second = billing.grant(session, user_id=member.id, days=365, source="admin")
    assert second.starts_at == first.ends_at
    status = _status(engine, member.id)
    assert status.active and status.ends_at == first.ends_at + timedelta(days=365)


def test_an_ended_membership_is_not_extended_from_the_past(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        old = billing.grant(session, user_id=member.id, days=1, source="admin")
        old.starts_at, old.ends_at = utcnow() - timedelta(days=3), utcnow() - timedelta(days=2)
        session.add(old)
    assert not _status(engine, member.id).active
    with session_scope(engine) as session:
        renewed = billing.grant(session, user_id=member.id, days=30, source="admin")
    assert renewed.starts_at > utcnow() - timedelta(minutes=1)
    assert _status(engine, member.id).active


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"days": 0}, "between 1 and 3650"),
        ({"days": 3651}, "between 1 and 3650"),
        ({"source": "gift"}, "Unknown"),
        ({"user_id": 999_999}, "does not exist"),
    ],
)
def test_bad_grants_are_refused(engine, change, message):
    member = make_member(engine)
    with session_scope(engine) as session, pytest.raises(billing.BillingError, match=message):
        billing.grant(session, **({"user_id": member.id, "days": 30, "source": "admin"} | change))
    assert not _status(engine, member.id).active
