"""Billing on PostgreSQL, where two transactions really run side by side (SQLite lets one write at a time)."""

import threading
import time

from sqlalchemy import select, text

from projectalgo import memberships
from projectalgo.db import session_scope
from projectalgo.models import Membership
from tests.factories import make_member


def _waiting_on_a_lock(engine) -> bool:
    with engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        return connection.scalar(text(query)) > 0


def test_two_concurrent_grants_for_one_user_add_up_instead_of_overlapping(pg_engine):
    member = make_member(pg_engine)
    first_granted, second_done = threading.Event(), threading.Event()

    def first() -> None:
        with session_scope(pg_engine) as session:
            memberships.grant(session, user_id=member.id, days=30, source="admin")
            first_granted.set()
            # Commit only once the second grant has finished, or is seen waiting for this transaction.
            deadline = time.monotonic() + 10
            while not second_done.is_set() and not _waiting_on_a_lock(pg_engine) and time.monotonic() < deadline:
                time.sleep(0.05)

    def second() -> None:
        assert first_granted.wait(10)
        with session_scope(pg_engine) as session:
            memberships.grant(session, user_id=member.id, days=30, source="admin")
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert second_done.is_set()
    with session_scope(pg_engine) as session:
        earlier, later = session.scalars(
            select(Membership).where(Membership.user_id == member.id).order_by(Membership.starts_at)
        )
    assert later.starts_at == earlier.ends_at
