"""Fault injection: DynamoDB stops while bots post, then comes back. No POST is lost or half-answered."""

import threading
import time
from collections.abc import Callable

import requests

from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.settings import load_settings
from tests.factories import make_member, make_strategy

BODY = {
    "last_price": 1,
    "margin_balance": 2,
    "wallet_balance": 3,
    "realised_pnl": 4,
    "positions": 5,
    "symbol": "XBTUSD",
    "average_entry_price": 6,
}
MAX_POSTS = 5000  # bounded: the poster stops by itself if the test does not stop it
CONDITION_SECONDS = 60  # each step's deadline: a step not reached by then fails the test


def test_every_post_is_201_and_stored_or_503_and_not_while_dynamodb_stops_and_restarts(
    dynamo_app_server, dynamo_app_engine, dynamo_app_env, dynamo_backing
):
    member = make_member(dynamo_app_engine)
    bots = [make_strategy(dynamo_app_engine, member, name=f"Fault {n}") for n in range(3)]
    answers: list[tuple[int, int, requests.Response]] = []  # (strategy id, value sent, answer)
    answered = threading.Condition()  # notified on each answer, and when the poster ends
    stop = threading.Event()

    def post_until_stopped():
        try:
            with requests.Session() as http:
                for n in range(MAX_POSTS):
                    if stop.is_set():
                        return
                    strategy_id, token = bots[n % 3]
                    answer = http.post(
                        f"{dynamo_app_server.url}/api/v1/strategy/",
                        json={"data": BODY | {"positions": n}},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=15,
                    )
                    with answered:
                        answers.append((strategy_id, n, answer))
                        answered.notify_all()
                    time.sleep(0.04)  # pace: ~25 posts a second across three tokens, under each token's rate
        finally:
            with answered:
                answered.notify_all()

    def statuses_since(start: int) -> list[int]:
        return [answer.status_code for _, _, answer in answers[start:]]

    def answer_count() -> int:
        with answered:
            return len(answers)

    def wait_until(what: str, condition: Callable[[], bool]) -> None:
        """Wait until `condition` holds, or fail when it has not after CONDITION_SECONDS or the poster ended."""
        with answered:
            answered.wait_for(lambda: condition() or not poster.is_alive(), timeout=CONDITION_SECONDS)
            assert condition(), f"{what}: not after {CONDITION_SECONDS} s; answers: {statuses_since(0)}"

    poster = threading.Thread(target=post_until_stopped)
    poster.start()
    try:
        wait_until("posts stored before the outage", lambda: statuses_since(0).count(201) >= 5)
        dynamo_backing.stop()
        stopped = answer_count()
        wait_until("a post refused during the outage", lambda: 503 in statuses_since(stopped))
        dynamo_backing.restart()
        restarted = answer_count()
        wait_until("a post stored after the outage", lambda: 201 in statuses_since(restarted))
    finally:
        stop.set()
        poster.join(timeout=60)

    statuses = [answer.status_code for _, _, answer in answers]
    assert set(statuses) == {201, 503}, f"only 201 or 503 may answer, got {sorted(set(statuses))}"
    first_503, last_503 = statuses.index(503), len(statuses) - 1 - statuses[::-1].index(503)
    assert 201 in statuses[:first_503] and 201 in statuses[last_503:], "posts succeed before and after the outage"
    for _, _, answer in answers:
        if answer.status_code == 503:
            assert answer.json()["error"] == "store_unavailable" and answer.headers["Retry-After"] == "5"

    store = DynamoSnapshotStore(load_settings(dynamo_app_env))
    for strategy_id, _ in bots:
        stored = {int(s.positions) for s in store.between(strategy_id, 0, 2**53).items}
        accepted = {n for sid, n, answer in answers if sid == strategy_id and answer.status_code == 201}
        assert stored == accepted, "every 201 is stored, and no 503 is"
