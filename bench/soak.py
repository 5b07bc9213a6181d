"""A bounded soak on loopback: B bots posting once a second to their own strategies, each strategy watched by its
member's tab, on the app with W workers, for a fixed time.

    .venv/bin/python -m bench.soak --bots 50 --workers 3 --seconds 600

The same servers, members, tabs and bots as bench/scale.py (PostgreSQL, Redis, DynamoDB Local; tabs joined as a
browser tab joins; bots on a schedule, a new connection each post, the default per-token rate limit). Every
`--sample` seconds it records the app's RSS (all its processes), Redis's memory and the app's CPU. At the end it
checks: every post answered 201, every update delivered to its tab, every snapshot answered 201 stored exactly
once (read back from the store), no tab disconnected, no worker restarted, no warning or error in the app's log;
and the RSS growth from the end of `--warmup` to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import time
from collections import Counter

from bench.ingest import percentile
from bench.scale import (
    Bot,
    app,
    app_log_trouble,
    app_processes,
    arrange_group,
    backends,
    cpu_seconds,
    deliveries,
    join_all,
    redis_bytes,
    rss_bytes,
    run_bots,
    stored_twice_or_lost,
    wait_for_deliveries,
)
from tests.support import servers

MIB = 1024 * 1024


async def soak(
    server: servers.Server, env: dict[str, str], redis_url: str, bots_count: int, seconds: float, every: float
) -> dict:
    group = await asyncio.to_thread(arrange_group, env, bots_count)
    arrivals: list[dict[int, float]] = [{} for _ in group]
    tabs = await join_all(server.url, group, arrivals)
    bots = [Bot(token) for _, token, _ in group]
    start = time.time() + 1
    samples: list[dict] = []
    pids: set[int] = set()

    async def sample_forever() -> None:
        while True:
            processes = app_processes(server)
            pids.update(p.pid for p in processes)
            samples.append(
                {
                    "at": time.time() - start,
                    "rss": rss_bytes(processes),
                    "redis": redis_bytes(redis_url),
                    "cpu": cpu_seconds(processes),
                    "load": os.getloadavg()[0],
                    "processes": len(processes),
                }
            )
            await asyncio.sleep(every)

    sampler = asyncio.create_task(sample_forever())
    await run_bots(server.url, bots, start, int(seconds))
    await wait_for_deliveries(bots, arrivals, 10)
    sampler.cancel()
    connected = sum(client.connected for client, _ in tabs)
    for client, _ in tabs:
        await client.disconnect()
    lost, twice = await asyncio.to_thread(stored_twice_or_lost, env, group, bots)
    minutes = []
    for minute in range(math.ceil(seconds / 60)):
        length = min(60, seconds - 60 * minute)
        since, until = (start + 60 * minute) * 1000, (start + 60 * minute + length) * 1000
        latencies, _, _ = deliveries(bots, arrivals, since, until)
        stored = sum(1 for bot in bots for at in bot.answered if since <= at < until)
        minutes.append((minute + 1, stored / length, latencies))
    _, missed, beyond = deliveries(bots, arrivals, 0, float("inf"))
    return {
        "samples": samples,
        "minutes": minutes,
        "posted_ok": sum(len(bot.sent) for bot in bots),
        "posts": bots_count * int(seconds),
        "failed": sum((bot.failed for bot in bots), Counter()),
        "missed": missed,
        "beyond": beyond,
        "lost": lost,
        "twice": twice,
        "connected": connected,
        "pids": len(pids),
        "log_trouble": app_log_trouble(server),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=50, help="bots, members and tabs: one each per strategy")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60, help="RSS growth is measured from here to the end")
    parser.add_argument("--sample", type=float, default=15, help="seconds between samples of RSS and CPU")
    parser.add_argument("--store", choices=["dynamodb", "sql"], default="dynamodb", help="where snapshots go")
    args = parser.parse_args()
    print(
        f"{args.bots} bots at 1 Hz, {args.bots} tabs, {args.workers} workers, {args.seconds:.0f} s; "
        f"snapshots in {args.store}; {os.cpu_count()} cores shared with the clients",
        flush=True,
    )
    with backends() as backing, app(backing, args.workers, args.store) as (server, env):
        r = asyncio.run(soak(server, env, backing.redis.url, args.bots, args.seconds, args.sample))
    print(f"{'minute':>6} {'stored/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for minute, rate, latencies in r["minutes"]:
        p50 = statistics.median(latencies) if latencies else float("nan")
        p99 = percentile(latencies, 0.99) if latencies else float("nan")
        print(f"{minute:>6} {rate:8.1f} {p50:7.1f} {p99:7.1f}")
    print(f"{'s':>6} {'app RSS MiB':>11} {'Redis MiB':>9} {'app CPU %':>9} {'load 1m':>7}")
    samples = r["samples"]
    for before, sample in zip([None, *samples], samples, strict=False):
        cpu = (sample["cpu"] - before["cpu"]) / (sample["at"] - before["at"]) if before else float("nan")
        print(
            f"{sample['at']:6.0f} {sample['rss'] / MIB:11.1f} {sample['redis'] / MIB:9.2f} {cpu:9.0%} "
            f"{sample['load']:7.2f}"
        )
    warm = next((s for s in samples if s["at"] >= args.warmup), samples[0])
    growth = samples[-1]["rss"] / warm["rss"] - 1
    failed = sum(r["failed"].values())
    checks = {
        "posts answered 201": f"{r['posted_ok']}/{r['posts']} (other answers: {dict(r['failed']) or 'none'})",
        "posts not sent (a bot behind schedule)": r["posts"] - r["posted_ok"] - failed,
        "updates missed": r["missed"],
        "updates past a bot's count": r["beyond"],
        "answered 201 but not stored": r["lost"],
        "stored more than once": r["twice"],
        "tabs still connected": f"{r['connected']}/{args.bots}",
        "app processes seen": f"{r['pids']}, {samples[0]['processes']} at a time (a restarted worker adds one)",
        "app log warnings and errors": len(r["log_trouble"]),
        f"RSS growth from {warm['at']:.0f} s to the end": f"{growth:+.1%}",
    }
    for name, value in checks.items():
        print(f"{name}: {value}")
    for line in r["log_trouble"][:20]:
        print(f"| {line[:300]}")
    errors = failed + r["missed"] + r["lost"] + r["twice"] + (args.bots - r["connected"]) + len(r["log_trouble"])
    print(f"errors: {errors}; RSS growth after warm-up {growth:+.1%} (target < 10%)")


if __name__ == "__main__":
    main()
