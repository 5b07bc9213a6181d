"""A trading group's real load, one worker beside three: M members each watching their own strategy in one tab,
and M bots posting to those strategies once a second.

    .venv/bin/python -m bench.scale --members 100 300 500 --seconds 40

Production's shape on loopback, as bench/workers.py: PostgreSQL for the members, Redis for Reflex's states, the
shared rate limits and the live broadcast, DynamoDB Local for the snapshots (`--store sql`: PostgreSQL); the app
`--backend-only` with 1 worker and with 3 workers, both on Redis (what `make prod` runs), each run on a fresh
database, table and Redis. Each member's tab is a Socket.IO client joining their strategy's page as a browser tab
does (tests/support/tabs.py). Each bot posts once a second, on a schedule (a bot answered late posts again when
answered), on a new connection each time, as a bot calling `requests.post` does, under the default per-token
rate limit (10/s, burst 50). The first `--warmup` seconds are not measured.

Reports per run: snapshots stored/s (answered 201), delivery p50/p99 (POST sent -> the tab received the delta
with that update), missed deliveries (a post answered 201 whose update its tab had not received `--grace` seconds
after the last post), posts not answered 201, the app's CPU per stored snapshot (one tab per strategy: one
update each), the growth of the app's RSS (every process of it) while the M tabs joined ÷ M, and the same for
Redis's memory (4 tabs a worker of one more member join first, so that loading code and caches on each worker's
first tab is not counted). The benchmark's clients run in this process on the same two cores: the CPU per stored
snapshot of the clients, of each backend and of the app are reported, and so is what other programs used of the
machine's cores in the window ("others"), and the POST's own latency (sent -> answered 201: the store's share).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import tempfile
import time
from argparse import Namespace
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import redis
import socketio
from sqlalchemy import create_engine

from bench.ingest import percentile
from bench.workers import app_env
from projectalgo.db import make_engine
from projectalgo.migrations import upgrade_to_head
from projectalgo.runtime import build_snapshot_store
from projectalgo.settings import load_settings
from projectalgo.snapshots import NUMBER_FIELDS, all_snapshots
from tests.support import servers
from tests.support.tabs import arrange, join
from tests.support.workers import workers_holding

KIB = 1024
TROUBLE = re.compile(r"\S+\s+(WARNING|ERROR|CRITICAL)\s")  # a text log record's time and level


@dataclass
class Backends:
    """PostgreSQL, Redis and DynamoDB Local on loopback, for the runs of one benchmark."""

    work: Path
    postgres: servers.Server
    redis: servers.Server
    dynamo: servers.Server
    runs: int = 0


@contextmanager
def backends() -> Iterator[Backends]:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    started: list[servers.Server] = []
    try:
        started.append(servers.start_postgres(work, Path(tempfile.mkdtemp(prefix="bench-pg-"))))
        started.append(servers.start_redis(work))
        started.append(servers.start_dynamodb_local(work))
        yield Backends(work, *started)
    finally:
        for server in started:
            server.stop()


@contextmanager
def app(backing: Backends, workers: int, store: str) -> Iterator[tuple[servers.Server, dict[str, str]]]:
    """The app with `workers` workers on Redis, a fresh PostgreSQL database, DynamoDB table (or, with store "sql",
    the snapshots in PostgreSQL too) and an emptied Redis; the per-token rate limit left at its default."""
    backing.runs += 1
    name = f"scale_{backing.runs}"
    with create_engine(f"{backing.postgres.url}/postgres", isolation_level="AUTOCOMMIT").connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    with redis.Redis.from_url(backing.redis.url) as client:
        client.flushall()
    settings = {"REFLEX_REDIS_URL": backing.redis.url, "WORKERS": str(workers), "GRANIAN_WORKERS": str(workers)}
    env = app_env(backing.work, f"{backing.postgres.url}/{name}", backing.dynamo.url, name, settings)
    for limit in ("INGEST_RATE_PER_SECOND", "INGEST_BURST", *(["DYNAMODB_TABLE"] if store == "sql" else [])):
        del env[limit]
    upgrade_to_head(env["DATABASE_URL"])
    if store != "sql":
        servers.create_tables(env)
    server = servers.start_app(backing.work, env, name=name, pages=False)
    try:
        yield server, env
    finally:
        server.stop()


def arrange_group(env: dict[str, str], members: int) -> list[tuple[int, str, str]]:
    """`members` members, each with a strategy: (strategy id, bot token, sign-in token) each."""
    engine = make_engine(env["DATABASE_URL"])
    with ThreadPoolExecutor(8) as pool:
        group = list(pool.map(lambda _: arrange(engine), range(members)))
    engine.dispose()
    return group


def app_processes(server: servers.Server) -> list[psutil.Process]:
    """A server's processes: for the app `reflex run`, granian and its workers."""
    root = psutil.Process(server.process.pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """Their CPU time, with that of their children that have ended (PostgreSQL's connections come and go)."""
    return sum(t.user + t.system + t.children_user + t.children_system for t in (p.cpu_times() for p in processes))


def cpu_by_part(server: servers.Server, backing: Backends) -> dict[str, float]:
    """CPU seconds so far: the app, each backend, this process (the clients), and the whole machine's busy time."""
    parts = {"app": server, "DynamoDB Local": backing.dynamo, "PostgreSQL": backing.postgres, "Redis": backing.redis}
    used = {name: cpu_seconds(app_processes(part)) for name, part in parts.items()}
    used["clients"] = cpu_seconds([psutil.Process()])
    machine = psutil.cpu_times()
    used["machine"] = sum(machine) - machine.idle - machine.iowait - machine.guest - machine.guest_nice
    return used


def rss_bytes(processes: list[psutil.Process]) -> int:
    return sum(p.memory_info().rss for p in processes)


def redis_bytes(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.info("memory")["used_memory"])


@dataclass
class Bot:
    """One bot's posts: when each post answered 201 was sent and answered (ms); the n-th is its tab's n-th
    update. `failed` counts the other answers by status (or by error)."""

    token: str
    sent: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)


def snapshot_body(n: int, rng: random.Random, walk: dict[str, float] | None) -> dict:
    """A bot's snapshot number n; its realised PnL is n, which tells the stored snapshots apart. With `walk` (the
    bot's state, changed here) a trading bot's: the price a random walk, the margin balance following it, the
    wallet steady. Without, every number n + 10,000, rising (as tests/support/workers.py's `post`): each snapshot
    widens its buckets' maxima, the store's most writes."""
    if walk is None:
        return {"data": dict.fromkeys(NUMBER_FIELDS, 10_000 + n) | {"realised_pnl": n, "symbol": "XBTUSD"}}
    walk["price"] = round(walk["price"] + rng.gauss(0, 5), 1)
    position, entry = 150, 9300.0
    data = {
        "last_price": walk["price"],
        "wallet_balance": 10_000,
        "margin_balance": round(10_000 + position * (walk["price"] - entry) / entry, 2),
        "realised_pnl": n,
        "positions": position,
        "average_entry_price": entry,
        "symbol": "XBTUSD",
    }
    return {"data": data}


async def run_bots(url: str, bots: list[Bot], start: float, posts: int, *, walk: bool = True) -> None:
    """Each bot posts once a second from its own offset into the first second (snapshot_body), `posts` times, or
    fewer when its posts take longer than a second to answer: it posts again when answered, and not after the
    last second (a bot posting one snapshot at a time falls behind as the app does)."""

    async def bot_loop(http: aiohttp.ClientSession, n: int, bot: Bot) -> None:
        headers = {"Authorization": f"Bearer {bot.token}"}
        rng, state = random.Random(n), ({"price": 9300.0} if walk else None)
        for k in range(posts):
            await asyncio.sleep(max(0.0, start + n / len(bots) + k - time.time()))
            if time.time() >= start + posts:
                return
            body = snapshot_body(k + 1, rng, state)
            sent = time.time() * 1000
            try:
                async with http.post(f"{url}/api/v1/strategy/", json=body, headers=headers) as answer:
                    await answer.read()
                    status = str(answer.status)
            except (aiohttp.ClientError, TimeoutError) as error:
                status = type(error).__name__
            if status == "201":
                bot.sent.append(sent)
                bot.answered.append(time.time() * 1000)
            else:
                bot.failed[status] += 1

    # A new connection for each post, as a bot posting once a second with `requests.post` makes.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(bot_loop(http, n, bot) for n, bot in enumerate(bots)))


async def join_all(
    url: str, group: list[tuple[int, str, str]], arrivals: list[dict[int, float]], at_once: int = 16
) -> list[tuple[socketio.AsyncClient, str]]:
    """Each member's tab on their strategy's page, `at_once` joining at a time."""
    gate = asyncio.Semaphore(at_once)

    async def one(n: int) -> tuple[socketio.AsyncClient, str]:
        strategy_id, _, session_token = group[n]
        async with gate:
            return await join(url, strategy_id, session_token, arrivals[n])

    return await asyncio.gather(*(one(n) for n in range(len(group))))


async def wait_for_deliveries(bots: list[Bot], arrivals: list[dict[int, float]], grace: float) -> None:
    """Until every tab has every update its bot's posts made, or `grace` seconds."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(
        not all(seq in a for seq in range(1, len(b.sent) + 1)) for b, a in zip(bots, arrivals, strict=True)
    ):
        await asyncio.sleep(0.1)


def deliveries(
    bots: list[Bot], arrivals: list[dict[int, float]], since_ms: float, until_ms: float
) -> tuple[list[float], int, int]:
    """Delivery latencies (ms) of the posts sent in [since_ms, until_ms), the updates missed (of every post answered
    201) and the updates a tab got beyond its bot's count (a lost update shifts the later ones' seq)."""
    latencies, missed, beyond = [], 0, 0
    for bot, arrived in zip(bots, arrivals, strict=True):
        for seq, sent in enumerate(bot.sent, 1):
            if seq not in arrived:
                missed += 1
            elif since_ms <= sent < until_ms:
                latencies.append(arrived[seq] - sent)
        beyond += sum(1 for seq in arrived if seq > len(bot.sent))
    return latencies, missed, beyond


def stored_twice_or_lost(env: dict[str, str], group: list[tuple[int, str, str]], bots: list[Bot]) -> tuple[int, int]:
    """Read back from the store: snapshots answered 201 but not stored, and snapshots stored more than once."""
    settings = load_settings(env)
    engine = make_engine(settings.database_url)
    store = build_snapshot_store(settings, engine)
    lost = twice = 0
    for (strategy_id, _, _), bot in zip(group, bots, strict=True):
        numbers = Counter(int(s.realised_pnl) for s in all_snapshots(store, strategy_id))
        twice += sum(count - 1 for count in numbers.values())
        lost += max(0, len(bot.sent) - len(numbers))
    engine.dispose()
    return lost, twice


def app_log_trouble(server: servers.Server) -> list[str]:
    """The app log's records at WARNING or above, and tracebacks printed outside a log record."""
    return [
        line
        for line in server.log_path.read_text(errors="replace").splitlines()
        if TROUBLE.match(line) or line.startswith("Traceback")
    ]


async def measure(
    server: servers.Server, env: dict[str, str], backing: Backends, members: int, warm_up_tabs: int, args: Namespace
) -> dict:
    """One run: `args` holds the warm-up, the measured seconds, the grace and the numbers' kind."""
    warmup, seconds, redis_url = args.warmup, args.seconds, backing.redis.url
    arranging = time.monotonic()
    group = await asyncio.to_thread(arrange_group, env, members + 1)
    arranged_in = time.monotonic() - arranging
    # A member with a few tabs of its own first, so that each worker's first tab (code and caches loaded once)
    # is not counted as the sessions' memory; its strategy gets no posts.
    warm, group = group[-1:], group[:-1]
    warm_tabs = await join_all(server.url, warm * warm_up_tabs, [{} for _ in range(warm_up_tabs)])
    await asyncio.sleep(1)
    processes = app_processes(server)
    rss_before, redis_before = rss_bytes(processes), redis_bytes(redis_url)
    arrivals: list[dict[int, float]] = [{} for _ in group]
    joining = time.monotonic()
    tabs = await join_all(server.url, group, arrivals)
    joined_in = time.monotonic() - joining
    idle_cpu = cpu_seconds(processes)
    await asyncio.sleep(2)
    idle_cpu = (cpu_seconds(processes) - idle_cpu) / 2
    rss_joined, redis_joined = rss_bytes(processes), redis_bytes(redis_url)
    holders = Counter(workers_holding(redis_url, [token for _, token in tabs]).values())

    bots = [Bot(token) for _, token, _ in group]
    start = time.time() + 1
    since, until = start + warmup, start + warmup + seconds
    cpu: list[dict[str, float]] = []
    load: list[float] = []

    async def sample(at: float) -> None:
        await asyncio.sleep(at - time.time())
        cpu.append(cpu_by_part(server, backing))
        load.append(os.getloadavg()[0])

    await asyncio.gather(
        run_bots(server.url, bots, start, int(warmup + seconds), walk=args.numbers == "walk"), sample(since)
    )
    await sample(until)  # the bots stop there
    await wait_for_deliveries(bots, arrivals, args.grace)
    connected = sum(client.connected for client, _ in tabs)
    for client, _ in [*tabs, *warm_tabs]:
        await client.disconnect()
    latencies, missed, beyond = deliveries(bots, arrivals, since * 1000, until * 1000)
    stored = sum(1 for bot in bots for at in bot.answered if since * 1000 <= at < until * 1000)
    answers = [a - s for b in bots for s, a in zip(b.sent, b.answered, strict=True) if since * 1000 <= s < until * 1000]
    lost, twice = await asyncio.to_thread(stored_twice_or_lost, env, group, bots)
    return {
        "stored_per_s": stored / seconds,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) if latencies else float("nan"),
        "post_p50": statistics.median(answers) if answers else float("nan"),
        "post_p99": percentile(answers, 0.99) if answers else float("nan"),
        "missed": missed,
        "beyond": beyond,
        "posted_ok": sum(len(bot.sent) for bot in bots),
        "not_sent": len(bots) * int(warmup + seconds) - sum(len(b.sent) + b.failed.total() for b in bots),
        "idle_cpu": idle_cpu,
        "arranged_in": arranged_in,
        "failed": sum((bot.failed for bot in bots), Counter()),
        "lost": lost,
        "twice": twice,
        "cpu_ms": {name: (cpu[1][name] - used) * 1000 / max(1, stored) for name, used in cpu[0].items()},
        "cpu_cores": {name: (cpu[1][name] - used) / seconds for name, used in cpu[0].items()},
        "kib_per_session": (rss_joined - rss_before) / KIB / members,
        "redis_kib_per_session": (redis_joined - redis_before) / KIB / members,
        "joined_in": joined_in,
        "connected": connected,
        "holders": sorted(holders.values(), reverse=True),
        "load": load,
        "log_trouble": app_log_trouble(server),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, nargs="+", default=[100, 300, 500])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seconds", type=float, default=40, help="the measured window")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--grace", type=float, default=30, help="after the last post, for the last deliveries")
    parser.add_argument("--store", choices=["dynamodb", "sql"], default="dynamodb", help="where snapshots go")
    parser.add_argument("--numbers", choices=["walk", "rising"], default="walk", help="the snapshots' (snapshot_body)")
    args = parser.parse_args()
    print(
        f"M members, one tab each on their own strategy, M bots at 1 Hz; {args.warmup:.0f} s warm-up, "
        f"{args.seconds:.0f} s measured; snapshots in {args.store}, numbers {args.numbers}; "
        f"{os.cpu_count()} cores shared with the clients; others: other programs' CPU on the machine, in cores"
    )
    header = (
        f"{'M':>4} {'workers':>7} {'stored/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'missed':>6} {'not 201':>7} "
        f"{'CPU ms/upd':>10} {'KiB/sess':>8} {'Redis KiB':>9} {'others':>6} {'load 1m':>9}  tabs/worker"
    )
    print(header, flush=True)
    with backends() as backing:
        for members in args.members:
            for workers in args.workers:
                with app(backing, workers, args.store) as (server, env):
                    r = asyncio.run(measure(server, env, backing, members, 4 * workers, args))
                cores = r["cpu_cores"]
                others = cores["machine"] - sum(v for k, v in cores.items() if k != "machine")
                print(
                    f"{members:>4} {workers:>7} {r['stored_per_s']:8.1f} {r['p50']:7.1f} {r['p99']:7.1f} "
                    f"{r['missed']:>6} {sum(r['failed'].values()):>7} {r['cpu_ms']['app']:10.2f} "
                    f"{r['kib_per_session']:8.0f} {r['redis_kib_per_session']:9.1f} {others:6.2f} "
                    f"{r['load'][0]:4.1f}-{r['load'][1]:<4.1f}  {'/'.join(map(str, r['holders']))}",
                    flush=True,
                )
                notes = {
                    "CPU ms per stored snapshot": ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms"].items()),
                    "POST answered p50/p99": f"{r['post_p50']:.1f}/{r['post_p99']:.1f} ms",
                    "answered 201": r["posted_ok"],
                    "not sent (behind schedule)": r["not_sent"],
                    "app CPU idle with the tabs": f"{r['idle_cpu']:.0%}",
                    "other answers": dict(r["failed"]),
                    "updates past the bot's count": r["beyond"],
                    "201 but not stored": r["lost"],
                    "stored twice": r["twice"],
                    "tabs still connected": f"{r['connected']}/{members}",
                    "arranged in": f"{r['arranged_in']:.1f} s",
                    "joined in": f"{r['joined_in']:.1f} s",
                    "app log warnings and errors": len(r["log_trouble"]),
                }
                print("       " + ", ".join(f"{k}: {v}" for k, v in notes.items()), flush=True)
                for line in r["log_trouble"][:10]:
                    print(f"       | {line[:300]}")


if __name__ == "__main__":
    main()
