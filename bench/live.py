"""Live updates in the browser: POST -> chart on screen latency and websocket bytes per update.

    .venv/bin/python -m bench.live --tabs 1 5 20 --history 100 10000 --posts 30

For each history length it starts the app on loopback, writes that many snapshots of one strategy into the
last 24 hours, opens K tabs of the strategy page in Debian's chromium (one signed-in browser context) and
posts snapshots a few times a second. Each tab records, in the page, when the chart's drawn sequence
changes; bytes are the websocket frames each tab received per update.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import requests
from playwright.sync_api import CDPSession, sync_playwright

from bench.ingest import app_env
from projectalgo.clock import utcnow
from projectalgo.db import make_engine, session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot, epoch_ms
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.factories import PASSWORD, grant_membership, make_member, make_strategy, store_one
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
        store_one(
            store,
            Snapshot(
                strategy_id,
                account_id,
                now - (history - n) * step,
                **dict.fromkeys(NUMBER_FIELDS, value),
                symbol="XBTUSD",
            ),
        )
    return strategy_id, token


SEQ = re.compile(r'"tail[^"]*":\{"seq":(\d+)')  # Reflex may suffix the var's name in a delta


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _watch_frames(cdp: CDPSession) -> dict[int, float]:
    """When each live update's frame reached the tab's network stack (epoch ms), read from Chromium's own
    timestamps: unlike the page's clock, they do not wait for the tab to finish drawing."""
    arrived: dict[int, float] = {}
    offset: list[float] = []  # wall clock minus the network stack's monotonic clock, in seconds

    def handshake(params: dict) -> None:
        offset[:] = [params["wallTime"] - params["timestamp"]]

    def frame(params: dict) -> None:
        match = SEQ.search(params["response"]["payloadData"])
        if match and offset:
            arrived.setdefault(int(match.group(1)), (params["timestamp"] + offset[0]) * 1000)

    cdp.on("Network.webSocketWillSendHandshakeRequest", handshake)
    cdp.on("Network.webSocketFrameReceived", frame)
    cdp.send("Network.enable")
    return arrived


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
        pages, frames, arrivals = [], [], []
        for _ in range(tabs):
            page = context.new_page()
            received: list[int] = []
            page.on(
                "websocket",
                lambda ws, received=received: ws.on(
                    "framereceived", lambda payload, received=received: received.append(len(payload))
                ),
            )
            arrivals.append(_watch_frames(context.new_cdp_session(page)))
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
        pages[0].wait_for_timeout(2000)  # lets Playwright hand over the browser's events
        draw_ms = [float(p.evaluate("document.querySelector('#strategy-chart').dataset.drawMs")) for p in pages]
        latencies, missing = [], 0
        delivered = [arrived[seq] - sent for arrived in arrivals for seq, sent in sent_at.items() if seq in arrived]
        for page in pages:
            drawn = page.evaluate("window.__drawn")
            for seq, sent in sent_at.items():
                if str(seq) in drawn:
                    latencies.append(drawn[str(seq)] - sent)
                else:
                    missing += 1  # coalesced into a later frame, or never drawn
        bytes_per_update = statistics.mean((sum(f) - b) / posts for f, b in zip(frames, before, strict=True))
        browser.close()
    return {
        "delivery_p50": statistics.median(delivered),
        "delivery_p99": _p99(delivered),
        "p50": statistics.median(latencies),
        "p99": _p99(latencies),
        "bytes": bytes_per_update,
        "missing": missing,
        "draw_ms": statistics.mean(draw_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--history", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--posts", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between posts")
    args = parser.parse_args()
    print(f"{args.posts} posts every {args.interval * 1000:.0f} ms; latencies from the POST being sent")
    print("delivered = frame in the tab's network stack; drawn = chart redrawn on screen")
    print(
        f"{'history':>8} {'tabs':>5} {'delivered p50/p99 ms':>21} {'drawn p50/p99 ms':>18} "
        f"{'ws bytes/update/tab':>20} {'merged':>7} {'redraw ms':>9}"
    )
    for history in args.history:
        work = Path(tempfile.mkdtemp(prefix="bench-live-"))
        env = app_env(work, "live", {})
        strategy_id, token = arrange(env, history)
        server = servers.start_app(work, env, name="live")
        try:
            for tabs in args.tabs:
                result = measure(server.url, strategy_id, token, tabs, args.posts, args.interval)
                print(
                    f"{history:>8} {tabs:>5} {result['delivery_p50']:10.1f} /{result['delivery_p99']:8.1f} "
                    f"{result['p50']:8.1f} /{result['p99']:8.1f} {result['bytes']:20.0f} {result['missing']:>7} "
                    f"{result['draw_ms']:9.1f}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
