"""Ingestion throughput and latency: N concurrent bots against the app on each store, beside a bare endpoint.

    .venv/bin/python -m bench.ingest --bots 16 --seconds 10

Starts its own servers on loopback (DynamoDB Local, two apps, the bare endpoint), each with one worker,
and prints snapshots/s and p50/p99 latency per target. The load generator shares the machine's cores.

    .venv/bin/python -m bench.ingest --bots 16 --seconds 10 --rules 1000 [--rounds 3]

Alerts (issue 17): two apps on the embedded store side by side, one without alert rules and one with 1,000 active
rules (50 on the bots' owner: three on each bot's strategy and two on all of them; the rest on other members'
strategies), driven in alternating rounds; prints each round and the medians.

    .venv/bin/python -m bench.ingest --sweep 10000

The alerts' sweep (silence rules and the silent-bots condition) over 10,000 strategies on SQLite and PostgreSQL:
the first sweep (half the bots silent: a firing each) and a steady one (nothing new).
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
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import Engine, create_engine, insert, select, update

from projectalgo import alert_checks, alerts
from projectalgo.clock import utcnow
from projectalgo.db import make_engine, session_scope
from projectalgo.members import Actor
from projectalgo.migrations import upgrade_to_head
from projectalgo.models import BrokerageAccount, Invitation, Strategy, User, table_of
from projectalgo.settings import load_settings
from projectalgo.snapshots import EXAMPLE_DATA
from tests.factories import actor_of, make_admin, make_member, make_strategy
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


def roomy_inviter(engine: Engine) -> User:
    """An admin whose invitation serves any number of members."""
    inviter = make_admin(engine)
    with session_scope(engine) as session:
        session.execute(update(Invitation).where(Invitation.owner_id == inviter.id).values(uses_remaining=100_000))
    return inviter


def add_rules(env: dict[str, str], bots: list[str], rules: int) -> None:
    """`rules` active alert rules that stay quiet under the bots' steady snapshots: 50 on the bots' owner (drawdown,
    balance and daily loss on each of 16 strategies, balance and silence on all), the rest 50 a member on 10
    strategies each of other members."""
    engine = make_engine(env["DATABASE_URL"])
    now = utcnow()
    quiet = {"drawdown": "20", "balance": "5000", "daily_loss": "100000", "silence": "60"}

    def save(owner: Actor, strategy_id: int | None, kind: str) -> None:
        alerts.save_rule(
            session,
            owner,
            rule_id=None,
            strategy_id=strategy_id,
            kind=kind,
            threshold=quiet[kind],
            notify_recovery=True,
            now=now,
        )

    with session_scope(engine) as session:
        bench = session.execute(
            select(Strategy.owner_id, Strategy.id).where(Strategy.name.like("Bench %")).order_by(Strategy.id)
        ).all()
        owner_id, strategy_ids = bench[0][0], [strategy_id for _, strategy_id in bench]
        bots_owner = Actor(owner_id, ("member",))
        made = 0
        for strategy_id in strategy_ids[: len(bots)]:
            for kind in ("drawdown", "balance", "daily_loss"):
                if made < min(rules, alerts.MAX_RULES - 2):
                    save(bots_owner, strategy_id, kind)
                    made += 1
        for kind in ("balance", "silence"):
            if made < rules:
                save(bots_owner, None, kind)
                made += 1
    inviter = roomy_inviter(engine)
    while made < rules:
        member = make_member(engine, inviter=inviter)
        others = [make_strategy(engine, member, name=f"Other {n}")[0] for n in range(10)]
        with session_scope(engine) as session:
            for strategy_id in others:
                for kind in ("drawdown", "balance", "daily_loss", "silence", "balance"):
                    if made < rules:
                        save(actor_of(member), strategy_id, kind)
                        made += 1
    engine.dispose()


def compare_rules(args: argparse.Namespace, work: Path, started: list[servers.Server]) -> None:
    targets = []
    for name, rules in (("without rules", 0), (f"with {args.rules:,} rules", args.rules)):
        env = app_env(work, f"rules{rules}", {})
        tokens = tokens_for(env, args.bots)
        if rules:
            add_rules(env, tokens, rules)
        server = servers.start_app(work, env, name=f"rules{rules}")
        started.append(server)
        targets.append((name, server.url, tokens))
    print(f"{args.bots} concurrent bots, {args.seconds:.0f} s a round, one server worker each, embedded SQL store")
    rates: dict[str, list[float]] = {name: [] for name, _, _ in targets}
    for _, url, tokens in targets:
        asyncio.run(drive(url, tokens, 2))  # warm-up
    for round_number in range(args.rounds):
        for name, url, tokens in targets if round_number % 2 == 0 else targets[::-1]:
            ok, latencies, _ = asyncio.run(drive(url, tokens, args.seconds))
            rates[name].append(ok / args.seconds)
            p50, p99 = 1000 * statistics.median(latencies), 1000 * percentile(latencies, 0.99)
            print(f"round {round_number + 1} {name:22} {ok / args.seconds:8.0f}/s p50 {p50:.1f} ms p99 {p99:.1f} ms")
    plain, ruled = (statistics.median(values) for values in rates.values())
    print(f"medians: {plain:.0f}/s without rules, {ruled:.0f}/s with: {ruled / plain:.1%}")


def bench_sweep(strategies_count: int, work: Path, started: list[servers.Server]) -> None:
    # Not under `work`: as root, PostgreSQL runs as another user, who cannot enter that folder.
    postgres = servers.start_postgres(work, Path(tempfile.mkdtemp(prefix="projectalgo-pg-")))
    started.append(postgres)
    admin = create_engine(f"{postgres.url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql('CREATE DATABASE "sweep"')
    admin.dispose()
    for name, url in (("SQLite", f"sqlite:///{work / 'sweep.db'}"), ("PostgreSQL", f"{postgres.url}/sweep")):
        upgrade_to_head(url)
        engine = make_engine(url)
        settings = load_settings({"DATABASE_URL": url, "SECRET_KEY_BASE": "bench-secret-key-base-0123456789abcdef"})
        now = utcnow()
        silent = sweep_world(engine, strategies_count, now)
        for label in ("first sweep", "steady sweep"):
            started_at = time.perf_counter()
            with session_scope(engine) as session:
                fired = alert_checks.sweep_silence(session, settings, now)
                fired += alert_checks.sweep_system(
                    session, settings, now, [alert_checks.silent_bots(session, settings, now)]
                )
            print(
                f"{name:10} {label:12} over {strategies_count:,} strategies ({silent:,} silent): "
                f"{time.perf_counter() - started_at:.3f} s, {fired:,} firings"
            )
        engine.dispose()


def sweep_world(engine: Engine, count: int, now: datetime) -> int:
    """`count` strategies, 50 a member, each member with a 15-minute silence rule on all of them; every other bot
    silent for an hour and a half (past the rule and the offline setting), the others posting a minute ago."""
    members = count // 50
    inviter = roomy_inviter(engine)
    owners = [make_member(engine, inviter=inviter).id for _ in range(members)]
    with session_scope(engine) as session:
        accounts = [
            {"owner_id": owner, "name": "Main", "exchange": "", "notes": "", "created_at": now} for owner in owners
        ]
        session.execute(insert(table_of(BrokerageAccount)), accounts)
        account_of = dict(session.execute(select(BrokerageAccount.owner_id, BrokerageAccount.id)).all())
        rows = [
            {
                "owner_id": owner,
                "account_id": account_of[owner],
                "name": f"Bot {n}",
                "description": "",
                "symbol": "XBTUSD",
                "created_at": now,
                "last_snapshot_at": now - (timedelta(minutes=90) if n % 2 else timedelta(minutes=1)),
            }
            for owner in owners
            for n in range(50)
        ]
        session.execute(insert(table_of(Strategy)), rows)
        for owner in owners:
            alerts.save_rule(
                session,
                Actor(owner, ("member",)),
                rule_id=None,
                strategy_id=None,
                kind="silence",
                threshold="15",
                notify_recovery=True,
                now=now,
            )
    return len(rows) // 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rules", type=int, default=0, help="compare the app without and with this many alert rules")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the --rules comparison")
    parser.add_argument("--sweep", type=int, default=0, help="time the alerts' sweep over this many strategies")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    if args.rules or args.sweep:
        started: list[servers.Server] = []
        try:
            if args.sweep:
                bench_sweep(args.sweep, work, started)
            if args.rules:
                compare_rules(args, work, started)
        finally:
            for server in started:
                server.stop()
        return
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
