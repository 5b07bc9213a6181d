"""The app with several workers, as `make prod` runs it (tests/conftest.py `start_workers`): posting to it a new
connection at a time (so the workers take turns), bots posting without pause, which worker holds each tab's
websocket, and which worker answered a post."""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import redis
import requests

from projectalgo.live import CHANNEL
from projectalgo.snapshots import NUMBER_FIELDS

T = TypeVar("T")


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


def until(what: str, value: Callable[[], T], timeout: float = 30) -> T:
    """What `value()` returns once it is true (asked again every 50 ms), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := value()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(0.05)
    return found


def listeners(redis_url: str) -> int:
    """How many workers listen for the stored snapshots (subscribers of live.py's Redis channel)."""
    with redis.Redis.from_url(redis_url) as client:
        return dict(client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0)


def served_by(log_path: Path, request_id: str) -> int | None:
    """The pid of the worker that answered the API call with this X-Request-ID (its `api.request` line in the
    app's JSON log), or None while that line is not written yet."""
    for line in log_path.read_text(errors="replace").splitlines():
        if request_id in line and '"api.request"' in line:
            try:
                fields = json.loads(line)
            except ValueError:  # not the app's line (another library's text holding the id)
                continue
            if fields.get("request_id") == request_id and fields.get("event") == "api.request":
                return int(fields["pid"])
    return None


@dataclass(frozen=True)
class Answer:
    n: int  # the snapshot's number (`post`)
    status: int | None  # None: no HTTP answer at all
    body: object  # the JSON answer; else its text, or the error that kept it from coming
    retry_after: str | None


class Bots:
    """`count` bots posting one strategy's numbered snapshots without pause, each post on a new connection (the
    workers take turns), until the `with` block ends; `answers` holds every answer in the order they came."""

    def __init__(self, url: str, token: str, count: int = 3, max_posts: int = 20_000) -> None:
        self.url, self.token, self.count, self.max_posts = url, token, count, max_posts
        self.answers: list[Answer] = []
        self._answered = threading.Condition()  # notified on each answer, and when a bot ends
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post_until_stopped, args=(n,)) for n in range(count)]

    def __enter__(self) -> Bots:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _post_until_stopped(self, first: int) -> None:
        try:
            for n in range(first, self.max_posts, self.count):
                if self._stop.is_set():
                    return
                try:
                    answer = post(self.url, self.token, n)
                    try:
                        body: object = answer.json()
                    except ValueError:
                        body = answer.text
                    got = Answer(n, answer.status_code, body, answer.headers.get("Retry-After"))
                except requests.RequestException as error:
                    got = Answer(n, None, type(error).__name__, None)
                with self._answered:
                    self.answers.append(got)
                    self._answered.notify_all()
        finally:
            with self._answered:
                self._answered.notify_all()

    def mark(self) -> int:
        """Where the answers to come start."""
        with self._answered:
            return len(self.answers)

    def statuses(self, since: int = 0) -> list[int | None]:
        with self._answered:
            return [answer.status for answer in self.answers[since:]]

    def wait_until(self, what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
        """Wait until `condition` holds (checked at each answer), or fail once `timeout` seconds passed or the
        bots have stopped."""
        with self._answered:
            self._answered.wait_for(
                lambda: condition() or not any(t.is_alive() for t in self._threads), timeout=timeout
            )
            assert condition(), f"{what}: not after {timeout:.0f} s; statuses: {Counter(self.statuses())}"
