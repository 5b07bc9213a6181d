"""The published contract is the behaviour: Schemathesis, with every check, on every operation of /api/openapi.json.

The same run as `st run /api/openapi.json --checks all` (all phases: examples, coverage, fuzzing, stateful), in
this process against the API's ASGI app, on a fresh SQLite database with the app's real services underneath. Bot
posts carry a real strategy token, so valid snapshots are stored (201); webhook requests that carry a
Stripe-Signature header are signed for their exact body with the test webhook secret, as Stripe would, so valid
events are received (200).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.engine import Status, events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from projectalgo.api import build_api
from tests.conftest import TEST_STRIPE_WEBHOOK_SECRET
from tests.factories import make_member, make_strategy
from tests.support.webhooks import sign

WEBHOOK = "/api/v1/stripe/webhook"
EXAMPLES_PER_OPERATION = 100  # schemathesis's default


class _StripeSigner(requests.auth.AuthBase):
    """Signs the body about to be sent (bytes, as serialized) the way Stripe signs its webhook requests."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        request.headers["Stripe-Signature"] = sign(body)
        return request


def _sign_webhook_requests(_context: object, case: schemathesis.Case, kwargs: dict) -> None:
    """before_call: a webhook request with a schema-valid Stripe-Signature header gets a real signature instead.
    A missing header stays missing, so refusing it is still tested."""
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if case.path == WEBHOOK and "Stripe-Signature" in (case.headers or {}) and header and header.mode.is_positive:
        kwargs["auth"] = _StripeSigner()


@pytest.fixture
def signed_webhooks() -> Iterator[None]:
    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(_sign_webhook_requests, "before_call")
    yield
    GLOBAL_HOOK_DISPATCHER.unregister(_sign_webhook_requests)


@pytest.fixture
def api_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The webhook on (its secret set before app_services builds the services), payments and DynamoDB off, and a
    rate limit the run does not reach, so that valid posts are stored rather than limited."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "DYNAMODB_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", TEST_STRIPE_WEBHOOK_SECRET)
    monkeypatch.setenv("INGEST_RATE_PER_SECOND", "100000")
    monkeypatch.setenv("INGEST_BURST", "1000000")


def _failures(event: events.ScenarioFinished) -> Iterator[str]:
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.failure_info is not None:
                curl = event.recorder.cases[case_id].value.as_curl_command()
                failure = check.failure_info.failure
                yield f"{event.recorder.label}: {check.name}: {failure.title}\n{failure.message}\n{curl}"


def test_every_operation_answers_as_its_published_contract_says(api_settings, app_services, signed_webhooks):
    owner = make_member(app_services)
    _, token = make_strategy(app_services, owner, name="Contract")
    config = SchemathesisConfig()
    config.projects.override.checks.update(included_check_names=["all"])
    config.projects.override.update(headers={"Authorization": f"Bearer {token}"})
    config.projects.override.generation.update(max_examples=EXAMPLES_PER_OPERATION, database="none")
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", build_api(), config=config)
    operations = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item}

    failures: list[str] = []
    errors: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    tested: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.status is not Status.SKIP:
                tested.add(event.recorder.label)
            failures.extend(_failures(event))
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    path = interaction.request.uri.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
                    statuses[(f"/{path}", interaction.response.status_code)] += 1
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(repr(getattr(event, "value", None) or getattr(event, "exception", None)))

    print(f"schemathesis: {sum(statuses.values())} requests on {len(operations)} operations; answers: {statuses}")
    assert not errors, errors
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert operations <= tested, f"not tested: {operations - tested}"
    assert not any(status >= 500 for _, status in statuses)
    # The runs reached the accepting paths too, not only refusals.
    assert statuses[("/api/v1/strategy/", 201)] > 0
    assert statuses[(WEBHOOK, 200)] > 0
    assert statuses[("/api/v1/health", 200)] > 0
