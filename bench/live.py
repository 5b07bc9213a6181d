"""Live updates in the browser: POST -> chart on screen latency and websocket bytes per update.

    .venv/bin/python -m bench.live --tabs 1 5 20 --history 100 10000 --posts 30

For each history length it starts the app on loopback, writes that many snapshots of one strategy into the
last 24 hours, opens K tabs of the strategy page in Debian's chromium (one signed-in browser context) and
posts snapshots a few times a second. Each tab records, in the page, when the chart's drawn sequence
changes; bytes are the websocket frames each tab received per update.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

from bench.ingest import app_env
from projectalgo.clock import utcnow
from projectalgo.db import make_engine, session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot, epoch_ms
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.factories import PASSWORD, grant_membership, make_member, make_strategy
from tests.support import servers

WATCH = """() => {
  window.__drawn = {};
  const chart = document.querySelector('#strategy-chart');
  new MutationObserver(() => {
    const seq = chart.dataset.seq;
    if (seq && !(seq in window.__drawn)) window.__drawn[seq] = performance.timeOrigin + performance.now();
  }).observe(chart, {attributes: true, attributeFilter: ['data-seq']});
}"""


def arrange(env: dict[str, str], history: int) -> tuple[int, str]:
    engine = make_engine(env["DATABASE_URL"])
    member = make_member(engine, email="bench@example.com")
    grant_membership(engine, member)
    strategy_id, token = make_strategy(engine, member, name="Bench")
    with session_scope(engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    store, now = SqlSnapshotStore(engine), epoch_ms(utcnow())
    step = 86_000_000 // history
    for n in range(history):
        value = Decimal(10_000 + n % 97)
        store.put(
            Snapshot(
                strategy_id,
                account_id,
                now - (history - n) * step,
                **dict.fromkeys(NUMBER_FIELDS, value),
                symbol="XBTUSD",
            )
        )
    return strategy_id, token


def measure(url: str, strategy_id: int, token: str, tabs: int, posts: int, interval: float) -> dict:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        login = context.new_page()
        login.goto(f"{url}/login")
        login.fill("#email", "bench@example.com")
        login.fill("#password", PASSWORD)
        login.get_by_role("button", name="Sign in").click()
        login.wait_for_url("**/dashboard*")
        login.close()
        pages, frames = [], []
        for _ in range(tabs):
            page = context.new_page()
            received: list[int] = []
            page.on(
                "websocket",
                lambda ws, received=received: ws.on(
                    "framereceived", lambda payload, received=received: received.append(len(payload))
                ),
            )
            page.goto(f"{url}/strategies/{strategy_id}")
            page.wait_for_function("document.querySelector('#strategy-chart .main-svg') !== null", timeout=60_000)
            page.evaluate(WATCH)
            pages.append(page)
            frames.append(received)
        time.sleep(1)
        before = [sum(f) for f in frames]
        sent_at: dict[int, float] = {}
        with requests.Session() as http:
            for seq in range(1, posts + 1):
                sent_at[seq] = time.time() * 1000
                answer = http.post(
                    f"{url}/api/v1/strategy/",
                    timeout=10,
                    headers={"Authorization": f"Bearer {token}"},
                    json={"data": dict.fromkeys(NUMBER_FIELDS, 10_000 + seq) | {"symbol": "XBTUSD"}},
                )
                answer.raise_for_status()
                time.sleep(interval)
        time.sleep(2)
        latencies, missing = [], 0
        for page in pages:
            drawn = page.evaluate("window.__drawn")
            for seq, sent in sent_at.items():
                if str(seq) in drawn:
                    latencies.append(drawn[str(seq)] - sent)
                else:
                    missing += 1  # coalesced into a later frame, or never drawn
        bytes_per_update = statistics.mean((sum(f) - b) / posts for f, b in zip(frames, before, strict=True))
        browser.close()
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "bytes": bytes_per_update,
        "missing": missing,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--history", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--posts", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between posts")
    args = parser.parse_args()
    print(f"{args.posts} posts every {args.interval * 1000:.0f} ms; latency = POST sent -> chart redrawn in the tab")
    print(f"{'history':>8} {'tabs':>5} {'p50 ms':>8} {'p99 ms':>8} {'ws bytes/update/tab':>20} {'not drawn':>10}")
    for history in args.history:
        work = Path(tempfile.mkdtemp(prefix="bench-live-"))
        env = app_env(work, "live", {})
        strategy_id, token = arrange(env, history)
        server = servers.start_app(work, env, name="live")
        try:
            for tabs in args.tabs:
                result = measure(server.url, strategy_id, token, tabs, args.posts, args.interval)
                print(
                    f"{history:>8} {tabs:>5} {result['p50']:8.1f} {result['p99']:8.1f} {result['bytes']:20.0f} "
                    f"{result['missing']:>10}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
