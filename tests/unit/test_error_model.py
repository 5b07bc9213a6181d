"""One error model (issue 14): the domain's refusals become HTTP answers in api/errors.py and page messages in
state.failure_message; anything else is logged and shown as a generic error, never its text."""

import json
import logging

import pytest

from projectalgo import snapshots, strategies
from projectalgo.api.errors import refusal_response
from projectalgo.errors import (
    SOMETHING_WRONG,
    ConflictError,
    DomainError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
)
from projectalgo.pages.accounts import AccountsState
from tests.factories import grant_membership, make_member
from tests.support.states import browser_view, call, signed_in_state, visit

FORM = {"name": "Main", "exchange": "BitMEX", "notes": ""}


@pytest.fixture
def member_tab(app_services):
    member = make_member(app_services, name="Mia", email="mia@example.com")
    grant_membership(app_services, member, days=30)
    state = signed_in_state(AccountsState, member)
    visit(state, "/accounts")
    return state


def test_a_domain_refusal_in_a_member_action_shows_its_own_message(member_tab, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise strategies.StrategyError("You already have an account named 'Main'.")

    monkeypatch.setattr(strategies, "create_account", refuse)
    call(member_tab, AccountsState.add_account, FORM)
    assert member_tab.error == "You already have an account named 'Main'." and member_tab.notice == ""


def test_an_unexpected_error_in_a_member_action_is_logged_and_shown_as_a_generic_error(member_tab, monkeypatch, caplog):
    def bug(*_args, **_kwargs):
        int("a number of a broken page")  # a ValueError, but a bug: not a message for the member

    monkeypatch.setattr(strategies, "create_account", bug)
    with caplog.at_level(logging.ERROR, logger="projectalgo.ui"):
        call(member_tab, AccountsState.add_account, FORM)
    assert member_tab.error == SOMETHING_WRONG and member_tab.notice == ""
    assert "broken page" not in browser_view(member_tab)
    (record,) = [r for r in caplog.records if r.name == "projectalgo.ui"]
    assert record.getMessage() == "ui.action_failed error=ValueError"
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidInputError("The name is too long."), 422, "invalid"),
        (snapshots.BadBodyError("The body is not valid JSON."), 400, "bad_request"),
        (UnauthenticatedError("Unknown token.", code="invalid_token"), 401, "invalid_token"),
        (NotAllowedError("Archived.", code="strategy_archived"), 403, "strategy_archived"),
        (NotFoundError("No such strategy."), 404, "not_found"),
        (ConflictError("Too far ahead."), 409, "conflict"),
        (DomainError("Refused."), 400, "refused"),
    ],
)
def test_each_kind_of_refusal_has_one_http_answer(error, status, code):
    answer = refusal_response(error)
    assert answer.status_code == status and "retry-after" not in answer.headers
    assert json.loads(answer.body) == {"error": code, "detail": error.message}


def test_refusals_that_say_when_to_try_again_answer_retry_after():
    limited = refusal_response(RateLimitedError("Slow down.", retry_after_seconds=7))
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    unavailable = refusal_response(snapshots.StoreUnavailableError("DynamoDB is unavailable: EndpointConnectionError"))
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "5")
    # the cause is for the log; the bot reads the same text whatever it was
    assert json.loads(unavailable.body) == {"error": "store_unavailable", "detail": snapshots.STORE_UNAVAILABLE}


def test_a_refusal_naming_every_problem_answers_the_list():
    answer = refusal_response(snapshots.InvalidSnapshotError(["symbol: is missing", "positions: must be a number"]))
    assert answer.status_code == 422
    assert json.loads(answer.body) == {
        "error": "invalid_snapshot",
        "detail": ["symbol: is missing", "positions: must be a number"],
    }


def test_an_error_no_handler_caught_is_shown_without_its_text(app_services, caplog):
    from projectalgo.projectalgo import app
    from projectalgo.state import unhandled_event_error

    assert app.backend_exception_handler is unhandled_event_error
    shown = str(unhandled_event_error(ValueError("secret internals")))
    assert "secret internals" not in shown and "Something went wrong" in shown
    assert "ui.action_failed" in caplog.text
