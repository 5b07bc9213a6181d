"""Property: any JSON body either stores exactly one snapshot with the same values, or nothing and a 4xx."""

import itertools
import json
from decimal import Decimal

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.snapshots import ALL_TIME_END_MS, NUMBER_FIELDS
from tests.factories import make_member, make_strategy

_names = itertools.count(1)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
number_like = st.one_of(
    st.integers(),
    st.floats(),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    json_values,
)
data = st.fixed_dictionaries(
    dict.fromkeys(NUMBER_FIELDS, number_like) | {"symbol": st.one_of(st.text(max_size=40), json_values)},
    optional={"created_at": st.one_of(st.integers(), st.datetimes().map(lambda d: d.isoformat()), json_values)},
)
bodies = st.one_of(data.map(lambda d: {"data": d}), json_values, st.fixed_dictionaries({"data": json_values}))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(body=bodies)
def test_a_body_is_stored_whole_or_not_at_all(app_server, app_engine, body):
    member = make_member(app_engine)
    strategy_id, token = make_strategy(app_engine, member, name=f"Property {next(_names)}")
    raw = json.dumps(body)  # what a bot would send, NaN and Infinity literals included
    answer = requests.post(
        f"{app_server.url}/api/v1/strategy/",
        data=raw,
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    stored = SqlSnapshotStore(app_engine).between(strategy_id, 0, ALL_TIME_END_MS).items
    if answer.status_code == 201:
        assert len(stored) == 1
        sent = json.loads(raw, parse_float=Decimal, parse_int=Decimal)["data"]
        for name in NUMBER_FIELDS:
            assert getattr(stored[0], name) == Decimal(str(sent[name]).strip())
        assert stored[0].symbol == sent["symbol"].strip()
    else:
        assert 400 <= answer.status_code < 500, answer.text
        assert set(answer.json()) == {"error", "detail"}
        assert stored == []
