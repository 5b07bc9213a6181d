"""Snapshots that trading bots post: validation of the bot contract, the SnapshotStore protocol, and reads.

Plain Python; no Reflex. Numbers stay `Decimal` from the request body to the store, so what a bot sent is
what is stored (DynamoDB numbers hold up to 38 significant digits).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Protocol, TypedDict, runtime_checkable

from projectalgo.clock import DAY_MS, HOUR_MS
from projectalgo.errors import ConflictError, InvalidInputError, UnavailableError, UnreadableError

NUMBER_FIELDS = (
    "last_price",
    "margin_balance",
    "wallet_balance",
    "realised_pnl",
    "positions",
    "average_entry_price",
)
SYMBOL_MAX_LENGTH = 32
# A store moves a snapshot whose millisecond is taken to the next free one, at most this many times.
MAX_SAME_MS_RETRIES = 1000
SYMBOL_PATTERN = r"^[^\u0000]*$"  # no NUL
MAX_SIGNIFICANT_DIGITS = 38
MAX_FUTURE_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_BODY_BYTES = 16 * 1024
ALL_TIME_END_MS = 2**53  # past any at_ms a bot can send
# The `data` of one snapshot as a bot sends it: the published example, the bot snippet, tests and benchmarks.
EXAMPLE_DATA = {
    "last_price": 9321.5,
    "margin_balance": 10234.12,
    "wallet_balance": 10011.7,
    "realised_pnl": 120.5,
    "positions": 150,
    "symbol": "XBTUSD",
    "average_entry_price": 9300.25,
}

# The bot contract's bounds and grammars, which the published OpenAPI schema states as they are (api/ingest.py):
# whatever a schema-valid body holds is accepted here, and whatever is refused here breaks the schema, except for
# a created_at too far in the future (FutureSnapshotError), which depends on the clock.
NUMBER_MAGNITUDE_MIN = Decimal("1e-130")  # nonzero numbers from 1e-130 up to, not including, 1e38
NUMBER_MAGNITUDE_LIMIT = Decimal("1e38")
EARLIEST_S = 946_684_800  # EARLIEST in epoch seconds
SECONDS_LIMIT = 10**11  # a created_at number at least this large is in milliseconds
EARLIEST_MS = EARLIEST_S * 1000
MS_LIMIT = 253_402_300_800_000  # 10000-01-01T00:00:00Z: created_at milliseconds stay below it


def _range(low: int, high: int) -> str:
    """A regular expression matching the decimal integers low..high, written without leading zeros."""

    def same_length(a: str, b: str) -> list[str]:
        if a == b:
            return [a]
        if a == "0" * len(a) and b == "9" * len(b):
            return [f"[0-9]{{{len(a)}}}"]
        if len(a) == 1:
            return [f"[{a}-{b}]"]
        if a[0] == b[0]:
            return [a[0] + _group(same_length(a[1:], b[1:]))]
        rest = len(a) - 1
        parts = [a[0] + _group(same_length(a[1:], "9" * rest))]
        if int(b[0]) - int(a[0]) > 1:
            parts.append(f"[{int(a[0]) + 1}-{int(b[0]) - 1}][0-9]{{{rest}}}")
        return [*parts, b[0] + _group(same_length("0" * rest, b[1:]))]

    parts = []
    for length in range(len(str(low)), len(str(high)) + 1):
        first, last = max(low, 10 ** (length - 1) if length > 1 else 0), min(high, 10**length - 1)
        parts += same_length(str(first), str(last))
    return _group(parts)


def _group(alternatives: list[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"


def _number_text_pattern() -> str:
    """Numeric text within the bounds above: at most 38 significant digits, magnitude 1e-130 up to 1e38, or 0.

    Scientific notation takes one nonzero digit before the point (as Python, JavaScript and Decimal write it)."""
    exponent = rf"[eE](?:\+?0*{_range(0, 37)}|-0*{_range(0, 130)})"
    scientific = rf"0*[1-9](?:\.(?:[0-9]{{0,37}}0*)?)?{exponent}"
    # d digits before the point (the first nonzero) leave 38 - d significant digits after it; zeros may follow.
    whole = _group([rf"[1-9][0-9]{{{d - 1}}}(?:\.(?:[0-9]{{0,{38 - d}}}0*)?)?" for d in range(1, 39)])
    fraction = r"0*\.0{0,129}[1-9][0-9]{0,37}0*"
    zero = r"(?:0+\.?0*|\.0+)(?:[eE][-+]?[0-9]{1,9})?"
    return rf"^[-+]?(?:{scientific}|0*{whole}|{fraction}|{zero})$"


def _time_text_pattern() -> str:
    """An ISO 8601 date and time, from the year 2000 to 9999 as written: YYYY-MM-DD, T or a space, hh:mm, then
    optionally :ss and up to 9 decimals, then optionally Z or an offset (none: UTC). Only real dates."""
    year = "(?:2[0-9]{3}|[3-9][0-9]{3})"
    leap_year = "(?:[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)"
    day = (
        f"(?:{year}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        f"|02-(?:0[1-9]|1[0-9]|2[0-8]))|{leap_year}-02-29)"
    )
    hour = "(?:[01][0-9]|2[0-3])"
    time = rf"{hour}:[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{{1,9}})?)?"
    offset = f"(?:Z|[+-]{hour}(?::?[0-5][0-9])?)?"
    return f"^{day}[T ]{time}{offset}$"


NUMBER_TEXT_PATTERN = _number_text_pattern()
TIME_TEXT_PATTERN = _time_text_pattern()
# Epoch seconds or milliseconds as text: an integer within their bounds, then any decimals.
EPOCH_TEXT_PATTERN = (
    rf"^0*(?:{_range(EARLIEST_S, SECONDS_LIMIT - 1)}|{_range(EARLIEST_MS, MS_LIMIT - 1)})(?:\.[0-9]*)?$"
)
# `search`, not `fullmatch`: the pattern's own anchors decide, as in the schema (Python's $ also admits one final
# newline, which the number parser ignores and the match leaves out).
_number_text = re.compile(NUMBER_TEXT_PATTERN)
_time_text = re.compile(TIME_TEXT_PATTERN)
_epoch_text = re.compile(EPOCH_TEXT_PATTERN)


@dataclass(frozen=True)
class Snapshot:
    strategy_id: int
    account_id: int
    at_ms: int  # epoch milliseconds, UTC; with strategy_id, the snapshot's key
    last_price: Decimal
    margin_balance: Decimal
    wallet_balance: Decimal
    realised_pnl: Decimal
    positions: Decimal
    average_entry_price: Decimal
    symbol: str

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.at_ms / 1000, tz=UTC)

    @property
    def unrealised_pnl(self) -> Decimal:
        return self.margin_balance - self.wallet_balance


class SnapshotValues(TypedDict):
    """A validated body's numbers and symbol: a Snapshot's fields but whose and when."""

    last_price: Decimal
    margin_balance: Decimal
    wallet_balance: Decimal
    realised_pnl: Decimal
    positions: Decimal
    average_entry_price: Decimal
    symbol: str


@dataclass(frozen=True)
class SnapshotInput:
    """A validated body: everything but who it belongs to."""

    at_ms: int | None  # None: the server's time when stored
    values: SnapshotValues
    cash_flow: Decimal | None = None  # what the bot says moved in or out since its last snapshot; None: not said

    def for_strategy(self, strategy_id: int, account_id: int, at_ms: int) -> Snapshot:
        return Snapshot(strategy_id=strategy_id, account_id=account_id, at_ms=at_ms, **self.values)


class BadBodyError(UnreadableError):
    """Not JSON, or not a JSON object."""


class InvalidSnapshotError(InvalidInputError):
    """Named fields are wrong: every problem is listed."""

    code = "invalid_snapshot"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems), problems=problems)


class FutureSnapshotError(ConflictError):
    """Only created_at is wrong: more than MAX_FUTURE_SKEW ahead of the server's clock. A well-formed snapshot
    that the server's present refuses (the bot's clock is ahead); nothing was stored."""

    code = "created_at_in_future"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems), problems=problems)


STORE_UNAVAILABLE = "The snapshot store is unreachable; nothing was stored. Retry later."
STORE_RETRY_AFTER_SECONDS = 5


class StoreUnavailableError(UnavailableError):
    """The snapshot store cannot be reached now; nothing was stored. The message is the same for every cause:
    `cause` (also the exception's text, for the log and the operator) is never shown to users."""

    code = "store_unavailable"

    def __init__(self, cause: str) -> None:
        super().__init__(STORE_UNAVAILABLE, retry_after_seconds=STORE_RETRY_AFTER_SECONDS)
        self.cause = cause

    def __str__(self) -> str:
        return self.cause


class _NonFinite:
    """Marks NaN/Infinity literals, which Python's json accepts but JSON does not."""


def _parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=lambda _: _NonFinite())
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise BadBodyError(f"The body is not valid JSON: {error}") from None


def _number(name: str, value: object, problems: list[str]) -> Decimal | None:
    if isinstance(value, str):
        text = value
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            problems.append(f"{name}: must be a number, got {text[:40]!r}")
            return None
        number = _number_value(name, value, problems)
        if number is not None and not _number_text.search(text):
            # Within bounds, but not written as the contract says (spaces, underscores, "12e3", ".5e-3", ...).
            problems.append(f"{name}: must be a number written like 12.5, -0.001 or 1.25e-7, got {text[:40]!r}")
            return None
        return number
    return _number_value(name, value, problems)


def _number_value(name: str, value: object, problems: list[str]) -> Decimal | None:
    if isinstance(value, _NonFinite) or (isinstance(value, Decimal) and not value.is_finite()):
        problems.append(f"{name}: must be a finite number, not NaN or Infinity")
        return None
    if not isinstance(value, Decimal):  # parse_int/parse_float make every JSON number a Decimal
        problems.append(f"{name}: must be a number, got {type(value).__name__}")
        return None
    significant = "".join(map(str, value.as_tuple().digits)).strip("0")
    if len(significant) > MAX_SIGNIFICANT_DIGITS:
        problems.append(f"{name}: has more than {MAX_SIGNIFICANT_DIGITS} significant digits")
        return None
    # Below 1e38, a number written out in full has at most 38 digits: what DynamoDB stores and gives back.
    if value and not -130 <= value.adjusted() < MAX_SIGNIFICANT_DIGITS:
        problems.append(f"{name}: is out of range (magnitude between 1e-130 and 1e38)")
        return None
    # Zeros past the significant digits ("12.5" and sixty zeros, "0E-200") would make the stored text long
    # and DynamoDB's 38-digit numbers refuse the value: keep the number, drop the zeros.
    if not value:
        return Decimal(0)
    if len(value.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        return value.normalize(Context(prec=MAX_SIGNIFICANT_DIGITS))
    return value


_NOT_A_TIME = "created_at: must be ISO 8601 or epoch seconds/milliseconds"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(value: Decimal) -> Decimal:
    return value if abs(value) >= SECONDS_LIMIT else value * 1000  # larger values are milliseconds


def _timestamp(value: object, problems: list[str]) -> int | None:
    """Epoch milliseconds of an ISO 8601 text (naive means UTC) or of epoch seconds / milliseconds (a number or
    numeric text), within the contract's bounds; the future is checked by the caller."""
    if isinstance(value, str):
        if match := _time_text.search(value):
            when = datetime.fromisoformat(match.group(0).replace("Z", "+00:00"))
            return epoch_ms(when if when.tzinfo else when.replace(tzinfo=UTC))
        if not (match := _epoch_text.search(value)):
            problems.append(_NOT_A_TIME)
            return None
        value = Decimal(match.group(0))
    if not isinstance(value, Decimal) or not value.is_finite():  # parse_int/parse_float: JSON numbers are Decimal
        problems.append(_NOT_A_TIME)
        return None
    ms = _epoch_ms(value)
    if ms < EARLIEST_MS:
        problems.append("created_at: is before the year 2000 (seconds and milliseconds mixed up?)")
    elif ms >= MS_LIMIT:
        problems.append(_NOT_A_TIME)
    else:
        return math.floor(ms)
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unpaired_surrogate(body: object) -> bool:
    """Whether a string of the parsed body (a key or a value) holds a \\uXXXX escape of half a UTF-16 pair: text no
    UTF-8 can carry, which no store, hash or log could take."""
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def read_body(raw: bytes) -> dict[str, object]:
    """The request body as a JSON object, or BadBodyError (400)."""
    body = _parse_json(raw)
    if not isinstance(body, dict):
        raise BadBodyError('The body must be a JSON object like {"data": {...}}.')
    if _unpaired_surrogate(body):
        raise BadBodyError(
            "The body is not valid JSON text: a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)."
        )
    return body


def body_token(body: Mapping[str, object]) -> str | None:
    """The token a bot put in the body (the original contract); the Authorization header is preferred."""
    data = body.get("data")
    token = data.get("strategy_access_token") if isinstance(data, dict) else None
    return token if isinstance(token, str) and token else None


def validate(body: Mapping[str, object], now: datetime) -> SnapshotInput:
    """Check every field of a bot's body; InvalidSnapshotError (422) names every problem."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidSnapshotError(["data: is missing" if data is None else "data: must be an object"])
    problems: list[str] = []
    numbers: dict[str, Decimal] = {}
    for name in NUMBER_FIELDS:
        if data.get(name) is None:
            problems.append(f"{name}: is missing")
        elif (number := _number(name, data[name], problems)) is not None:
            numbers[name] = number
    symbol, stripped = data.get("symbol"), ""
    if symbol is None:
        problems.append("symbol: is missing")
    elif not isinstance(symbol, str):
        problems.append("symbol: must be a string")
    elif len(symbol) > SYMBOL_MAX_LENGTH:  # as sent, as the schema's maxLength counts; stored stripped
        problems.append(f"symbol: must be at most {SYMBOL_MAX_LENGTH} characters")
    elif "\x00" in symbol:  # PostgreSQL's text cannot hold it
        problems.append("symbol: must not contain NUL characters")
    else:
        stripped = symbol.strip()
    token = data.get("strategy_access_token")
    if token is not None and not isinstance(token, str):
        problems.append("strategy_access_token: must be a string")
    # null, like no created_at at all: the server's time.
    at_ms = _timestamp(data["created_at"], problems) if data.get("created_at") is not None else None
    cash_flow = _number("cash_flow", data["cash_flow"], problems) if data.get("cash_flow") is not None else None
    if problems:
        raise InvalidSnapshotError(problems)
    if at_ms is not None and at_ms > epoch_ms(now + MAX_FUTURE_SKEW):
        raise FutureSnapshotError(["created_at: is more than 5 minutes in the future"])
    values = SnapshotValues(
        last_price=numbers["last_price"],
        margin_balance=numbers["margin_balance"],
        wallet_balance=numbers["wallet_balance"],
        realised_pnl=numbers["realised_pnl"],
        positions=numbers["positions"],
        average_entry_price=numbers["average_entry_price"],
        symbol=stripped,
    )
    return SnapshotInput(at_ms=at_ms, values=values, cash_flow=cash_flow)


@dataclass(frozen=True)
class Page:
    items: list[Snapshot]
    cursor: int | None  # pass back to continue after the last item; None when there is no more


ROLLUP_RESOLUTIONS = {"hour": HOUR_MS, "day": DAY_MS}
RollupKey = tuple[int, str, int]  # (strategy_id, resolution, bucket_ms)


@dataclass(frozen=True)
class Rollup:
    """One UTC bucket of a strategy's snapshots: the newest one, and the wallet/margin extremes over all of them
    (so a coarse chart keeps drawdowns and peaks)."""

    bucket_ms: int  # floor(at_ms / bucket size) * bucket size
    last: Snapshot  # the snapshot with the greatest at_ms in the bucket
    wallet_min: Decimal
    wallet_max: Decimal
    margin_min: Decimal
    margin_max: Decimal


ROLLUP_EXTREMES = ("wallet_min", "wallet_max", "margin_min", "margin_max")  # Rollup's fields besides the last one


class SnapshotStore(Protocol):
    """Where snapshots live: keyed by (strategy id, time in epoch ms). Reads never scan a whole table."""

    name: str

    def put_many(self, snapshots: list[Snapshot]) -> list[Snapshot | Exception]:
        """Store durably; for each snapshot, in order, what was stored or why it was not.

        If the strategy already has a snapshot at that millisecond, the new one moves to the next free
        millisecond, after any of the same strategy posted before it in the list: nothing is ever
        overwritten. StoreUnavailableError in the list: that snapshot is not stored because the store cannot
        be reached now; any other exception: the store refused that one snapshot (the others are unaffected).
        The store keeps each snapshot's roll-ups."""
        ...

    def latest(self, strategy_id: int) -> Snapshot | None: ...

    def earliest(self, strategy_id: int) -> Snapshot | None:
        """The strategy's oldest stored snapshot (where a chart of all its history starts), None without any."""
        ...

    def recent(self, strategy_id: int, before_ms: int, *, limit: int) -> list[Snapshot]:
        """Up to `limit` snapshots with at_ms < before_ms, newest first (tables, the value before a window)."""
        ...

    def between(
        self, strategy_id: int, start_ms: int, end_ms: int, *, limit: int = 1000, cursor: int | None = None
    ) -> Page:
        """Snapshots with start_ms <= at_ms < end_ms, oldest first, at most `limit` per page."""
        ...

    def rollups(self, strategy_id: int, resolution: str, start_ms: int, end_ms: int) -> list[Rollup]:
        """The "hour" or "day" buckets with start_ms <= bucket_ms < end_ms, oldest first; `put_many` keeps them."""
        ...


@runtime_checkable
class RollupRebuilding(Protocol):
    """A store that can recompute a strategy's roll-ups from its snapshots (both stores can: an operator's repair,
    `python -m projectalgo rebuild-rollups`, not part of SnapshotStore)."""

    def rebuild_rollups(self, strategy_id: int) -> int:
        """Recompute the strategy's roll-ups and merge them in; the number of buckets."""
        ...


def epoch_ms(when: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (a float timestamp times 1000 puts about one in a hundred
    whole milliseconds 1 ms early)."""
    return (when - _EPOCH) // timedelta(milliseconds=1)


def bucket_size(resolution: str) -> int:
    """Milliseconds per bucket; ValueError for an unknown resolution."""
    try:
        return ROLLUP_RESOLUTIONS[resolution]
    except KeyError:
        raise ValueError(
            f"unknown roll-up resolution {resolution!r}; use one of {sorted(ROLLUP_RESOLUTIONS)}"
        ) from None


def bucket_start(at_ms: int, resolution: str) -> int:
    """The start of the UTC bucket holding at_ms."""
    size = bucket_size(resolution)
    return at_ms // size * size


def merge_rollups(old: Rollup, new: Rollup) -> Rollup:
    """Both buckets' snapshots in one: the later `last`, the wider extremes.

    Commutative and idempotent (merging a roll-up into itself changes nothing), so a store can merge the same
    contribution twice, or in any order, and still end with the right bucket.
    """
    if (old.bucket_ms, old.last.strategy_id) != (new.bucket_ms, new.last.strategy_id):
        raise ValueError("only roll-ups of the same strategy and bucket merge")
    return Rollup(
        bucket_ms=old.bucket_ms,
        last=new.last if new.last.at_ms > old.last.at_ms else old.last,
        wallet_min=min(old.wallet_min, new.wallet_min),
        wallet_max=max(old.wallet_max, new.wallet_max),
        margin_min=min(old.margin_min, new.margin_min),
        margin_max=max(old.margin_max, new.margin_max),
    )


def fold_rollup(existing: Rollup | None, snapshot: Snapshot, resolution: str) -> Rollup:
    """The bucket after `snapshot` joins it (an older snapshot arriving late moves only the extremes)."""
    alone = Rollup(
        bucket_ms=bucket_start(snapshot.at_ms, resolution),
        last=snapshot,
        wallet_min=snapshot.wallet_balance,
        wallet_max=snapshot.wallet_balance,
        margin_min=snapshot.margin_balance,
        margin_max=snapshot.margin_balance,
    )
    return alone if existing is None else merge_rollups(existing, alone)


def fold_rollups(snapshots: Iterable[Snapshot]) -> dict[RollupKey, Rollup]:
    """Every bucket, at every resolution, that these snapshots touch, folded in memory."""
    folded: dict[RollupKey, Rollup] = {}
    for snapshot in snapshots:
        for resolution in ROLLUP_RESOLUTIONS:
            key = (snapshot.strategy_id, resolution, bucket_start(snapshot.at_ms, resolution))
            folded[key] = fold_rollup(folded.get(key), snapshot, resolution)
    return folded


def all_snapshots(store: SnapshotStore, strategy_id: int) -> Iterator[Snapshot]:
    """Every snapshot of a strategy, oldest first, page by page (for rebuilding its roll-ups)."""
    cursor = None
    while True:
        page = store.between(strategy_id, 0, ALL_TIME_END_MS, limit=1000, cursor=cursor)
        yield from page.items
        if page.cursor is None:
            return
        cursor = page.cursor
