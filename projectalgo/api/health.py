"""Health: is the process alive, and can it serve?

GET /api/v1/health/live answers {"status": "ok"} while the process answers at all, and touches nothing else.
GET /api/v1/health/ready checks what serving needs: the SQL database (`database`), the snapshot store
(`snapshot_store`) and, when REFLEX_REDIS_URL is set, Redis (`redis`); 200 when every check is ok, else 503. Each
check runs off the event loop, on a thread of its own, and is given CHECK_TIMEOUT_SECONDS. GET /api/v1/health is
the same as ready (monitors and the test servers poll it).

The answer names the checks and says "ok" or "error" of each, nothing more: no version, backend, address or error
text reaches the public. A failed check is logged (health.check_failed) with its error's type.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from projectalgo.integrations import redis_client
from projectalgo.runtime import services

CHECK_TIMEOUT_SECONDS = 3.0
log = logging.getLogger("projectalgo.health")
router = APIRouter(tags=["health"])

Check = Literal["ok", "error"]


class Live(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ok", "down"]
    checks: dict[str, Check]


READY_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": Ready, "description": "Every check is ok."},
    503: {"model": Ready, "description": 'A check failed: the names with "error" are down or too slow.'},
}


@functools.cache
def _thread(name: str) -> ThreadPoolExecutor:
    """One thread per check: a dependency that hangs holds only its own, and later checks of it wait behind it
    (and time out) instead of piling up threads or holding up the other checks."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"health-{name}")


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis_client.connect(url)  # short timeouts, one retry: an answer well within the check's time


def _database() -> None:
    with services().engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _snapshot_store() -> None:
    services().snapshot_store.latest(0)  # one key's read (no strategy has id 0): the store answers


def _checks() -> dict[str, Callable[[], object]]:
    checks: dict[str, Callable[[], object]] = {"database": _database, "snapshot_store": _snapshot_store}
    redis_url = services().settings.redis_url
    if redis_url:
        checks["redis"] = lambda: _redis(redis_url).ping()
    return checks


async def _run(name: str, check: Callable[[], object]) -> Check:
    try:
        work = asyncio.get_running_loop().run_in_executor(_thread(name), check)
        await asyncio.wait_for(work, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        log.warning("health.check_failed check=%s error=timeout after=%ss", name, CHECK_TIMEOUT_SECONDS)
        return "error"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"; the type is enough to look further
        log.warning("health.check_failed check=%s error=%s", name, type(error).__name__)
        return "error"
    return "ok"


async def readiness() -> JSONResponse:
    checks = _checks()
    results = await asyncio.gather(*(_run(name, check) for name, check in checks.items()))
    answers = dict(zip(checks, results, strict=True))
    ok = all(result == "ok" for result in results)
    body = Ready(status="ok" if ok else "down", checks=answers)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/api/v1/health/live", responses={200: {"description": "The process answers."}})
async def live() -> Live:
    return Live(status="ok")


@router.get("/api/v1/health/ready", response_model=Ready, responses=READY_RESPONSES)
async def ready() -> JSONResponse:
    return await readiness()


@router.get("/api/v1/health", response_model=Ready, responses=READY_RESPONSES)
async def health() -> JSONResponse:
    """The same as /api/v1/health/ready."""
    return await readiness()
