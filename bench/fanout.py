"""Live push fan-out without a browser: N websocket sessions on one strategy page, POST -> delta delivered.

    .venv/bin/python -m bench.fanout --sessions 1 20 100 --posts 30

Each session joins the way a browser tab does (Socket.IO on /_event, then the page's hydrate-and-load event
carrying the sign-in token from browser storage), so the app checks it and registers it for the strategy.
The app runs on loopback with one worker; the clients run in this process. Reports, per session count,
the delivery latency of each update (POST sent -> the session received the delta holding its tail) and
the app process's CPU time per update.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

from bench.ingest import app_env
from projectalgo.db import make_engine
from projectalgo.snapshots import NUMBER_FIELDS
from tests.support import servers
from tests.support.tabs import arrange, join


async def run(
    url: str, pid: int, strategy_id: int, token: str, session_token: str, sessions: int, posts: int, interval: float
) -> dict:
    arrivals: list[dict[int, float]] = [{} for _ in range(sessions)]
    clients = []
    for n in range(sessions):  # joined one at a time, as tabs open
        clients.append((await join(url, strategy_id, session_token, arrivals[n]))[0])
    await asyncio.sleep(1)
    process = psutil.Process(pid)
    cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in [process, *process.children(True)])
    sent_at: dict[int, float] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for seq in range(1, posts + 1):
            sent_at[seq] = time.time() * 1000
            body = {"data": dict.fromkeys(NUMBER_FIELDS, 10_000 + seq) | {"symbol": "XBTUSD"}}
            async with http.post(f"{url}/api/v1/strategy/", json=body) as answer:
                assert answer.status == 201, await answer.text()
            await asyncio.sleep(interval)
    await asyncio.sleep(2)
    cpu_after = sum(p.cpu_times().user + p.cpu_times().system for p in [process, *process.children(True)])
    for client in clients:
        await client.disconnect()
    # Each session's seq counts this session's updates from 1: the n-th post is its n-th update.
    delivered = [a[seq] - sent for a in arrivals for seq, sent in sent_at.items() if seq in a]
    ordered = sorted(delivered)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "missing": sessions * posts - len(delivered),
        "cpu_ms": (cpu_after - cpu_before) * 1000 / posts,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--posts", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.25)
    args = parser.parse_args()
    print(f"{args.posts} posts every {args.interval * 1000:.0f} ms to one strategy watched by N sessions")
    print(f"{'sessions':>8} {'delivery p50 ms':>16} {'p99 ms':>8} {'missing':>8} {'app CPU ms / update':>20}")
    for sessions in args.sessions:  # a fresh app each time: sessions from the previous run stay registered
        work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
        env = app_env(work, "fanout", {})
        strategy_id, token, session_token = arrange(make_engine(env["DATABASE_URL"]))
        server = servers.start_app(work, env, name="fanout")
        try:
            result = asyncio.run(
                run(
                    server.url,
                    server.process.pid,
                    strategy_id,
                    token,
                    session_token,
                    sessions,
                    args.posts,
                    args.interval,
                )
            )
        finally:
            server.stop()
        print(
            f"{sessions:>8} {result['p50']:16.1f} {result['p99']:8.1f} {result['missing']:>8} {result['cpu_ms']:20.1f}"
        )


if __name__ == "__main__":
    main()
