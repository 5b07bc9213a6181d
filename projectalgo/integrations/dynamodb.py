"""DynamoSnapshotStore: snapshots in a DynamoDB table keyed by (strategy_id, at_ms).

Reads are Query calls on the key with LastEvaluatedKey paging, never Scan. The token is not part of
the key, so rotating a bot's token keeps its history. Calls block: callers run them in a thread.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Key
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from projectalgo.settings import Settings
from projectalgo.snapshots import NUMBER_FIELDS, Page, Snapshot, StoreUnavailableError

MAX_SAME_MS_RETRIES = 1000
# Errors that mean "cannot be served now" rather than "this request is wrong".
UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
}

# Failures after the request was sent: it may or may not have been applied.
AMBIGUOUS_ERRORS = (ReadTimeoutError, ConnectionClosedError)


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


class DynamoSnapshotStore:
    name = "dynamodb"

    def __init__(self, settings: Settings) -> None:
        # Short timeouts and no hidden retries: a bot gets a quick 503 and retries itself.
        # (`max_attempts` would count retries after the first try; `total_max_attempts` counts all tries.)
        config = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1, "mode": "standard"})
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
        self._in_doubt: list[tuple[int, int, str]] = []  # (strategy_id, at_ms, snapshot_id) answered 503
        self._in_doubt_lock = threading.Lock()

    def create_table(self) -> bool:
        """Create the table (on-demand billing) unless it exists; True when it was created."""
        client = self._resource.meta.client
        try:
            client.create_table(
                TableName=self._table_name,
                KeySchema=[
                    {"AttributeName": "strategy_id", "KeyType": "HASH"},
                    {"AttributeName": "at_ms", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "strategy_id", "AttributeType": "N"},
                    {"AttributeName": "at_ms", "AttributeType": "N"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceInUseException":
                return False
            raise
        client.get_waiter("table_exists").wait(TableName=self._table_name, WaiterConfig={"Delay": 1})
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

    def put(self, snapshot: Snapshot) -> Snapshot:
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

    def _query(self, **kwargs: object) -> dict:
        return self._call(self._table.query, ConsistentRead=True, **kwargs)

    def latest(self, strategy_id: int) -> Snapshot | None:
        return next(iter(self.recent(strategy_id, 2**62, limit=1)), None)

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
