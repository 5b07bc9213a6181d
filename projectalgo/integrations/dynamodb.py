"""DynamoSnapshotStore: snapshots in a DynamoDB table keyed by (strategy_id, at_ms).

Reads are Query calls on the key with LastEvaluatedKey paging, never Scan. The token is not part of
the key, so rotating a bot's token keeps its history. Calls block: callers run them in a thread.

Roll-ups live in a second table, `<table>-rollups`, keyed by (series = "<strategy_id>#<resolution>",
bucket_ms). They are written after the snapshot is stored, with conditional UpdateItem calls that only
ever move `last` forward and widen the extremes, so concurrent writers in any order end at the same
bucket. A failed roll-up write is logged (`rollup.write_failed`) and the snapshot still counts as stored;
`python -m projectalgo rebuild-rollups` recomputes roll-ups from the snapshots.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from projectalgo.settings import Settings
from projectalgo.snapshots import (
    ALL_TIME_END_MS,
    NUMBER_FIELDS,
    Page,
    Rollup,
    RollupKey,
    Snapshot,
    StoreUnavailableError,
    all_snapshots,
    bucket_size,
    fold_rollups,
)

log = logging.getLogger("projectalgo.rollups")  # roll-up events, and a snapshot refused for no known reason

MAX_SAME_MS_RETRIES = 1000
WRITERS = 16  # concurrent writes of one batch: each is a round trip, and DynamoDB takes them in parallel
# Errors that mean "cannot be served now" rather than "this request is wrong".
UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
    # The credentials are refused: nothing can be stored until an operator fixes them.
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "AccessDeniedException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
}

# Failures after the request was sent: it may or may not have been applied.
AMBIGUOUS_ERRORS = (ReadTimeoutError, ConnectionClosedError)

# Each extreme of a roll-up and the comparison "stored <op> new" under which a new value widens it, as a
# DynamoDB condition and in Python.
EXTREMES = {
    "wallet_min": (">", operator.gt),
    "wallet_max": ("<", operator.lt),
    "margin_min": (">", operator.gt),
    "margin_max": ("<", operator.lt),
}


def _unavailable(error: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"DynamoDB is unavailable: {type(error).__name__}: {error}")


def _item_to_snapshot(item: dict) -> Snapshot:
    return Snapshot(
        strategy_id=int(item["strategy_id"]),
        account_id=int(item["account_id"]),
        at_ms=int(item["at_ms"]),
        symbol=item["symbol"],
        **{name: Decimal(item[name]) for name in NUMBER_FIELDS},
    )


def _series(strategy_id: int, resolution: str) -> str:
    return f"{strategy_id}#{resolution}"


def _item_to_rollup(strategy_id: int, item: dict) -> Rollup:
    return Rollup(
        bucket_ms=int(item["bucket_ms"]),
        last=_item_to_snapshot({**item, "strategy_id": strategy_id}),
        **{name: Decimal(item[name]) for name in EXTREMES},
    )


def _last_fields(snapshot: Snapshot) -> dict[str, object]:
    """The attributes a roll-up takes from its newest snapshot."""
    return {
        "at_ms": snapshot.at_ms,
        "account_id": snapshot.account_id,
        "symbol": snapshot.symbol,
        **{name: getattr(snapshot, name) for name in NUMBER_FIELDS},
    }


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class DynamoSnapshotStore:
    name = "dynamodb"

    def __init__(self, settings: Settings) -> None:
        # Short timeouts and no hidden retries: a bot gets a quick 503 and retries itself.
        # (`max_attempts` would count retries after the first try; `total_max_attempts` counts all tries.)
        config = Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=WRITERS,
        )
        credentials = (
            {"aws_access_key_id": settings.aws_access_key, "aws_secret_access_key": settings.aws_secret_key}
            if settings.aws_access_key
            else {}
        )
        self._resource = boto3.resource(
            "dynamodb",
            region_name=settings.dynamodb_region,
            endpoint_url=settings.dynamodb_endpoint_url,
            config=config,
            **credentials,
        )
        self._table_name = settings.dynamodb_table
        self._table = self._resource.Table(settings.dynamodb_table)
        self.rollup_table_name = f"{settings.dynamodb_table}-rollups"
        self._rollup_table = self._resource.Table(self.rollup_table_name)
        self._in_doubt: list[tuple[int, int, str]] = []  # (strategy_id, at_ms, snapshot_id) answered 503
        self._in_doubt_lock = threading.Lock()
        self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="dynamodb")

    def create_table(self) -> bool:
        """Create the snapshot and roll-up tables unless they exist; True when either was created."""
        return any(self.create_tables().values())

    def create_tables(self) -> dict[str, bool]:
        """Create each missing table (on-demand billing): {table name: created now}."""
        return {
            self._table_name: self._create(self._table_name, ("strategy_id", "N"), ("at_ms", "N")),
            self.rollup_table_name: self._create(self.rollup_table_name, ("series", "S"), ("bucket_ms", "N")),
        }

    def _create(self, name: str, partition: tuple[str, str], sort: tuple[str, str]) -> bool:
        client = self._resource.meta.client
        try:
            client.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": partition[0], "KeyType": "HASH"},
                    {"AttributeName": sort[0], "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": attribute, "AttributeType": kind} for attribute, kind in (partition, sort)
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceInUseException":
                return False
            raise
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        return True

    @staticmethod
    def _call(operation: Callable[..., dict], **kwargs: object) -> dict:
        """One DynamoDB call; "cannot be served now" errors become StoreUnavailableError."""
        try:
            return operation(**kwargs)
        except BotoCoreError as error:
            raise _unavailable(error) from error
        except ClientError as error:
            if error.response["Error"]["Code"] in UNAVAILABLE_CODES:
                raise _unavailable(error) from error
            raise

    def put_many(self, snapshots: list[Snapshot]) -> list[Snapshot | Exception]:
        """Each snapshot by its own conditional put (those cannot be batched): one strategy's in order, so a
        snapshot moved to a free millisecond stays after the ones posted before it; strategies side by side,
        WRITERS at a time. Then the batch's roll-ups, one merge per bucket however many snapshots fall in it."""
        by_strategy: dict[int, list[int]] = {}
        for index, snapshot in enumerate(snapshots):
            by_strategy.setdefault(snapshot.strategy_id, []).append(index)
        in_order = [[snapshots[i] for i in indexes] for indexes in by_strategy.values()]
        results: list[Snapshot | Exception] = [*snapshots]
        for indexes, stored in zip(by_strategy.values(), self._writers.map(self._put_in_order, in_order), strict=True):
            for index, result in zip(indexes, stored, strict=True):
                results[index] = result
        folded = fold_rollups([result for result in results if isinstance(result, Snapshot)])
        list(self._writers.map(self._merge_rollup_logged, folded.items()))
        return results

    def _put_in_order(self, snapshots: list[Snapshot]) -> list[Snapshot | Exception]:
        return [self._put_alone(snapshot) for snapshot in snapshots]

    def _put_alone(self, snapshot: Snapshot) -> Snapshot | Exception:
        try:
            return self._put_snapshot(snapshot)
        except StoreUnavailableError as error:
            return error
        except Exception as error:  # this snapshot's own answer; the others go on
            log.exception("snapshot.write_failed strategy_id=%s at_ms=%s", snapshot.strategy_id, snapshot.at_ms)
            return error

    def _merge_rollup_logged(self, bucket: tuple[RollupKey, Rollup]) -> None:
        try:
            self._merge_rollup(*bucket)
        except Exception:
            # The snapshots are stored: their bots must not retry them. rebuild_rollups repairs the bucket.
            strategy_id, resolution, bucket_ms = bucket[0]
            log.exception("rollup.write_failed strategy_id=%s %s=%s", strategy_id, resolution, bucket_ms)

    def _put_snapshot(self, snapshot: Snapshot) -> Snapshot:
        self._settle_in_doubt()
        # A unique id per snapshot tells our own write apart from another snapshot at the same key.
        snapshot_id = uuid.uuid4().hex
        for _ in range(MAX_SAME_MS_RETRIES):
            item = {
                "strategy_id": snapshot.strategy_id,
                "at_ms": snapshot.at_ms,
                "account_id": snapshot.account_id,
                "symbol": snapshot.symbol,
                "snapshot_id": snapshot_id,
                **{name: getattr(snapshot, name) for name in NUMBER_FIELDS},
            }
            try:
                self._call(self._table.put_item, Item=item, ConditionExpression="attribute_not_exists(at_ms)")
                return snapshot
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            except StoreUnavailableError as error:
                if isinstance(error.__cause__, AMBIGUOUS_ERRORS):
                    return self._resolve_ambiguous(snapshot, snapshot_id, error)
                raise
            # Another snapshot holds this millisecond (botocore does not retry, so it is not ours).
            snapshot = dataclasses.replace(snapshot, at_ms=snapshot.at_ms + 1)
        raise StoreUnavailableError("no free millisecond for this snapshot")

    def _resolve_ambiguous(self, snapshot: Snapshot, snapshot_id: str, error: StoreUnavailableError) -> Snapshot:
        """The write may have been applied before its answer was lost: look before saying "not stored".

        When DynamoDB cannot even be asked, the caller is told "not stored" (503), so the write, if it did
        land, is remembered and deleted as soon as DynamoDB answers again.
        """
        try:
            if self._holder(snapshot) == snapshot_id:
                return snapshot
        except StoreUnavailableError:
            with self._in_doubt_lock:
                self._in_doubt.append((snapshot.strategy_id, snapshot.at_ms, snapshot_id))
        raise error

    def _settle_in_doubt(self) -> None:
        """Delete the writes answered "not stored" that may have landed (only if they are ours)."""
        while self._in_doubt:
            with self._in_doubt_lock:
                if not self._in_doubt:
                    return
                strategy_id, at_ms, snapshot_id = self._in_doubt[0]
            try:
                self._call(
                    self._table.delete_item,
                    Key={"strategy_id": strategy_id, "at_ms": at_ms},
                    ConditionExpression="snapshot_id = :mine",
                    ExpressionAttributeValues={":mine": snapshot_id},
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            with self._in_doubt_lock:
                if (strategy_id, at_ms, snapshot_id) in self._in_doubt:  # another thread may have settled it
                    self._in_doubt.remove((strategy_id, at_ms, snapshot_id))

    def _holder(self, snapshot: Snapshot) -> str | None:
        key = {"strategy_id": snapshot.strategy_id, "at_ms": snapshot.at_ms}
        item = self._call(self._table.get_item, Key=key, ConsistentRead=True, ProjectionExpression="snapshot_id")
        return item["Item"]["snapshot_id"] if "Item" in item else None

    def _merge_rollup(self, key: RollupKey, rollup: Rollup) -> None:
        """Merge a bucket folded in memory into the stored one: one UpdateItem, plus one per extreme it widens.

        The first update replaces the `last` fields only when they are newer (an older snapshot arriving
        late fails its condition and changes nothing), starts the extremes of a new bucket, and returns the
        bucket either way. Each extreme the rollup widens then gets its own update, conditional on still
        widening it: one condition per field is what lets min and max move independently, and a bucket
        holding steady (the common case) costs a single write.
        """
        strategy_id, resolution, bucket_ms = key
        fields = _last_fields(rollup.last) | {name: getattr(rollup, name) for name in EXTREMES}
        alias = {name: f"f{n}" for n, name in enumerate(fields)}  # every name aliased: no reserved-word clash
        set_last = [f"#{alias[name]} = :{alias[name]}" for name in fields if name not in EXTREMES]
        start_extremes = [f"#{alias[name]} = if_not_exists(#{alias[name]}, :{alias[name]})" for name in EXTREMES]
        at_ms = alias["at_ms"]
        item_key = {"series": _series(strategy_id, resolution), "bucket_ms": bucket_ms}
        try:
            stored = self._call(
                self._rollup_table.update_item,
                Key=item_key,
                UpdateExpression="SET " + ", ".join(set_last + start_extremes),
                ConditionExpression=f"attribute_not_exists(#{at_ms}) OR #{at_ms} < :{at_ms}",
                ExpressionAttributeNames={f"#{short}": name for name, short in alias.items()},
                ExpressionAttributeValues={f":{short}": fields[name] for name, short in alias.items()},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            # The stored `last` is newer. This low-level answer is not converted to Python types.
            deserialize = TypeDeserializer().deserialize
            stored = {name: deserialize(value) for name, value in error.response["Item"].items()}
        for name, (condition, widens) in EXTREMES.items():
            if widens(stored[name], getattr(rollup, name)):
                self._widen(item_key, name, condition, getattr(rollup, name))

    def _widen(self, item_key: dict, name: str, condition: str, value: Decimal) -> None:
        try:
            self._call(
                self._rollup_table.update_item,
                Key=item_key,
                UpdateExpression="SET #extreme = :value",
                ConditionExpression=f"#extreme {condition} :value",
                ExpressionAttributeNames={"#extreme": name},
                ExpressionAttributeValues={":value": value},
            )
        except ClientError as error:
            if not _is_conditional_failure(error):  # else another writer has already gone further
                raise

    def rollups(self, strategy_id: int, resolution: str, start_ms: int, end_ms: int) -> list[Rollup]:
        bucket_size(resolution)  # an unknown resolution is a ValueError, not an empty chart
        if end_ms <= start_ms:
            return []
        kwargs: dict[str, object] = {
            "KeyConditionExpression": Key("series").eq(_series(strategy_id, resolution))
            & Key("bucket_ms").between(start_ms, end_ms - 1)
        }
        found: list[Rollup] = []
        while True:  # a Query answers at most 1 MB: a few thousand buckets
            answer = self._call(self._rollup_table.query, ConsistentRead=True, **kwargs)
            found += [_item_to_rollup(strategy_id, item) for item in answer["Items"]]
            if "LastEvaluatedKey" not in answer:
                return found
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def rebuild_rollups(self, strategy_id: int) -> int:
        """Recompute a strategy's roll-ups from its snapshots and merge them in; the number of buckets.

        Repairs buckets a failed roll-up write left behind, and fills them for snapshots stored before
        roll-ups existed. Safe while bots post: a merge never undoes another writer's.
        """
        folded = fold_rollups(all_snapshots(self, strategy_id))
        for key, rollup in folded.items():
            self._merge_rollup(key, rollup)
        return len(folded)

    def _query(self, **kwargs: object) -> dict:
        return self._call(self._table.query, ConsistentRead=True, **kwargs)

    def latest(self, strategy_id: int) -> Snapshot | None:
        return next(iter(self.recent(strategy_id, ALL_TIME_END_MS, limit=1)), None)

    def earliest(self, strategy_id: int) -> Snapshot | None:
        # One Query, oldest first, one item: the key's own order, never a Scan.
        items = self._query(KeyConditionExpression=Key("strategy_id").eq(strategy_id), ScanIndexForward=True, Limit=1)
        return next((_item_to_snapshot(item) for item in items["Items"]), None)

    def recent(self, strategy_id: int, before_ms: int, *, limit: int) -> list[Snapshot]:
        items = self._query(
            KeyConditionExpression=Key("strategy_id").eq(strategy_id) & Key("at_ms").lt(before_ms),
            ScanIndexForward=False,
            Limit=limit,
        )["Items"]
        return [_item_to_snapshot(item) for item in items]

    def between(
        self, strategy_id: int, start_ms: int, end_ms: int, *, limit: int = 1000, cursor: int | None = None
    ) -> Page:
        if end_ms <= start_ms:
            return Page([], None)
        kwargs: dict[str, object] = {
            "KeyConditionExpression": Key("strategy_id").eq(strategy_id) & Key("at_ms").between(start_ms, end_ms - 1),
            "Limit": limit,
        }
        if cursor is not None:
            kwargs["ExclusiveStartKey"] = {"strategy_id": strategy_id, "at_ms": cursor}
        answer = self._query(**kwargs)
        last = answer.get("LastEvaluatedKey")
        return Page([_item_to_snapshot(item) for item in answer["Items"]], int(last["at_ms"]) if last else None)
