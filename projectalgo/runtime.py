"""The process-wide services, built once from Settings on first use (never at import time)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Engine

from projectalgo.db import make_engine
from projectalgo.settings import Settings, load_settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine


@functools.cache
def services() -> Services:
    settings = load_settings()
    return Services(settings=settings, engine=make_engine(settings.database_url))
