"""Ingestion with one worker and with several, in production's shape: PostgreSQL, Redis and DynamoDB Local.

    .venv/bin/python -m bench.workers --bots 16 --seconds 10

Starts PostgreSQL, Redis and DynamoDB Local on loopback, then the app three ways: one worker without Redis (the
in-process rate limiter, figures and live broadcast), one worker with Redis (what sharing costs), and WORKERS
workers with Redis. Prints snapshots/s and p50/p99 latency for each. The load generator shares the machine's
cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine

from bench.ingest import drive, percentile, tokens_for
from projectalgo.migrations import upgrade_to_head
from tests.support import servers


def app_env(work: Path, database_url: str, dynamo_url: str, table: str, extra: dict[str, str]) -> dict[str, str]:
    port = servers.free_port()
    return {
        "APP_ENV": "test",
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "BCRYPT_ROUNDS": "4",
        "SECRET_KEY_BASE": "bench-secret-key-base-0123456789abcdef0123456789",
        "INGEST_RATE_PER_SECOND": "100000",  # throughput, not the per-token limit
        "INGEST_BURST": "100000",
        "DYNAMODB_TABLE": table,
        "DYNAMODB_ENDPOINT_URL": dynamo_url,
        "AWS_ACCESS_KEY": "bench",
        "AWS_SECRET_KEY": "bench",
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    started: list[servers.Server] = []
    try:
        postgres = servers.start_postgres(work, Path(tempfile.mkdtemp(prefix="bench-pg-")))
        redis = servers.start_redis(work)
        dynamo = servers.start_dynamodb_local(work)
        started += [postgres, redis, dynamo]
        print(f"{args.bots} concurrent bots, {args.seconds:.0f} s each, {os.cpu_count()} cores shared with the client")
        print(f"{'target':34} {'snapshots/s':>12} {'p50 ms':>8} {'p99 ms':>8}  errors")
        for n, (name, extra) in enumerate(
            [
                ("1 worker, no Redis", {}),
                ("1 worker, Redis", {"REFLEX_REDIS_URL": redis.url}),
                (
                    f"{args.workers} workers, Redis",
                    {"REFLEX_REDIS_URL": redis.url, "WORKERS": str(args.workers), "GRANIAN_WORKERS": str(args.workers)},
                ),
            ]
        ):
            database = f"bench_{n}"
            with create_engine(f"{postgres.url}/postgres", isolation_level="AUTOCOMMIT").connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{database}"')
            env = app_env(work, f"{postgres.url}/{database}", dynamo.url, f"bench-{n}", extra)
            upgrade_to_head(env["DATABASE_URL"])
            command = [sys.executable, "-m", "projectalgo", "create-table"]
            subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True)
            server = servers.start_app(work, env, name=f"workers-{n}", pages=False)
            try:
                tokens = tokens_for(env, args.bots)
                asyncio.run(drive(server.url, tokens, 2))  # warm-up
                ok, latencies, others = asyncio.run(drive(server.url, tokens, args.seconds))
            finally:
                server.stop()
            print(
                f"{name:34} {ok / args.seconds:12.0f} {1000 * statistics.median(latencies):8.1f} "
                f"{1000 * percentile(latencies, 0.99):8.1f}  {others or '-'}"
            )
    finally:
        for server in started:
            server.stop()


if __name__ == "__main__":
    main()
