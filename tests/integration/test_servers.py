"""Each real test server answers: DynamoDB Local, localstripe, Redis and the app itself."""

import boto3
import redis
import requests
import stripe


def test_dynamodb_local_creates_and_queries_a_table(dynamodb_local):
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_table(
        TableName="smoke",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="smoke", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "x"}})
    result = client.query(
        TableName="smoke",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "a"}},
    )
    assert result["Items"] == [{"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "x"}}]


def test_localstripe_creates_a_customer(localstripe):
    client = stripe.StripeClient("sk_test_smoke", base_addresses={"api": localstripe.url})
    customer = client.v1.customers.create(params={"email": "smoke@example.com"})
    assert customer.id.startswith("cus_")
    assert client.v1.customers.retrieve(customer.id).email == "smoke@example.com"


def test_redis_stores_and_is_emptied_for_each_test(redis_url):
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0  # emptied before this test
        client.set("smoke", "x")
        assert client.get("smoke") == b"x"


def test_the_app_answers_its_health_route(app_server):
    response = requests.get(f"{app_server.url}/api/v1/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "snapshot_store": "ok"}}


def test_unknown_api_routes_answer_json_errors(app_server):
    response = requests.get(f"{app_server.url}/api/v1/nothing-here", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
