"""Snapshots that trading bots post: validation of the bot contract, the SnapshotStore protocol, and reads.

Plain Python; no Reflex. Numbers stay `Decimal` from the request body to the store, so what a bot sent is
what is stored (DynamoDB numbers hold up to 38 significant digits).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Protocol

NUMBER_FIELDS = (
    "last_price",
    "margin_balance",
    "wallet_balance",
    "realised_pnl",
    "positions",
    "average_entry_price",
)
SYMBOL_MAX_LENGTH = 32
MAX_SIGNIFICANT_DIGITS = 38
MAX_FUTURE_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_BODY_BYTES = 16 * 1024
ALL_TIME_END_MS = 2**53  # past any at_ms a bot can send


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


@dataclass(frozen=True)
class SnapshotInput:
    """A validated body: everything but who it belongs to."""

    at_ms: int | None  # None: the server's time when stored
    values: Mapping[str, Decimal | str]

    def for_strategy(self, strategy_id: int, account_id: int, at_ms: int) -> Snapshot:
        return Snapshot(strategy_id=strategy_id, account_id=account_id, at_ms=at_ms, **self.values)


class BadBodyError(ValueError):
    """Not JSON, or not a JSON object: HTTP 400."""


class InvalidSnapshotError(ValueError):
    """Named fields are wrong: HTTP 422 with every problem listed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StoreUnavailableError(RuntimeError):
    """The snapshot store cannot be reached now; nothing was stored. HTTP 503, retry later."""


class _NonFinite:
    """Marks NaN/Infinity literals, which Python's json accepts but JSON does not."""


def _parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=lambda _: _NonFinite())
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise BadBodyError(f"The body is not valid JSON: {error}") from None


def _number(name: str, value: object, problems: list[str]) -> Decimal | None:
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            problems.append(f"{name}: must be a number, got {value[:40]!r}")
            return None
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


def _as_datetime(value: object) -> datetime | None:
    """ISO 8601 (naive means UTC) or epoch seconds / milliseconds (as a number or a numeric string)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            try:
                value = Decimal(text)
            except InvalidOperation:
                return None
    if not isinstance(value, Decimal) or not value.is_finite():
        return None
    seconds = value / 1000 if abs(value) >= Decimal(10) ** 11 else value  # larger values are milliseconds
    try:
        return datetime.fromtimestamp(float(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _timestamp(value: object, now: datetime, problems: list[str]) -> int | None:
    when = _as_datetime(value)
    if when is None:
        problems.append("created_at: must be ISO 8601 or epoch seconds/milliseconds")
    elif when > now + MAX_FUTURE_SKEW:
        problems.append("created_at: is more than 5 minutes in the future")
    elif when < EARLIEST:
        problems.append("created_at: is before the year 2000 (seconds and milliseconds mixed up?)")
    else:
        return math.floor(when.timestamp() * 1000)
    return None


def read_body(raw: bytes) -> dict:
    """The request body as a JSON object, or BadBodyError (400)."""
    body = _parse_json(raw)
    if not isinstance(body, dict):
        raise BadBodyError('The body must be a JSON object like {"data": {...}}.')
    return body


def body_token(body: dict) -> str | None:
    """The token a bot put in the body (the original contract); the Authorization header is preferred."""
    data = body.get("data")
    token = data.get("strategy_access_token") if isinstance(data, dict) else None
    return token if isinstance(token, str) and token else None


def validate(body: dict, now: datetime) -> SnapshotInput:
    """Check every field of a bot's body; InvalidSnapshotError (422) names every problem."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidSnapshotError(["data: is missing" if data is None else "data: must be an object"])
    problems: list[str] = []
    values: dict[str, Decimal | str] = {}
    for name in NUMBER_FIELDS:
        if data.get(name) is None:
            problems.append(f"{name}: is missing")
        elif (number := _number(name, data[name], problems)) is not None:
            values[name] = number
    symbol = data.get("symbol")
    if symbol is None:
        problems.append("symbol: is missing")
    elif not isinstance(symbol, str):
        problems.append("symbol: must be a string")
    elif len(symbol.strip()) > SYMBOL_MAX_LENGTH:
        problems.append(f"symbol: must be at most {SYMBOL_MAX_LENGTH} characters")
    else:
        values["symbol"] = symbol.strip()
    token = data.get("strategy_access_token")
    if token is not None and not isinstance(token, str):
        problems.append("strategy_access_token: must be a string")
    at_ms = _timestamp(data["created_at"], now, problems) if data.get("created_at") is not None else None
    if problems:
        raise InvalidSnapshotError(problems)
    return SnapshotInput(at_ms=at_ms, values=values)


@dataclass(frozen=True)
class Page:
    items: list[Snapshot]
    cursor: int | None  # pass back to continue after the last item; None when there is no more


HOUR_MS = 3_600_000
DAY_MS = 86_400_000
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


def epoch_ms(when: datetime) -> int:
    return math.floor(when.timestamp() * 1000)


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
