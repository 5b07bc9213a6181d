"""The DynamoDB connection as ProjectAlgo uses it: short timeouts, no hidden retries, the two tables, and one
call's errors sorted into "cannot be served now" (StoreUnavailableError) and the rest."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from projectalgo.settings import Settings
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot, StoreUnavailableError

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


def connect(settings: Settings) -> Any:
    """The boto3 DynamoDB resource. Short timeouts and no hidden retries: a bot gets a quick 503 and retries
    itself. (`max_attempts` would count retries after the first try; `total_max_attempts` counts all tries.)"""
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
    return boto3.resource(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
        config=config,
        **credentials,
    )


def create_table(resource: Any, name: str, partition: tuple[str, str], sort: tuple[str, str]) -> bool:
    """Create the table (on-demand billing) unless it exists; True when created now."""
    client = resource.meta.client
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


def call(operation: Callable[..., dict[str, Any]], **kwargs: object) -> dict[str, Any]:
    """One DynamoDB call; "cannot be served now" errors become StoreUnavailableError."""
    try:
        return operation(**kwargs)
    except BotoCoreError as error:
        raise unavailable(error) from error
    except ClientError as error:
        if error.response["Error"]["Code"] in UNAVAILABLE_CODES:
            raise unavailable(error) from error
        raise


def unavailable(error: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"DynamoDB is unavailable: {type(error).__name__}: {error}")


def is_conditional_failure(error: ClientError) -> bool:
    code: str = error.response["Error"]["Code"]
    return code == "ConditionalCheckFailedException"


def item_to_snapshot(item: dict[str, Any]) -> Snapshot:
    return Snapshot(
        strategy_id=int(item["strategy_id"]),
        account_id=int(item["account_id"]),
        at_ms=int(item["at_ms"]),
        symbol=item["symbol"],
        **{name: Decimal(item[name]) for name in NUMBER_FIELDS},
    )
