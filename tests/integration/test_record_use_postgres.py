"""Bots' last uses written by several workers at once on PostgreSQL (strategies.record_uses): the soak benchmark saw
PostgreSQL abort one worker's write as a deadlock when two workers updated overlapping token rows each in its own
order. Rows are now updated in one order, so a second writer waits for the first instead."""

import threading
import time
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from projectalgo import strategies
from projectalgo.clock import utcnow
from tests.factories import make_member, make_strategy, resolve


def _blocked_on_a_lock(engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")))


def test_two_workers_writing_overlapping_last_uses_wait_for_each_other_instead_of_deadlocking(pg_engine):
    member = make_member(pg_engine)
    tokens = [make_strategy(pg_engine, member, name=f"S{n}", account=f"A{n}")[1] for n in range(2)]
    with Session(pg_engine) as session:
        first, second = (resolve(session, token) for token in tokens)
    now = utcnow()
    errors: list[Exception] = []

    with Session(pg_engine) as one:
        one.begin()
        strategies.record_uses(one, [(first, now)])  # worker one holds the first bot's rows ...

        def worker_two() -> None:  # ... while worker two writes both bots', the second listed first
            try:
                with Session(pg_engine) as two, two.begin():
                    strategies.record_uses(two, [(second, now + timedelta(seconds=1)), (first, now)])
            except Exception as error:  # noqa: BLE001 - the test reports it
                errors.append(error)

        thread = threading.Thread(target=worker_two)
        thread.start()
        deadline = time.monotonic() + 10
        while not _blocked_on_a_lock(pg_engine):  # worker two waits for the first bot's row
            assert time.monotonic() < deadline, "worker two never waited for worker one"
            time.sleep(0.05)
        strategies.record_uses(one, [(second, now)])  # in the old order, worker two held this row: a deadlock
        one.commit()
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
