"""Two senders at once on PostgreSQL (issue 17): each delivery is claimed by one of them, so each is sent once."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import Engine, func, select

from projectalgo import notify
from projectalgo.db import session_scope
from projectalgo.live import LocalBroadcast
from projectalgo.models import AlertAttempt, AlertDelivery
from tests.factories import make_member
from tests.integration.test_alert_delivery import NOW, fire, set_webhook, settings_for
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver

DELIVERIES = 40


def test_two_senders_at_once_send_each_delivery_once(pg_engine: Engine) -> None:
    with webhook_receiver() as receiver:
        sent_keys, keys, counts = _send_with_two_senders(pg_engine, receiver)
    assert sum(counts) == DELIVERIES
    assert Counter(sent_keys) == Counter(keys)  # every key exactly once
    with session_scope(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(AlertAttempt)) == DELIVERIES
        statuses = Counter(session.scalars(select(AlertDelivery.status)))
    assert statuses == {"sent": DELIVERIES}


def _send_with_two_senders(pg_engine: Engine, receiver: WebhookReceiver) -> tuple[list[str], list[str], list[int]]:
    member = make_member(pg_engine)
    set_webhook(pg_engine, member, f"{receiver.url}/hook")
    keys = [fire(pg_engine, member, notify.WEBHOOK)[1] for _ in range(DELIVERIES)]
    settings = settings_for()
    start = threading.Barrier(2)
    counts: list[int] = []

    def sender() -> None:
        start.wait()
        counts.append(notify.deliver_due(pg_engine, settings, LocalBroadcast(), now=NOW))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    return receiver.keys(), keys, counts
