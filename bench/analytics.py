"""Issue 16's benchmark: opening the dashboard and the strategy page on a year of 1-minute snapshots, and the cost
of a live update, on the embedded store (SQLite) and on DynamoDB Local.

    .venv/bin/python -m bench.analytics --stores sql dynamodb --baseline CHECKOUT

Data, seeded through each store's own batch API (`put_many`, which keeps the hourly and daily roll-ups in its own
roll-up path), no HTTP: member A has one strategy, member B has 20 strategies, each on its own brokerage account;
every strategy has a year of 1-minute snapshots (525,600; `--data-sql full`, the default on SQLite), or, where that
is too slow to seed (DynamoDB Local stores ~450 snapshots/s here: 20 minutes a strategy), only the snapshots of
such a year that the pages read (`--data-dynamodb sparse`, the default there; Series.kept: 2,577 a strategy, the
same items and roll-up buckets every page and range reads). Every series is a random walk with trades closing
every 97 minutes (the wallet moves with the realised PnL) and four transfers the realised PnL does not explain:
+$5,000 3 hours ago, +$2,500 20 days ago, -$1,500 100 days ago, +$10,000 250 days ago, so the flow analytics find
work in every range.

The app runs `--backend-only` on loopback, one worker, as bench/fanout.py's; each tab is a Socket.IO client joining
as a browser tab does (tests/support/tabs.py). Measured per page (/dashboard of A and of B, /strategies/<A's id>):
- open: a new tab's hydrate-and-load event (the page's on_load at its default range, 24H), the first ("open 1st")
  apart from the next ones ("open again"), and
- each range: `set_range` on the open tab (which loads the page again at that range),
`--repeats` times each. The dashboard's comparison lines are shared for a UTC minute per worker: its first event
of a minute computes them, the next ones of that minute do not, so its events that were the first of a new minute
are reported apart ("new minute"). Server time is from sending the event to the last frame it caused (the client
waits for 0.4 s of quiet after it); bytes are the engine.io text of those frames (uncompressed); CPU is the app's
(all its processes) and the store's (DynamoDB Local's JVM) over the same span.

Live updates (`--live-posts` POSTs to a strategy 0.25 s apart): with no tab, with A's strategy page open, with A's
dashboard open (and with B's dashboard open, posting to one of B's strategies): bytes per pushed delta and the
app's CPU per snapshot, then the page's minute tick (which recomputes the figures when snapshots came); on the
dashboard, once the minute has turned since the tab opened (the first tick of its minute, computing every line),
then after one more post a second tick in that minute ("tick2": another tab's, sharing the lines). The same
on a fresh app with `--live-days` of data runs in this checkout and, with `--baseline CHECKOUT`, in another
checkout (the commit before issue 16's work): this file is copied into it and run there with `--live-only`.
`--profile` also times the pages' reads and computations in this process, with cProfile's top entries.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import aiohttp
import engineio.packet
import psutil
import socketio

from bench.ingest import app_env
from projectalgo import members
from projectalgo.clock import DAY_MS, HOUR_MS, utcnow
from projectalgo.db import make_engine, session_scope
from projectalgo.models import Strategy
from projectalgo.snapshots import Snapshot, SnapshotStore, epoch_ms
from tests.factories import grant_membership, make_member, make_strategy
from tests.support import servers

MINUTE_MS = 60_000
DAY_MINUTES = 1440
YEAR_MINUTES = 365 * DAY_MINUTES  # 525,600
GROUP = 20
RANGES = ("24H", "7D", "30D", "1Y", "All")
# Minutes before the series' end -> the money moved in (+) or out (-) then.
FLOWS = {180: 5000.0, 20 * DAY_MINUTES: 2500.0, 100 * DAY_MINUTES: -1500.0, 250 * DAY_MINUTES: 10000.0}
NAMESPACE = "/_event"
SESSION_VAR = "reflex___state____state.projectalgo___state____auth_state.session_token_rx_state_"
HYDRATED = re.compile(r'"is_hydrated[^"]*":true')
SEQ = re.compile(r'"tail[^"]*":\{"seq":(\d+)')
QUIET_S = 0.4
ROOT = Path(__file__).resolve().parents[1]

# --- Data ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    strategy_id: int
    account_id: int
    end_ms: int  # the last snapshot is a minute before
    minutes: int
    seed: int
    sparse: bool = False  # only the snapshots the pages read (kept)

    def kept(self, n: int, at_ms: int) -> bool:
        """Sparse: the first snapshot, the last 25 hours', each UTC hour's last of the last 32 days and each UTC
        day's last before: every item a page reads of a full year (24H's raw snapshots; the 7D/30D hourly roll-ups
        and the comparison's 31 days of them; the daily roll-ups; the first, latest and opening snapshots)."""
        if not self.sparse or n == 0 or n >= self.minutes - 25 * 60:
            return True
        end = at_ms + MINUTE_MS
        return end % DAY_MS == 0 or (n >= self.minutes - 32 * DAY_MINUTES and end % HOUR_MS == 0)

    def snapshots(self) -> Iterator[Snapshot]:
        rng = random.Random(self.seed)
        price = entry = 9300.0 * (1 + self.seed % 7 / 100)
        position, realised, moved = 15_000.0, 0.0, 0.0
        flows = {self.minutes - ago: amount for ago, amount in FLOWS.items() if ago < self.minutes}
        start = self.end_ms - self.minutes * MINUTE_MS
        for n in range(self.minutes):
            price *= 1 + rng.gauss(0, 0.0004)
            if n % 97 == 96:  # a trade closes: its PnL is realised, the wallet moves with it
                realised += round(position * (price - entry) / entry, 2)
                entry = price
            moved += flows.get(n, 0.0)
            if self.kept(n, at_ms := start + n * MINUTE_MS):
                wallet = 50_000 + realised + moved
                yield Snapshot(
                    self.strategy_id,
                    self.account_id,
                    at_ms,
                    last_price=Decimal(f"{price:.1f}"),
                    margin_balance=Decimal(f"{wallet + position * (price - entry) / entry:.2f}"),
                    wallet_balance=Decimal(f"{wallet:.2f}"),
                    realised_pnl=Decimal(f"{realised:.2f}"),
                    positions=Decimal(int(position)),
                    average_entry_price=Decimal(f"{entry:.1f}"),
                    symbol="XBTUSD",
                )


def _chunks(series: Series, size: int) -> Iterator[list[Snapshot]]:
    chunk: list[Snapshot] = []
    for snapshot in series.snapshots():
        chunk.append(snapshot)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(store: SnapshotStore, all_series: list[Series], threads: int, size: int) -> int:
    """Every series through the store's put_many, `threads` batches at a time (a batch: one strategy's `size`
    consecutive snapshots); the number stored."""

    def put(chunk: list[Snapshot]) -> int:
        refused = [r for r in store.put_many(chunk) if isinstance(r, Exception)]
        if refused:
            raise RuntimeError(f"the store refused {len(refused)} snapshots: {refused[0]!r}")
        return len(chunk)

    stored = 0
    with ThreadPoolExecutor(threads) as pool:
        for series in all_series:
            stored += sum(pool.map(put, _chunks(series, size)))
    return stored


@dataclass
class World:
    env: dict[str, str]
    a_strategy: int = 0
    a_token: str = ""
    a_session: str = ""
    b_strategies: list[int] = field(default_factory=list)
    b_tokens: list[str] = field(default_factory=list)
    b_session: str = ""
    seeded: int = 0
    seed_s: float = 0.0


def arrange(env: dict[str, str], store: SnapshotStore, *, a_minutes: int, group: str, threads: int) -> World:
    """Members A (one strategy) and B (GROUP strategies), with their data and a sign-in each."""
    engine = make_engine(env["DATABASE_URL"])
    world = World(env)
    a, b = make_member(engine, email="a@example.com"), make_member(engine, email="b@example.com")
    for member in (a, b):
        grant_membership(engine, member)
    world.a_strategy, world.a_token = make_strategy(engine, a, name="Year", account="Main")
    for n in range(GROUP if group != "none" else 0):
        strategy_id, token = make_strategy(engine, b, name=f"Bot {n + 1}", account=f"Account {n + 1}")
        world.b_strategies.append(strategy_id)
        world.b_tokens.append(token)
    with session_scope(engine) as session:
        world.a_session = members.start_session(session, user=a, days=1)
        world.b_session = members.start_session(session, user=b, days=1)
        account = {sid: session.get(Strategy, sid).account_id for sid in [world.a_strategy, *world.b_strategies]}
    end = epoch_ms(utcnow()) // MINUTE_MS * MINUTE_MS
    every = [Series(world.a_strategy, account[world.a_strategy], end, a_minutes, 1, group == "sparse")]
    every += [Series(s, account[s], end, a_minutes, n + 2, group == "sparse") for n, s in enumerate(world.b_strategies)]
    started = time.monotonic()
    world.seeded = seed(store, every, threads, DAY_MINUTES)
    world.seed_s = time.monotonic() - started
    engine.dispose()
    return world


# --- A tab without a browser ----------------------------------------------------------------------------------

RECEIVED = [0]  # engine.io message text received by this process (one tab listens at a time)
_plain_init = engineio.packet.Packet.__init__


def _counting_init(self: engineio.packet.Packet, *args: object, **kwargs: object) -> None:
    encoded = kwargs.get("encoded_packet", args[2] if len(args) > 2 else None)
    if isinstance(encoded, str | bytes):
        RECEIVED[0] += len(encoded.encode() if isinstance(encoded, str) else encoded)
    _plain_init(self, *args, **kwargs)  # type: ignore[arg-type]


engineio.packet.Packet.__init__ = _counting_init  # type: ignore[method-assign]


def processes(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        for p in processes(pid):
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


@dataclass
class Step:
    server_ms: float
    kib: float
    frames: int
    app_cpu_ms: float
    store_cpu_ms: float
    text: str = field(default="", repr=False)
    minute: int = 0  # the UTC minute it was sent in (the comparison lines are shared for a minute per worker)


class Tab:
    def __init__(self, url: str, session_token: str, path: str, app_pid: int, store_pid: int | None) -> None:
        self.url, self.session_token, self.path = url, session_token, path
        self.pids = (app_pid, store_pid)
        self.client = socketio.AsyncClient(reconnection=False)
        self.frames: list[tuple[float, str]] = []
        self.client.on("event", self._on_event, namespace=NAMESPACE)

    async def _on_event(self, update: object) -> None:
        text = update if isinstance(update, str) else json.dumps(update, separators=(",", ":"))
        self.frames.append((time.perf_counter(), text))

    def _query(self) -> dict[str, str]:
        tail = self.path.rstrip("/").rsplit("/", 1)[-1]
        return {"strategy_id": tail} if self.path.startswith("/strategies/") else {}

    async def send(self, handler: str, payload: dict, *, until: re.Pattern[str] | None = None) -> Step:
        first = len(self.frames)
        app_pid, store_pid = self.pids
        app_cpu, store_cpu = cpu_s([app_pid]), cpu_s([store_pid]) if store_pid else 0.0
        received = RECEIVED[0]
        router = {"pathname": self.path, "asPath": self.path, "query": self._query()}
        minute, sent = int(time.time() // 60), time.perf_counter()
        await self.client.emit("event", {"name": handler, "payload": payload, "router_data": router}, NAMESPACE)
        deadline = sent + 120
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
            new = self.frames[first:]
            done = bool(new) and (until is None or any(until.search(text) for _, text in new))
            if done and time.perf_counter() - new[-1][0] >= QUIET_S:
                break
        else:
            raise TimeoutError(f"{handler}: no answer within 120 s")
        new = self.frames[first:]
        return Step(
            (new[-1][0] - sent) * 1000,
            (RECEIVED[0] - received) / 1024,
            len(new),
            (cpu_s([app_pid]) - app_cpu) * 1000,
            ((cpu_s([store_pid]) - store_cpu) * 1000) if store_pid else 0.0,
            "".join(text for _, text in new),
            minute,
        )

    async def open(self) -> Step:
        await self.client.connect(
            f"{self.url}?token={uuid.uuid4()}", socketio_path="_event", transports=["websocket"], namespaces=[NAMESPACE]
        )
        payload = {"vars": {SESSION_VAR: self.session_token}}
        return await self.send("reflex___state____state.hydrate_and_load", payload, until=HYDRATED)

    async def close(self) -> None:
        await self.client.disconnect()


# --- Measuring -------------------------------------------------------------------------------------------------


def state_name(page: str, which: str) -> str:
    """The full name of a page's state ("page" or "live") as Reflex routes events to it (as tabs.SESSION_VAR's)."""
    module, name = ("dashboard", "dashboard") if page == "dashboard" else ("strategy", "strategy_page")
    if which == "live":
        name = name.removesuffix("_page") + "_live"
    return f"reflex___state____state.projectalgo___state____auth_state.projectalgo___pages___{module}____{name}_state"


def summarize(steps: list[Step]) -> dict[str, float]:
    """Medians and the worst (first runs include cold caches)."""
    return {
        "ms": statistics.median(s.server_ms for s in steps),
        "ms_max": max(s.server_ms for s in steps),
        "kib": statistics.median(s.kib for s in steps),
        "app_cpu_ms": statistics.median(s.app_cpu_ms for s in steps),
        "store_cpu_ms": statistics.median(s.store_cpu_ms for s in steps),
        "frames": statistics.median(s.frames for s in steps),
        "n": len(steps),
    }


def split_by_minute(steps: list[Step], previous: int) -> tuple[list[Step], list[Step]]:
    """(the steps sent in the same UTC minute as the page's event before them, those that were the first in a new
    minute): on the dashboard the latter compute every comparison line again, the former share the minute's."""
    same, new = [], []
    for step in steps:
        (same if step.minute == previous else new).append(step)
        previous = step.minute
    return same, new


async def measure_page(
    url: str, session: str, path: str, pids: tuple[int, int | None], repeats: int
) -> dict[str, dict[str, float]]:
    """Events: "open 1st", the page's first open on this app (on the dashboard: the first in its minute, which computes
    every comparison line); "open again": the next `repeats - 1` opens, each a new tab right after the one before
    (those in the same minute share its lines). Each range `repeats` times on the last tab; on the dashboard, the
    events that were the first in a new minute (so computed the lines again) apart, as "<range> new minute"."""
    page = "dashboard" if path == "/dashboard" else "strategy"
    opens, tab = [], None
    for _ in range(repeats):
        if tab is not None:
            await tab.close()
        tab = Tab(url, session, path, *pids)
        opens.append(await tab.open())
    assert tab is not None
    found = {"open 1st": summarize(opens[:1])}
    again, new = split_by_minute(opens[1:], opens[0].minute) if page == "dashboard" else (opens[1:], [])
    if again:
        found["open again"] = summarize(again)
    if new:
        found["open new minute"] = summarize(new)
    handler = f"{state_name(page, 'page')}.set_range"
    previous = opens[-1].minute
    for key in RANGES:
        steps = [await tab.send(handler, {"range_key": key}) for _ in range(repeats)]
        same, new = split_by_minute(steps, previous) if page == "dashboard" else (steps, [])
        previous = steps[-1].minute
        if same:
            found[key] = summarize(same)
        if new:
            found[f"{key} new minute"] = summarize(new)
    await tab.close()
    return found


async def post_live(url: str, token: str, last: Snapshot, posts: int, interval: float) -> None:
    """Snapshots going on from the strategy's last one: the price walks, nothing is realised or moved."""
    rng = random.Random(7)
    price, entry, position = float(last.last_price), float(last.average_entry_price), float(last.positions)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(posts):
            price *= 1 + rng.gauss(0, 0.0004)
            data = {
                "last_price": round(price, 1),
                "margin_balance": round(float(last.wallet_balance) + position * (price - entry) / entry, 2),
                "wallet_balance": str(last.wallet_balance),
                "realised_pnl": str(last.realised_pnl),
                "positions": position,
                "average_entry_price": entry,
                "symbol": "XBTUSD",
            }
            async with http.post(f"{url}/api/v1/strategy/", json={"data": data}) as answer:
                assert answer.status == 201, await answer.text()
            await asyncio.sleep(interval)


async def measure_live(
    url: str, bot: tuple[str, Snapshot], session: str | None, path: str | None, pids: tuple[int, int | None], posts: int
) -> dict[str, float]:
    """`posts` POSTs 0.25 s apart with a tab on `path` (or none): the app's CPU per snapshot, the tab's bytes per
    pushed delta; then the page's minute tick."""
    tab = Tab(url, session, path, *pids) if session and path else None
    found: dict[str, float] = {}
    if tab is not None:
        opened = await tab.open()
        found["has_performance"] = float('"twr' in opened.text or "returns" in opened.text)
        await asyncio.sleep(1)
    first, received = (len(tab.frames) if tab else 0), RECEIVED[0]
    app_cpu, store_cpu = cpu_s([pids[0]]), cpu_s([pids[1]]) if pids[1] else 0.0
    await post_live(url, *bot, posts, 0.25)
    await asyncio.sleep(1.5)
    found["app_cpu_ms"] = (cpu_s([pids[0]]) - app_cpu) * 1000 / posts
    found["store_cpu_ms"] = ((cpu_s([pids[1]]) - store_cpu) * 1000 / posts) if pids[1] else 0.0
    if tab is None:
        return found
    deltas = [text for _, text in tab.frames[first:] if SEQ.search(text)]
    found["deltas"] = len(deltas)
    found["bytes_per_delta"] = (RECEIVED[0] - received) / max(1, len(deltas))
    page = "dashboard" if path == "/dashboard" else "strategy"
    handler = f"{state_name(page, 'live')}.tick"
    if page == "dashboard":
        # The tick as one tab's comes once a minute: the first in its minute (it computes every comparison line).
        while int(time.time() // 60) == opened.minute:
            await asyncio.sleep(0.5)
    tick = await tab.send(handler, {})
    found |= {"tick_ms": tick.server_ms, "tick_kib": tick.kib, "tick_cpu_ms": tick.app_cpu_ms}
    if page == "dashboard":
        # Another tab's tick in the same minute (one more snapshot first: a tick recomputes only when some came).
        await post_live(url, *bot, 1, 0.5)
        again = await tab.send(handler, {})
        found |= {"tick2_ms": again.server_ms, "tick2_kib": again.kib, "tick2_cpu_ms": again.app_cpu_ms}
        found["tick2_same_minute"] = float(again.minute == tick.minute)
    await tab.close()
    return found


async def live_suite(
    url: str, world: World, store: SnapshotStore, pids: tuple[int, int | None], posts: int
) -> dict[str, dict]:
    """Each measure posts to a strategy going on from its latest snapshot (read again: the previous one posted)."""

    def bot(strategy_id: int, token: str) -> tuple[str, Snapshot]:
        last = store.latest(strategy_id)
        assert last is not None
        return token, last

    a = (world.a_strategy, world.a_token)
    found = {
        "no tab": await measure_live(url, bot(*a), None, None, pids, posts),
        "strategy page": await measure_live(
            url, bot(*a), world.a_session, f"/strategies/{world.a_strategy}", pids, posts
        ),
        "dashboard (1 strategy)": await measure_live(url, bot(*a), world.a_session, "/dashboard", pids, posts),
    }
    if world.b_strategies:
        found[f"dashboard ({GROUP} strategies)"] = await measure_live(
            url, bot(world.b_strategies[0], world.b_tokens[0]), world.b_session, "/dashboard", pids, posts
        )
    return found


# --- Profile ----------------------------------------------------------------------------------------------------


def profile_reads(env: dict[str, str], world: World, top: int) -> None:
    """The pages' reads and computations in this process, as their handlers run them in a worker thread."""
    from projectalgo import charts, dashboard, flows
    from projectalgo.settings import load_settings

    store, settings = build_store(env), load_settings(env)
    rules = dashboard.FlowRules(flows.tolerance(settings), {})
    group = [(sid, n + 1000) for n, sid in enumerate(world.b_strategies)]

    def strategy_page(key: str) -> None:  # StrategyPageState._load's reads, its chart, then compute()'s figures
        now = epoch_ms(utcnow())
        win = dashboard.range_window(store, key, now, [world.a_strategy])
        snaps = dashboard.snapshots_in(store, world.a_strategy, win)
        charts.strategy_figure([dashboard.point(s) for s in snaps], 0)
        opened = dashboard.opening(store, world.a_strategy, win)
        summary = flows.summary(flows.strategy_figures(opened + snaps, [], settings, UTC), UTC)
        charts.daily_pnl_figure(summary.days)
        charts.returns_figure(summary.curve, summary.hold, "XBTUSD")

    def dashboard_b(key: str) -> None:  # DashboardState._load's
        seen = dashboard.overview(store, key, epoch_ms(utcnow()), group, rules, dashboard.Comparisons())
        charts.equity_figure(seen.equity.series, 0, key)

    cases: list[tuple[str, Callable[[], None]]] = [
        *((f"strategy page {k}", lambda k=k: strategy_page(k)) for k in RANGES),
        *((f"dashboard B {k}", lambda k=k: dashboard_b(k)) for k in (("24H", "1Y") if group else ())),
    ]
    for name, work in cases:
        work()  # warm
        started = time.perf_counter()
        work()
        wall = (time.perf_counter() - started) * 1000
        profiler = cProfile.Profile()
        profiler.runcall(work)
        print(f"\n--- {name}: {wall:.0f} ms in-process (unprofiled); cProfile, the app's top {top} by cumulative time:")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats("projectalgo|plotly", top)


# --- Runs -------------------------------------------------------------------------------------------------------


def start_store(kind: str, work: Path) -> tuple[dict[str, str], servers.Server | None]:
    if kind == "sql":
        return app_env(work, "analytics", {}), None
    dynamo = servers.start_dynamodb_local(work)
    env = app_env(work, "analytics", servers.dynamodb_env(dynamo.url, "bench_snapshots"))
    servers.create_tables(env)
    return env, dynamo


def build_store(env: dict[str, str]) -> SnapshotStore:
    from projectalgo.runtime import build_snapshot_store
    from projectalgo.settings import load_settings

    settings = load_settings(env)
    return build_snapshot_store(settings, make_engine(settings.database_url))


def run_store(kind: str, args: argparse.Namespace, *, live_only: bool = False) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"bench-analytics-{kind}-"))
    env, dynamo = start_store(kind, work)
    found: dict = {"store": kind}
    app = None
    try:
        group = "full" if live_only else (args.data_sql if kind == "sql" else args.data_dynamodb)
        minutes = (args.live_days if live_only else args.days) * DAY_MINUTES
        threads = 1 if kind == "sql" else args.dynamodb_threads
        store = build_store(env)
        world = arrange(env, store, a_minutes=minutes, group=group, threads=threads)
        found |= {"seeded": world.seeded, "seed_s": world.seed_s, "group": group}
        print(f"[{kind}] seeded {world.seeded:,} snapshots in {world.seed_s:.0f} s (group: {group})", file=sys.stderr)
        app = servers.start_app(work, env, name=f"analytics-{kind}", pages=False)
        pids = (app.process.pid, dynamo.process.pid if dynamo else None)
        time.sleep(2)
        idle = cpu_s([pids[0]])
        time.sleep(3)
        found["idle_app_cpu_ms_per_s"] = (cpu_s([pids[0]]) - idle) * 1000 / 3
        if not live_only:
            pages = {
                "strategy page (A)": (world.a_session, f"/strategies/{world.a_strategy}"),
                "dashboard (A, 1 strategy)": (world.a_session, "/dashboard"),
            }
            if world.b_strategies:
                pages[f"dashboard (B, {GROUP} strategies)"] = (world.b_session, "/dashboard")
            found["pages"] = {
                name: asyncio.run(measure_page(app.url, session, path, pids, args.repeats))
                for name, (session, path) in pages.items()
            }
        found["live"] = asyncio.run(live_suite(app.url, world, store, pids, args.live_posts))
        warnings = [line for line in app.log_path.read_text(errors="replace").splitlines() if " ERROR " in line]
        found["app_log_errors"] = len(warnings)
        if args.profile and not live_only:
            app.stop()
            app = None
            profile_reads(env, world, args.profile_top)
    finally:
        if app is not None:
            app.stop()
        if dynamo is not None:
            dynamo.stop()
    return found


def run_baseline(checkout: Path, args: argparse.Namespace) -> dict:
    """This file's live measurements in another checkout (its app, its code), on the same data."""
    target = checkout / "bench" / "analytics.py"
    shutil.copyfile(Path(__file__), target)
    command = [sys.executable, "-m", "bench.analytics", "--live-only", "--json", "--stores", "sql"]
    command += ["--live-days", str(args.live_days), "--live-posts", str(args.live_posts)]
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the baseline run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_pages(found: dict) -> None:
    print(f"\n== {found['store']}: seeded {found['seeded']:,} in {found['seed_s']:.0f} s, group {found['group']}")
    print(f"app idle CPU {found['idle_app_cpu_ms_per_s']:.1f} ms/s; app log ERROR lines {found['app_log_errors']}")
    head = f"{'page':<28} {'event':<16} {'n':>2} {'ms p50':>8} {'ms max':>8} {'KiB':>8} {'app CPU ms':>10}"
    print(f"{head} {'store CPU ms':>12}")
    for page, rows in found.get("pages", {}).items():
        for event, r in rows.items():
            print(
                f"{page:<28} {event:<16} {r.get('n', 0):>2} {r['ms']:8.1f} {r['ms_max']:8.1f} {r['kib']:8.1f} "
                f"{r['app_cpu_ms']:10.1f} {r['store_cpu_ms']:12.1f}"
            )


def print_live(title: str, live: dict) -> None:
    print(f"\n-- live updates, {title}")
    print(
        f"{'tab':<26} {'app CPU ms/snapshot':>19} {'store CPU ms':>12} {'deltas':>6} {'B/delta':>8} "
        f"{'tick ms':>8} {'tick KiB':>8} {'tick CPU ms':>11} {'tick2 ms':>8} {'tick2 KiB':>9} {'tick2 CPU':>9}"
    )
    for name, r in live.items():
        print(
            f"{name:<26} {r['app_cpu_ms']:19.2f} {r['store_cpu_ms']:12.2f} {r.get('deltas', 0):>6.0f} "
            f"{r.get('bytes_per_delta', 0):8.0f} {r.get('tick_ms', 0):8.1f} {r.get('tick_kib', 0):8.1f} "
            f"{r.get('tick_cpu_ms', 0):11.1f} {r.get('tick2_ms', 0):8.1f} {r.get('tick2_kib', 0):9.1f} "
            f"{r.get('tick2_cpu_ms', 0):9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", nargs="+", choices=["sql", "dynamodb"], default=["sql", "dynamodb"])
    parser.add_argument("--data-sql", choices=["full", "sparse"], default="full", help="every series' (Series)")
    parser.add_argument("--data-dynamodb", choices=["full", "sparse"], default="sparse")
    parser.add_argument("--dynamodb-threads", type=int, default=8, help="put_many batches at once while seeding")
    parser.add_argument("--days", type=int, default=365, help="of 1-minute snapshots per strategy (365: 525,600)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--live-posts", type=int, default=40)
    parser.add_argument("--live-days", type=int, default=30, help="the live comparison's data (A and B, 1-minute)")
    parser.add_argument("--live-only", action="store_true", help="only the live comparison, on a fresh app")
    parser.add_argument("--baseline", type=Path, help="a checkout of the commit to compare the live costs with")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-top", type=int, default=18)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args()
    results: dict = {}
    if args.live_only:
        results["live"] = run_store("sql", args, live_only=True)
        if args.baseline:
            results["baseline"] = run_baseline(args.baseline, args)["live"]
    else:
        for kind in args.stores:
            results[kind] = found = run_store(kind, args)
            if not args.json:
                print_pages(found)
                print_live(f"{kind}, the data above", found["live"])
        results["live"] = run_store("sql", args, live_only=True)
        if args.baseline:
            results["baseline"] = run_baseline(args.baseline, args)["live"]
    if args.json:
        print(json.dumps(results))
        return
    print_live(f"this checkout, SQLite, {args.live_days} days of 1-minute snapshots", results["live"]["live"])
    if "baseline" in results:
        print_live(
            f"baseline checkout, SQLite, {args.live_days} days of 1-minute snapshots", results["baseline"]["live"]
        )
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
