"""Roll-ups in their own table, `<table>-rollups`, keyed by (series = "<strategy_id>#<resolution>", bucket_ms).

They are written after the snapshots are stored, with conditional UpdateItem calls that only ever move `last`
forward and widen the extremes, so concurrent writers in any order end at the same bucket.
"""

from __future__ import annotations

import operator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from projectalgo.integrations.dynamodb.tables import call, is_conditional_failure, item_to_snapshot
from projectalgo.snapshots import NUMBER_FIELDS, ROLLUP_EXTREMES, Rollup, RollupKey, Snapshot, bucket_size

# Each extreme of a roll-up and the comparison "stored <op> new" under which a new value widens it, as a
# DynamoDB condition and in Python.
EXTREMES = {name: (">", operator.gt) if name.endswith("_min") else ("<", operator.lt) for name in ROLLUP_EXTREMES}


def _series(strategy_id: int, resolution: str) -> str:
    return f"{strategy_id}#{resolution}"


def _item_to_rollup(strategy_id: int, item: dict[str, Any]) -> Rollup:
    return Rollup(
        bucket_ms=int(item["bucket_ms"]),
        last=item_to_snapshot({**item, "strategy_id": strategy_id}),
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


class RollupTable:
    def __init__(self, resource: Any, name: str) -> None:
        self.name = name
        self._table = resource.Table(name)

    def merge(self, key: RollupKey, rollup: Rollup) -> None:
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
            stored = call(
                self._table.update_item,
                Key=item_key,
                UpdateExpression="SET " + ", ".join(set_last + start_extremes),
                ConditionExpression=f"attribute_not_exists(#{at_ms}) OR #{at_ms} < :{at_ms}",
                ExpressionAttributeNames={f"#{short}": name for name, short in alias.items()},
                ExpressionAttributeValues={f":{short}": fields[name] for name, short in alias.items()},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            # The stored `last` is newer. This low-level answer is not converted to Python types.
            deserialize = TypeDeserializer().deserialize
            stored = {name: deserialize(value) for name, value in error.response["Item"].items()}
        for name, (condition, widens) in EXTREMES.items():
            if widens(stored[name], getattr(rollup, name)):
                self._widen(item_key, name, condition, getattr(rollup, name))

    def _widen(self, item_key: dict[str, object], name: str, condition: str, value: Decimal) -> None:
        try:
            call(
                self._table.update_item,
                Key=item_key,
                UpdateExpression="SET #extreme = :value",
                ConditionExpression=f"#extreme {condition} :value",
                ExpressionAttributeNames={"#extreme": name},
                ExpressionAttributeValues={":value": value},
            )
        except ClientError as error:
            if not is_conditional_failure(error):  # else another writer has already gone further
                raise

    def read(self, strategy_id: int, resolution: str, start_ms: int, end_ms: int) -> list[Rollup]:
        bucket_size(resolution)  # an unknown resolution is a ValueError, not an empty chart
        if end_ms <= start_ms:
            return []
        kwargs: dict[str, object] = {
            "KeyConditionExpression": Key("series").eq(_series(strategy_id, resolution))
            & Key("bucket_ms").between(start_ms, end_ms - 1)
        }
        found: list[Rollup] = []
        while True:  # a Query answers at most 1 MB: a few thousand buckets
            answer = call(self._table.query, ConsistentRead=True, **kwargs)
            found += [_item_to_rollup(strategy_id, item) for item in answer["Items"]]
            if "LastEvaluatedKey" not in answer:
                return found
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
