"""The alerts' sweep (issue 17): every ALERT_SWEEP_SECONDS, the one worker holding the lease (leases.py) fires the
silence rules and the admins' system alerts (alert_checks.py), then sends the deliveries due (notify.deliver_due).

Every worker runs `run_sweeper` as a lifespan task; each period it takes or renews the lease (for a few periods), and
only its holder sweeps. A worker that dies stops renewing: another takes the lease once it has expired. A worker
stopping releases it, so another takes it at its next period. All the blocking work runs on a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import Engine

from projectalgo import alert_checks, leases, notify
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.ingest_stats import IngestCounter
from projectalgo.integrations.redis_client import connect
from projectalgo.live import Broadcast
from projectalgo.runtime import services
from projectalgo.settings import Settings
from projectalgo.snapshots import SnapshotStore

LEASE = "alerts-sweep"
LEASE_PERIODS = 3  # the lease outlives a few missed renewals: a slow sweep does not hand it on
log = logging.getLogger("projectalgo.alerts")


@dataclass(frozen=True)
class Sweeper:
    engine: Engine
    store: SnapshotStore
    settings: Settings
    stats: IngestCounter
    stripe_webhook_stats: IngestCounter
    broadcast: Broadcast
    holder: str  # this worker, as the lease names it
    redis_client: redis.Redis | None = None

    def hold(self, now: datetime) -> bool:
        """Take or renew the lease; False while another worker holds it."""
        ttl = timedelta(seconds=self.settings.alert_sweep_seconds * LEASE_PERIODS)
        with session_scope(self.engine) as session:
            return leases.take(session, LEASE, self.holder, ttl=ttl, now=now)

    def sweep(self, now: datetime) -> int:
        """Fire the silence rules and the system alerts due now (the lease held); returns the firings made."""
        checks = self.system_checks()  # before the transaction: a dependency that hangs holds no database lock
        with session_scope(self.engine) as session:
            fired = alert_checks.sweep_silence(session, self.settings, now)
            silent = alert_checks.silent_bots(session, self.settings, now)
            return fired + alert_checks.sweep_system(session, self.settings, now, [silent, *checks])

    def system_checks(self) -> list[alert_checks.Condition]:
        checks = [
            alert_checks.outage(alert_checks.SNAPSHOT_STORE, "The snapshot store", lambda: self.store.latest(0)),
            alert_checks.ingest_errors(self.stats.last_hour()),
            alert_checks.stripe_webhook_failures(self.stripe_webhook_stats.last_hour()),
        ]
        if (client := self.redis_client) is not None:
            checks.append(alert_checks.outage(alert_checks.REDIS, "Redis", client.ping))
        return checks

    def run_once(self, now: datetime, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """One period: when this worker holds the lease, sweep and send what is due. Blocking: a worker thread."""
        if not self.hold(now):
            return False
        self.sweep(now)
        notify.deliver_due(self.engine, self.settings, self.broadcast, now=now, loop=loop)
        return True

    def release(self) -> None:
        with session_scope(self.engine) as session:
            leases.release(session, LEASE, self.holder)


async def run_sweeper() -> None:
    """The lifespan task of every worker (projectalgo.py)."""
    app = services()
    sweeper = Sweeper(
        app.engine,
        app.snapshot_store,
        app.settings,
        app.ingest_stats,
        app.stripe_webhook_stats,
        app.broadcast,
        holder=f"{os.getpid()}-{uuid.uuid4().hex[:12]}",
        redis_client=connect(app.settings.redis_url) if app.settings.redis_url else None,
    )
    loop = asyncio.get_running_loop()
    held = False
    try:
        while True:
            try:
                now_held = await asyncio.to_thread(sweeper.run_once, utcnow(), loop)
                if now_held != held:
                    log.info("alerts.lease_%s holder=%s", "taken" if now_held else "lost", sweeper.holder)
                held = now_held
            except Exception:  # the next period tries again: one failed sweep must not stop the alerts
                log.exception("alerts.sweep_failed holder=%s", sweeper.holder)
            await asyncio.sleep(app.settings.alert_sweep_seconds)
    finally:
        await asyncio.to_thread(sweeper.release)  # only if held: another worker takes it at its next period
