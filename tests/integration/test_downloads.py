"""CSV downloads through signed links, over HTTP to the running app."""

import csv
import io
import time
from decimal import Decimal

import requests

from projectalgo import exports
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot
from tests.conftest import TEST_SECRET_KEY_BASE
from tests.factories import make_admin, make_member, make_strategy, store_one


def _link(user_id, strategy_id, start=0, end=2**53, now=None, secret=TEST_SECRET_KEY_BASE):
    return exports.signed_link(
        secret,
        user_id=user_id,
        strategy_id=strategy_id,
        start_ms=start,
        end_ms=end,
        now_s=int(time.time()) if now is None else now,
    )


def test_a_signed_link_downloads_the_range_as_csv_and_nothing_else_does(app_server, app_engine):
    owner = make_member(app_engine)
    strategy_id, _ = make_strategy(app_engine, owner, name='Csv, "quoted"')
    with session_scope(app_engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    store = SqlSnapshotStore(app_engine)
    for n in range(2500):  # more than one store page
        store_one(
            store,
            Snapshot(
                strategy_id,
                account_id,
                1_700_000_000_000 + n * 1000,
                **dict.fromkeys(NUMBER_FIELDS, Decimal(n)),
                symbol="XBTUSD",
            ),
        )
    answer = requests.get(
        app_server.url + _link(owner.id, strategy_id, start=1_700_000_010_000, end=1_700_002_010_000), timeout=30
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert 'filename="Csv___quoted_-snapshots.csv"' in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["time_utc", *NUMBER_FIELDS, "symbol"]
    assert len(rows) == 1 + 2000 and rows[1][0] == "2023-11-14T22:13:30.000Z" and rows[1][1] == "10"

    admin = make_admin(app_engine)
    assert requests.get(app_server.url + _link(admin.id, strategy_id), timeout=30).status_code == 200
    other = make_member(app_engine)
    refused = requests.get(app_server.url + _link(other.id, strategy_id), timeout=10)
    assert (refused.status_code, refused.json()["error"]) == (404, "not_found")
    expired = requests.get(app_server.url + _link(owner.id, strategy_id, now=int(time.time()) - 61), timeout=10)
    assert (expired.status_code, expired.json()["error"]) == (403, "invalid_link")
    forged = requests.get(app_server.url + _link(owner.id, strategy_id, secret="x" * 40), timeout=10)
    assert forged.status_code == 403
    tampered = requests.get(app_server.url + _link(owner.id, strategy_id).replace("start=0", "start=1"), timeout=10)
    assert tampered.status_code == 403
