import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from projectalgo import snapshots
from projectalgo.errors import ConflictError, InvalidInputError

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


def test_zeros_past_the_significant_digits_are_dropped_so_every_store_can_keep_the_number():
    accepted = _validate(GOOD | {"positions": "9" * 38, "realised_pnl": "12.5" + "0" * 60, "last_price": "0E-200"})
    assert accepted.values["positions"] == Decimal("9" * 38)
    assert accepted.values["realised_pnl"] == Decimal("12.5")
    assert accepted.values["last_price"] == 0
    for name in ("positions", "realised_pnl", "last_price"):
        assert len(accepted.values[name].as_tuple().digits) <= 38 and len(str(accepted.values[name])) <= 64


@pytest.mark.parametrize("number", ["1" + "0" * 38, "-1e38", "1e-131", 1e200])
def test_numbers_out_of_range_get_named(number):
    with pytest.raises(snapshots.InvalidSnapshotError) as refused:
        _validate(GOOD | {"positions": number})
    assert refused.value.problems == ["positions: is out of range (magnitude between 1e-130 and 1e38)"]


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
        ("yesterday", "must be ISO 8601"),
        ("", "must be ISO 8601"),
        (True, "must be ISO 8601"),
        (1e300, "must be ISO 8601"),
        (86400, "before the year 2000"),
    ],
)
def test_bad_created_at_is_refused(created_at, problem):
    assert problem in _problems(GOOD | {"created_at": created_at})[0]


def test_created_at_too_far_ahead_is_a_conflict_not_invalid_input():
    with pytest.raises(snapshots.FutureSnapshotError) as refused:
        _validate(GOOD | {"created_at": (NOW + timedelta(minutes=6)).isoformat()})
    assert isinstance(refused.value, ConflictError) and not isinstance(refused.value, InvalidInputError)
    assert refused.value.code == "created_at_in_future"
    assert refused.value.problems == ["created_at: is more than 5 minutes in the future"]


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"1" * 5000])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(raw):
    with pytest.raises(snapshots.BadBodyError):
        snapshots.read_body(raw)


@pytest.mark.parametrize(("body", "problem"), [({}, "data: is missing"), ({"data": [1]}, "data: must be an object")])
def test_a_missing_or_wrong_data_member_is_named(body, problem):
    with pytest.raises(snapshots.InvalidSnapshotError) as refused:
        snapshots.validate(body, NOW)
    assert refused.value.problems == [problem]


def test_epoch_ms_is_exact_for_every_millisecond():
    start = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    for ms in range(2000):
        assert snapshots.epoch_ms(start + timedelta(milliseconds=ms)) == 1_795_953_600_000 + ms
