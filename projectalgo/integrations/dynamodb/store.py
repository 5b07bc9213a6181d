"""DynamoSnapshotStore: snapshots in a DynamoDB table keyed by (strategy_id, at_ms), roll-ups beside them.

Reads are Query calls on the key with LastEvaluatedKey paging, never Scan. The token is not part of
the key, so rotating a bot's token keeps its history. Calls block: callers run them in a thread.

Roll-ups (rollups.py) are written after the snapshots are stored. A failed roll-up write is logged
(`rollup.write_failed`) and the snapshot still counts as stored; `python -m projectalgo rebuild-rollups`
recomputes roll-ups from the snapshots.

A write answered "not stored" that may have landed is recorded in an InDoubtLog (in_doubt.py; the app's is in
the SQL database) and deleted, if it did land, before the next batch is written and once at start-up.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from projectalgo.integrations.dynamodb.in_doubt import InDoubt, InDoubtLog, MemoryInDoubtLog
from projectalgo.integrations.dynamodb.rollups import RollupTable
from projectalgo.integrations.dynamodb.tables import (
    AMBIGUOUS_ERRORS,
    WRITERS,
    call,
    connect,
    create_table,
    is_conditional_failure,
    item_to_snapshot,
)
from projectalgo.settings import Settings
from projectalgo.snapshots import (
    ALL_TIME_END_MS,
    MAX_SAME_MS_RETRIES,
    NUMBER_FIELDS,
    Page,
    Rollup,
    RollupKey,
    Snapshot,
    StoreUnavailableError,
    all_snapshots,
    fold_rollups,
)

log = logging.getLogger("projectalgo.rollups")  # roll-up events, and a snapshot refused for no known reason


class DynamoSnapshotStore:
    name = "dynamodb"

    def __init__(self, settings: Settings, *, in_doubt: InDoubtLog | None = None) -> None:
        """`in_doubt`: where writes in doubt are kept; this process's memory unless given (the app gives the SQL
        database's, runtime.py: kept across restarts and shared by the workers)."""
        if not settings.dynamodb_table:
            raise ValueError("DynamoSnapshotStore needs DYNAMODB_TABLE")
        self._settings = settings
        self._table_name = settings.dynamodb_table
        self._connect()
        self.rollup_table_name = self._rollups.name
        self._in_doubt = in_doubt or MemoryInDoubtLog()
        # Production's server imports the app, then forks its workers: a pooled HTTPS connection or a thread made
        # before the fork would be shared by all of them. Each child connects afresh.
        alive = weakref.ref(self)

        def reconnect_in_child() -> None:
            if (store := alive()) is not None:
                store._connect()

        os.register_at_fork(after_in_child=reconnect_in_child)

    def _connect(self) -> None:
        resource = connect(self._settings)
        self._resource = resource
        self._table = resource.Table(self._table_name)
        self._rollups = RollupTable(resource, f"{self._table_name}-rollups")
        self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="dynamodb")

    def create_table(self) -> bool:
        """Create the snapshot and roll-up tables unless they exist; True when either was created."""
        return any(self.create_tables().values())

    def create_tables(self) -> dict[str, bool]:
        """Create each missing table (on-demand billing): {table name: created now}."""
        return {
            self._table_name: create_table(self._resource, self._table_name, ("strategy_id", "N"), ("at_ms", "N")),
            self._rollups.name: create_table(self._resource, self._rollups.name, ("series", "S"), ("bucket_ms", "N")),
        }

    def put_many(self, snapshots: list[Snapshot]) -> list[Snapshot | Exception]:
        """Each snapshot by its own conditional put (those cannot be batched): one strategy's in order, so a
        snapshot moved to a free millisecond stays after the ones posted before it; strategies side by side,
        WRITERS at a time. Then the batch's roll-ups, one merge per bucket however many snapshots fall in it.

        First the writes in doubt are settled: a bot's retry of one then takes its millisecond again, instead of
        being stored beside it (a millisecond further) when the first try did land."""
        try:
            self.settle_in_doubt()
        except StoreUnavailableError as error:
            return [error for _ in snapshots]
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
            self._rollups.merge(*bucket)
        except Exception:
            # The snapshots are stored: their bots must not retry them. rebuild_rollups repairs the bucket.
            strategy_id, resolution, bucket_ms = bucket[0]
            log.exception("rollup.write_failed strategy_id=%s %s=%s", strategy_id, resolution, bucket_ms)

    def _put_snapshot(self, snapshot: Snapshot) -> Snapshot:
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
                call(self._table.put_item, Item=item, ConditionExpression="attribute_not_exists(at_ms)")
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
        land, is recorded and deleted as soon as DynamoDB answers again.
        """
        try:
            if self._holder(snapshot) == snapshot_id:
                return snapshot
        except StoreUnavailableError:
            self._in_doubt.record(InDoubt(snapshot.strategy_id, snapshot.at_ms, snapshot_id))
        raise error

    def settle_in_doubt(self) -> int:
        """Delete the writes answered "not stored" that did land (each only if the item is still that write),
        then forget them; how many were settled. Safe beside other threads and workers settling the same ones:
        a conditional delete is idempotent. Raises StoreUnavailableError when DynamoDB or the log cannot be
        reached (the rest wait for the next try); a write DynamoDB refuses to delete for any other reason is
        logged and kept, so that it never blocks the writes after it."""
        settled = 0
        for write in self._in_doubt.pending():
            try:
                call(
                    self._table.delete_item,
                    Key={"strategy_id": write.strategy_id, "at_ms": write.at_ms},
                    ConditionExpression="snapshot_id = :mine",
                    ExpressionAttributeValues={":mine": write.snapshot_id},
                )
            except ClientError as error:
                if not is_conditional_failure(error):  # conditional: it never landed, or is settled already
                    log.exception("in_doubt.settle_failed strategy_id=%s at_ms=%s", write.strategy_id, write.at_ms)
                    continue
            self._in_doubt.forget(write)
            settled += 1
        return settled

    def settle_in_background(self) -> threading.Thread:
        """Settle the writes a previous run (or another worker) left in doubt, on a thread of its own: at
        start-up, so that they go even if no bot posts again. Failing, it logs and leaves them to the next
        batch."""

        def settle() -> None:
            try:
                if settled := self.settle_in_doubt():
                    log.info("in_doubt.settled writes=%d", settled)
            except Exception:
                log.warning("in_doubt.settle_deferred (to the next batch)", exc_info=True)

        thread = threading.Thread(target=settle, name="dynamodb-in-doubt", daemon=True)
        thread.start()
        return thread

    def _holder(self, snapshot: Snapshot) -> str | None:
        key = {"strategy_id": snapshot.strategy_id, "at_ms": snapshot.at_ms}
        item = call(self._table.get_item, Key=key, ConsistentRead=True, ProjectionExpression="snapshot_id")
        return item["Item"]["snapshot_id"] if "Item" in item else None

    def rollups(self, strategy_id: int, resolution: str, start_ms: int, end_ms: int) -> list[Rollup]:
        return self._rollups.read(strategy_id, resolution, start_ms, end_ms)

    def rebuild_rollups(self, strategy_id: int) -> int:
        """Recompute a strategy's roll-ups from its snapshots and merge them in; the number of buckets.

        Repairs buckets a failed roll-up write left behind, and fills them for snapshots stored before
        roll-ups existed. Safe while bots post: a merge never undoes another writer's.
        """
        folded = fold_rollups(all_snapshots(self, strategy_id))
        for key, rollup in folded.items():
            self._rollups.merge(key, rollup)
        return len(folded)

    def _query(self, **kwargs: object) -> dict[str, Any]:
        return call(self._table.query, ConsistentRead=True, **kwargs)

    def latest(self, strategy_id: int) -> Snapshot | None:
        return next(iter(self.recent(strategy_id, ALL_TIME_END_MS, limit=1)), None)

    def earliest(self, strategy_id: int) -> Snapshot | None:
        # One Query, oldest first, one item: the key's own order, never a Scan.
        items = self._query(KeyConditionExpression=Key("strategy_id").eq(strategy_id), ScanIndexForward=True, Limit=1)
        return next((item_to_snapshot(item) for item in items["Items"]), None)

    def recent(self, strategy_id: int, before_ms: int, *, limit: int) -> list[Snapshot]:
        items = self._query(
            KeyConditionExpression=Key("strategy_id").eq(strategy_id) & Key("at_ms").lt(before_ms),
            ScanIndexForward=False,
            Limit=limit,
        )["Items"]
        return [item_to_snapshot(item) for item in items]

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
        return Page([item_to_snapshot(item) for item in answer["Items"]], int(last["at_ms"]) if last else None)
