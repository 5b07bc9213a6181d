"""Snapshots on DynamoDB: tables.py (the connection, the tables, one call's errors), rollups.py (the roll-up
table), store.py (DynamoSnapshotStore: snapshots, with writes whose answer was lost settled later)."""

from projectalgo.integrations.dynamodb.store import DynamoSnapshotStore

__all__ = ["DynamoSnapshotStore"]
