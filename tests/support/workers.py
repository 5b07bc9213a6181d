"""The app with several workers, as `make prod` runs it (tests/conftest.py `start_workers`): posting to it a new
connection at a time (so the workers take turns), and reading which worker holds each tab's websocket."""

from __future__ import annotations

import pickle

import redis
import requests

from projectalgo.snapshots import NUMBER_FIELDS


def post(url: str, token: str, n: int, timeout: float = 30) -> requests.Response:
    """A bot's post of snapshot number `n` (its numbers all 10,000 + n)."""
    body = {"data": dict.fromkeys(NUMBER_FIELDS, 10_000 + n) | {"symbol": "XBTUSD"}}
    # A new connection for each post: the workers take turns accepting them.
    return requests.post(
        f"{url}/api/v1/strategy/",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=timeout,
    )


def workers_holding(redis_url: str, client_tokens: list[str]) -> dict[str, str]:
    """Which worker (Reflex's instance id) holds each tab's websocket, from Reflex's socket records in Redis
    (pickled reflex.utils.token_manager.SocketRecord); a tab without a record is left out."""
    with redis.Redis.from_url(redis_url) as client:
        records = {token: client.get(f"token_manager_socket_record_{token}") for token in client_tokens}
    return {token: pickle.loads(record).instance_id for token, record in records.items() if record}
