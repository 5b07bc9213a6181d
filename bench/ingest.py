"""Ingestion throughput and latency: N concurrent bots against the app on each store, beside a bare endpoint.

    .venv/bin/python -m bench.ingest --bots 16 --seconds 10

Starts its own servers on loopback (DynamoDB Local, two apps, the bare endpoint), each with one worker,
and prints snapshots/s and p50/p99 latency per target. The load generator shares the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from projectalgo.db import make_engine
from projectalgo.migrations import upgrade_to_head
from projectalgo.snapshots import EXAMPLE_DATA
from tests.factories import make_member, make_strategy
from tests.support import servers

BODY = {"data": EXAMPLE_DATA}


async def drive(url: str, tokens: list[str | None], seconds: float) -> tuple[int, list[float], dict[int, int]]:
    """Closed loop: each bot posts again as soon as it is answered. Returns (ok, latencies, other statuses)."""
    latencies: list[float] = []
    others: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def bot(session: aiohttp.ClientSession, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(f"{url}/api/v1/strategy/", json=BODY, headers=headers) as answer:
                await answer.read()
            if answer.status == 201:
                latencies.append(time.perf_counter() - started)
            else:
                others[answer.status] = others.get(answer.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(bot(session, token) for token in tokens))
    return len(latencies), latencies, others


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def app_env(work: Path, name: str, extra: dict[str, str]) -> dict[str, str]:
    port = servers.free_port()
    env = {
        "APP_ENV": "test",
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite:///{work / name}.db",
        "BCRYPT_ROUNDS": "4",
        "SECRET_KEY_BASE": "bench-secret-key-base-0123456789abcdef0123456789",
        # The benchmark measures throughput, not the per-token rate limit.
        "INGEST_RATE_PER_SECOND": "100000",
        "INGEST_BURST": "100000",
        **extra,
    }
    upgrade_to_head(env["DATABASE_URL"])
    return env


def tokens_for(env: dict[str, str], bots: int) -> list[str]:
    engine = make_engine(env["DATABASE_URL"])
    member = make_member(engine)
    return [make_strategy(engine, member, name=f"Bench {n}")[1] for n in range(bots)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    started: list[servers.Server] = []
    try:
        dynamo = servers.start_dynamodb_local(work)
        started.append(dynamo)
        sql_env = app_env(work, "sql", {})
        dynamo_env = app_env(
            work,
            "dynamo",
            {
                "DYNAMODB_TABLE": "bench",
                "DYNAMODB_ENDPOINT_URL": dynamo.url,
                "AWS_ACCESS_KEY": "bench",
                "AWS_SECRET_KEY": "bench",
            },
        )
        subprocess.run(
            [sys.executable, "-m", "projectalgo", "create-table"],
            env={**os.environ, **dynamo_env},
            check=True,
            capture_output=True,
        )
        bare_port = servers.free_port()
        bare = servers.start_server(
            "bare",
            [
                str(servers.ROOT / ".venv" / "bin" / "granian"),
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(bare_port),
                "--workers",
                "1",
                "bench.bare_api:app",
            ],
            f"http://127.0.0.1:{bare_port}",
            servers.port_open(bare_port),
            work,
            timeout=60,
        )
        started.append(bare)
        targets = [("bare FastAPI (parse + validate)", bare.url, [None] * args.bots)]
        for name, env in (("app, embedded SQL store", sql_env), ("app, DynamoDB Local", dynamo_env)):
            server = servers.start_app(work, env, name=name.split(",")[1].strip().split()[0].lower())
            started.append(server)
            targets.append((name, server.url, tokens_for(env, args.bots)))

        print(
            f"{args.bots} concurrent bots, {args.seconds:.0f} s each, one server worker, 2 cores shared with the client"
        )
        print(f"{'target':34} {'snapshots/s':>12} {'p50 ms':>8} {'p99 ms':>8}  errors")
        bare_rate = None
        for name, url, tokens in targets:
            asyncio.run(drive(url, tokens, 2))  # warm-up
            ok, latencies, others = asyncio.run(drive(url, tokens, args.seconds))
            rate = ok / args.seconds
            bare_rate = bare_rate or rate
            print(
                f"{name:34} {rate:12.0f} {1000 * statistics.median(latencies):8.1f} "
                f"{1000 * percentile(latencies, 0.99):8.1f}  {others or '-'}  ({rate / bare_rate:.0%} of bare)"
            )
    finally:
        for server in started:
            server.stop()


if __name__ == "__main__":
    main()
