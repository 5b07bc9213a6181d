"""The process-wide services, built once from Settings on first use (never at import time)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Engine

from projectalgo.billing import BillingGateway
from projectalgo.db import make_engine
from projectalgo.integrations.stripe import StripeGateway
from projectalgo.settings import Settings, load_settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    # None when STRIPE_SECRET_KEY is unset: the membership page then says payments are not configured.
    payments: BillingGateway | None


@functools.cache
def services() -> Services:
    settings = load_settings()
    return Services(
        settings=settings,
        engine=make_engine(settings.database_url),
        payments=StripeGateway(settings) if settings.stripe_secret_key else None,
    )
