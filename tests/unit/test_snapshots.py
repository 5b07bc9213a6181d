import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from projectalgo import snapshots

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EIGHT_AM = int(datetime(2026, 11, 25, 8, tzinfo=UTC).timestamp())  # epoch seconds
GOOD = {
    "strategy_access_token": "pa_live_x",
    "last_price": 9321.5,
    "margin_balance": "10234.12",
    "wallet_balance": 10011.7,
    "realised_pnl": 120.5,
    "positions": 150,
    "symbol": "XBTUSD",
    "average_entry_price": 9300.25,
}


def _validate(data, now=NOW):
    body = snapshots.read_body(json.dumps({"data": data}).encode())
    return snapshots.validate(body, now)


def _problems(data) -> list[str]:
    with pytest.raises(snapshots.InvalidSnapshotError) as refused:
        _validate(data)
    return refused.value.problems


def test_the_original_contract_is_accepted_with_exact_decimals():
    accepted = _validate(GOOD)
    assert accepted.at_ms is None
    assert accepted.values == {
        "last_price": Decimal("9321.5"),
        "margin_balance": Decimal("10234.12"),
        "wallet_balance": Decimal("10011.7"),
        "realised_pnl": Decimal("120.5"),
        "positions": Decimal("150"),
        "average_entry_price": Decimal("9300.25"),
        "symbol": "XBTUSD",
    }
    assert snapshots.body_token({"data": GOOD}) == "pa_live_x"


def test_every_wrong_field_is_named_at_once():
    problems = _problems(
        {
            "last_price": "abc",
            "margin_balance": True,
            "wallet_balance": None,
            "realised_pnl": "1" * 39,
            "positions": "Infinity",
            "average_entry_price": "NaN",
            "symbol": "S" * 33,
        }
    )
    assert problems == [
        "last_price: must be a number, got 'abc'",
        "margin_balance: must be a number, got bool",
        "wallet_balance: is missing",
        "realised_pnl: has more than 38 significant digits",
        "positions: must be a finite number, not NaN or Infinity",
        "average_entry_price: must be a finite number, not NaN or Infinity",
        "symbol: must be at most 32 characters",
    ]


def test_nan_and_infinity_literals_are_refused():
    raw = (
        b'{"data": {"last_price": NaN, "margin_balance": Infinity, "wallet_balance": -Infinity, "realised_pnl": 0,'
        b' "positions": 0, "average_entry_price": 0, "symbol": "X"}}'
    )
    with pytest.raises(snapshots.InvalidSnapshotError) as refused:
        snapshots.validate(snapshots.read_body(raw), NOW)
    assert [p.split(":")[0] for p in refused.value.problems] == ["last_price", "margin_balance", "wallet_balance"]


def test_38_significant_digits_and_trailing_zeros_are_fine():
    accepted = _validate(GOOD | {"last_price": "1234567890.1234567890123456789012345678", "positions": "150.000"})
    assert accepted.values["last_price"] == Decimal("1234567890.1234567890123456789012345678")
    assert accepted.values["positions"] == 150


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2026-11-25T11:00:00Z", datetime(2026, 11, 25, 11, tzinfo=UTC)),
        ("2026-11-25T13:00:00+02:00", datetime(2026, 11, 25, 11, tzinfo=UTC)),
        ("2026-11-25T11:00:00", datetime(2026, 11, 25, 11, tzinfo=UTC)),
        (EIGHT_AM, datetime(2026, 11, 25, 8, tzinfo=UTC)),
        (EIGHT_AM * 1000 + 123, datetime(2026, 11, 25, 8, 0, 0, 123000, tzinfo=UTC)),
        (f"{EIGHT_AM}.5", datetime(2026, 11, 25, 8, 0, 0, 500000, tzinfo=UTC)),
        ((NOW + timedelta(minutes=4)).isoformat(), NOW + timedelta(minutes=4)),
    ],
)
def test_created_at_accepts_iso_and_epoch_seconds_or_ms(created_at, expected):
    assert _validate(GOOD | {"created_at": created_at}).at_ms == snapshots.epoch_ms(expected)


@pytest.mark.parametrize(
    ("created_at", "problem"),
    [
        ((NOW + timedelta(minutes=6)).isoformat(), "more than 5 minutes in the future"),
        ("yesterday", "must be ISO 8601"),
        ("", "must be ISO 8601"),
        (True, "must be ISO 8601"),
        (1e300, "must be ISO 8601"),
        (86400, "before the year 2000"),
    ],
)
def test_bad_created_at_is_refused(created_at, problem):
    assert problem in _problems(GOOD | {"created_at": created_at})[0]


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"1" * 5000])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(raw):
    with pytest.raises(snapshots.BadBodyError):
        snapshots.read_body(raw)


@pytest.mark.parametrize(("body", "problem"), [({}, "data: is missing"), ({"data": [1]}, "data: must be an object")])
def test_a_missing_or_wrong_data_member_is_named(body, problem):
    with pytest.raises(snapshots.InvalidSnapshotError) as refused:
        snapshots.validate(body, NOW)
    assert refused.value.problems == [problem]


def test_latest_per_account_counts_each_account_once():
    class Store:
        def __init__(self, latest):
            self._latest = latest

        def latest(self, strategy_id):
            return self._latest.get(strategy_id)

    def snap(strategy_id, account_id, at_ms, wallet):
        return snapshots.Snapshot(
            strategy_id, account_id, at_ms, *(Decimal(0),) * 2, Decimal(wallet), *(Decimal(0),) * 3, "X"
        )

    store = Store({1: snap(1, 10, 1000, 5), 2: snap(2, 10, 2000, 7), 3: snap(3, 20, 1500, 11)})
    newest = snapshots.latest_per_account(store, [1, 2, 3, 4])
    assert {account: s.wallet_balance for account, s in newest.items()} == {10: 7, 20: 11}


def _at(at_ms, wallet, margin="0", strategy_id=1):
    return snapshots.Snapshot(
        strategy_id=strategy_id,
        account_id=1,
        at_ms=at_ms,
        symbol="XBTUSD",
        last_price=Decimal(1),
        margin_balance=Decimal(margin),
        wallet_balance=Decimal(wallet),
        realised_pnl=Decimal(0),
        positions=Decimal(0),
        average_entry_price=Decimal(0),
    )


def test_buckets_start_on_the_utc_hour_and_day():
    at = snapshots.epoch_ms(datetime(2026, 11, 25, 13, 59, 59, 999_000, tzinfo=UTC))
    assert snapshots.bucket_start(at, "hour") == snapshots.epoch_ms(datetime(2026, 11, 25, 13, tzinfo=UTC))
    assert snapshots.bucket_start(at, "day") == snapshots.epoch_ms(datetime(2026, 11, 25, tzinfo=UTC))
    assert snapshots.bucket_start(at + 1, "hour") == at + 1  # 14:00:00.000 starts the next hour
    assert snapshots.ROLLUP_RESOLUTIONS == {"hour": 3_600_000, "day": 86_400_000}
    with pytest.raises(ValueError, match="unknown roll-up resolution 'week'"):
        snapshots.bucket_start(at, "week")


def test_a_late_older_snapshot_widens_the_extremes_but_does_not_replace_last():
    bucket = snapshots.fold_rollup(None, _at(2000, wallet="10", margin="-5"), "hour")
    bucket = snapshots.fold_rollup(bucket, _at(3000, wallet="9", margin="-40"), "hour")  # "9" > "10" as text
    bucket = snapshots.fold_rollup(bucket, _at(1000, wallet="100", margin="-4"), "hour")  # arrives late
    assert bucket.last.at_ms == 3000
    assert (bucket.wallet_min, bucket.wallet_max, bucket.margin_min, bucket.margin_max) == (9, 100, -40, -4)
    assert bucket.bucket_ms == 0


def test_merging_is_commutative_and_idempotent_so_a_store_may_merge_twice():
    one = snapshots.fold_rollup(None, _at(1000, wallet="3"), "day")
    two = snapshots.fold_rollup(None, _at(2000, wallet="1.5"), "day")
    both = snapshots.merge_rollups(one, two)
    assert both == snapshots.merge_rollups(two, one)
    assert snapshots.merge_rollups(both, both) == both
    assert snapshots.merge_rollups(both, one) == both
    with pytest.raises(ValueError, match="same strategy and bucket"):
        snapshots.merge_rollups(one, snapshots.fold_rollup(None, _at(snapshots.DAY_MS, wallet="1"), "day"))
    with pytest.raises(ValueError, match="same strategy and bucket"):
        snapshots.merge_rollups(one, snapshots.fold_rollup(None, _at(1000, wallet="1", strategy_id=2), "day"))


def test_fold_rollups_covers_every_resolution_and_strategy():
    folded = snapshots.fold_rollups(
        [_at(10, "1"), _at(snapshots.HOUR_MS + 10, "2"), _at(20, "5", strategy_id=2), _at(5, "0.5")]
    )
    assert sorted(folded) == [
        (1, "day", 0),
        (1, "hour", 0),
        (1, "hour", snapshots.HOUR_MS),
        (2, "day", 0),
        (2, "hour", 0),
    ]
    assert folded[1, "day", 0].last.at_ms == snapshots.HOUR_MS + 10
    assert (folded[1, "day", 0].wallet_min, folded[1, "day", 0].wallet_max) == (Decimal("0.5"), 2)
    assert (folded[1, "hour", 0].last.at_ms, folded[1, "hour", 0].wallet_min) == (10, Decimal("0.5"))
    assert folded[2, "hour", 0].wallet_max == 5
