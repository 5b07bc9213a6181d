"""The process-wide services, built once from Settings on first use (never at import time)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Engine

from projectalgo.billing import BillingGateway
from projectalgo.db import make_engine
from projectalgo.ingest_stats import IngestStats
from projectalgo.integrations.stripe import StripeGateway
from projectalgo.live import SnapshotHub, Watchers
from projectalgo.ratelimit import RateLimiter
from projectalgo.settings import Settings, load_settings
from projectalgo.snapshots import SnapshotStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    snapshot_store: SnapshotStore
    hub: SnapshotHub
    watchers: Watchers
    ingest_limiter: RateLimiter
    ingest_stats: IngestStats
    # None when STRIPE_SECRET_KEY is unset: the membership page then says payments are not configured.
    payments: BillingGateway | None


def build_snapshot_store(settings: Settings, engine: Engine) -> SnapshotStore:
    """DynamoDB when a table is configured, else the embedded store on the SQL database."""
    if settings.dynamodb_table:
        from projectalgo.integrations.dynamodb import DynamoSnapshotStore

        return DynamoSnapshotStore(settings)
    from projectalgo.integrations.sqlstore import SqlSnapshotStore

    return SqlSnapshotStore(engine)


@functools.cache
def services() -> Services:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    return Services(
        settings=settings,
        engine=engine,
        snapshot_store=build_snapshot_store(settings, engine),
        hub=SnapshotHub(),
        watchers=Watchers(),
        ingest_limiter=RateLimiter(settings.ingest_rate_per_second, settings.ingest_burst),
        ingest_stats=IngestStats(),
        payments=StripeGateway(settings) if settings.stripe_secret_key else None,
    )
