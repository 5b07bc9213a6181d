"""The process-wide services, built once from Settings on first use (never at import time)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine

from projectalgo import flows
from projectalgo.billing import BillingGateway
from projectalgo.dashboard import Comparisons
from projectalgo.db import make_engine
from projectalgo.ingest_stats import IngestCounter, IngestStats, RedisIngestStats
from projectalgo.ingestion import Ingestor
from projectalgo.integrations.stripe import StripeGateway
from projectalgo.live import Broadcast, LocalBroadcast, RedisBroadcast
from projectalgo.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from projectalgo.settings import Settings, load_settings
from projectalgo.snapshots import SnapshotStore

T = TypeVar("T")
# Work that calls Stripe (each call up to integrations.stripe.TIMEOUT_SECONDS, plus a retry) runs on threads of
# its own, this many at a time: a slow Stripe makes payers wait in line instead of holding the threads that
# database work runs on (asyncio.to_thread's default executor: 6 threads on 2 cores).
STRIPE_THREADS = 8
_stripe_threads = ThreadPoolExecutor(max_workers=STRIPE_THREADS, thread_name_prefix="stripe")
# bcrypt work (sign-in, registration, password changes) runs on threads of its own, this many at a time: a
# burst of sign-ins or registrations queues here instead of holding the threads database work runs on.
PASSWORD_THREADS = 2
password_threads = ThreadPoolExecutor(max_workers=PASSWORD_THREADS, thread_name_prefix="password")


async def in_stripe_thread(work: Callable[[], T]) -> T:
    """Run blocking `work` that calls Stripe off the event loop, on the Stripe threads."""
    return await asyncio.get_running_loop().run_in_executor(_stripe_threads, work)


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    snapshot_store: SnapshotStore
    broadcast: Broadcast  # where stored snapshots are announced: every worker's live push listens
    ingestor: Ingestor
    ingest_stats: IngestCounter
    # Stripe webhooks' outcomes in the last hour ("recorded", "refused", "unavailable"): the admins' alert on them.
    stripe_webhook_stats: IngestCounter
    # None when STRIPE_SECRET_KEY is unset: the membership page then says payments are not configured.
    payments: BillingGateway | None
    # The dashboards' comparison lines, computed once a minute per strategy in this worker.
    comparisons: Comparisons = field(default_factory=Comparisons)


def build_snapshot_store(settings: Settings, engine: Engine) -> SnapshotStore:
    """DynamoDB when a table is configured, else the embedded store on the SQL database."""
    if settings.dynamodb_table:
        from projectalgo.integrations.dynamodb import DynamoSnapshotStore
        from projectalgo.integrations.dynamodb.in_doubt import SqlInDoubtLog

        return DynamoSnapshotStore(settings, in_doubt=SqlInDoubtLog(engine))  # kept across restarts and workers
    from projectalgo.integrations.sqlstore import SqlSnapshotStore

    return SqlSnapshotStore(engine)


def settle_left_in_doubt(store: SnapshotStore) -> None:
    """Start settling the DynamoDB writes an earlier run left in doubt (the embedded store has none): in each
    worker once it has started, not in the server's parent process that forks them."""
    from projectalgo.integrations.dynamodb import DynamoSnapshotStore

    if isinstance(store, DynamoSnapshotStore):
        store.settle_in_background()


def build_limiter_and_stats(settings: Settings) -> tuple[Limiter, IngestCounter, IngestCounter]:
    """The bots' rate limits, the ingestion figures and the Stripe webhooks' outcomes: in Redis when
    REFLEX_REDIS_URL is set (several workers share them), else in this process (one worker)."""
    if settings.redis_url:
        from projectalgo.integrations.redis_client import connect

        client = connect(settings.redis_url)
        return (
            RedisRateLimiter(client, settings.ingest_rate_per_second, settings.ingest_burst),
            RedisIngestStats(client),
            RedisIngestStats(client, prefix="projectalgo:stripe-webhooks:"),
        )
    return RateLimiter(settings.ingest_rate_per_second, settings.ingest_burst), IngestStats(), IngestStats()


@functools.cache
def services() -> Services:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    store = build_snapshot_store(settings, engine)
    broadcast = RedisBroadcast(settings.redis_url) if settings.redis_url else LocalBroadcast()
    limiter, stats, stripe_webhook_stats = build_limiter_and_stats(settings)
    return Services(
        settings=settings,
        engine=engine,
        snapshot_store=store,
        broadcast=broadcast,
        ingestor=Ingestor(
            engine,
            store,
            limiter,
            stats=stats,
            broadcast=broadcast,
            flow_tolerance=flows.tolerance(settings),
            settings=settings,
        ),
        ingest_stats=stats,
        stripe_webhook_stats=stripe_webhook_stats,
        payments=StripeGateway(settings) if settings.stripe_secret_key else None,
    )
