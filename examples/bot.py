"""An example trading bot: posts a random-walk snapshot of one strategy every few seconds.

    PROJECTALGO_TOKEN=pa_live_... python examples/bot.py --url http://localhost:3000 --interval 5

For demos and load tests. A real bot sends its broker's figures, in USD, 0 where the broker gives nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from decimal import Decimal

import requests


def random_walk(price: Decimal, wallet: Decimal) -> tuple[Decimal, Decimal]:
    price = (price * Decimal(1 + random.gauss(0, 0.002))).quantize(Decimal("0.5"))
    wallet = (wallet + Decimal(random.gauss(0, 5))).quantize(Decimal("0.01"))
    return price, wallet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:3000", help="the ProjectAlgo server")
    parser.add_argument("--token", default=os.environ.get("PROJECTALGO_TOKEN"), help="or PROJECTALGO_TOKEN")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between snapshots")
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0: run until interrupted)")
    parser.add_argument("--symbol", default="XBTUSD")
    args = parser.parse_args()
    if not args.token:
        parser.error("give the strategy token with --token or PROJECTALGO_TOKEN")

    price, wallet, position, entry = Decimal("9300"), Decimal("10000"), 150, Decimal("9300.25")
    sent = 0
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {args.token}"
        while not args.count or sent < args.count:
            price, wallet = random_walk(price, wallet)
            margin = wallet + (price - entry) * position / price
            data = {
                "last_price": str(price),
                "margin_balance": str(margin.quantize(Decimal("0.01"))),
                "wallet_balance": str(wallet),
                "realised_pnl": str((wallet - Decimal("10000")).quantize(Decimal("0.01"))),
                "positions": position,
                "symbol": args.symbol,
                "average_entry_price": str(entry),
            }
            try:
                answer = http.post(f"{args.url.rstrip('/')}/api/v1/strategy/", json={"data": data}, timeout=10)
            except requests.RequestException as error:
                print(f"not sent: {error}", file=sys.stderr)
            else:
                if answer.status_code in (429, 503):
                    time.sleep(float(answer.headers.get("Retry-After", "5")))
                    continue
                print(answer.status_code, answer.text, flush=True)
                if answer.status_code == 401:
                    return 1
            sent += 1
            time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
