"""The accounts and strategies pages' events, called directly (bypassing the UI) by the owner and others."""

import pytest
from sqlalchemy import select

from projectalgo.db import session_scope
from projectalgo.models import StrategyToken
from projectalgo.pages.accounts import AccountsState
from projectalgo.pages.strategies import StrategiesState
from tests.factories import grant_membership, make_member, strategy_tables, strategy_world
from tests.support.states import browser_view, call, signed_in_state


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    world["unpaid"] = make_member(app_services, inviter=world["admin"], name="Una")
    for member in (world["alice"], world["bob"]):
        grant_membership(app_services, member, days=30)
    return world


ACTIONS = {
    "rename account": (
        AccountsState,
        AccountsState.rename_account,
        lambda w: [{"account_id": str(w["account_id"]), "name": "Mine"}],
    ),
    "archive account": (AccountsState, AccountsState.set_archived, lambda w: [w["account_id"], True]),
    "delete account": (AccountsState, AccountsState.delete_account, lambda w: [w["account_id"]]),
    "create strategy on account": (
        StrategiesState,
        StrategiesState.create_strategy,
        lambda w: [{"account_id": str(w["account_id"]), "name": "Sneaky"}],
    ),
    "edit strategy": (
        StrategiesState,
        StrategiesState.update_strategy,
        lambda w: [{"strategy_id": str(w["strategy_id"]), "account_id": str(w["account_id"]), "name": "Mine"}],
    ),
    "archive strategy": (StrategiesState, StrategiesState.set_archived, lambda w: [w["strategy_id"], True]),
    "new token": (StrategiesState, StrategiesState.new_token_for, lambda w: [w["strategy_id"]]),
    "revoke token": (StrategiesState, StrategiesState.revoke_token, lambda w: [w["token_id"]]),
}


def _run(world, who, action):
    state_class, handler, args = ACTIONS[action]
    state = signed_in_state(state_class, world[who] if who else None)
    return state, call(state, handler, *args(world))


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("who", ["bob", "admin"])
def test_another_member_or_an_admin_is_refused_and_nothing_changes(world, action, who):
    before = strategy_tables(world["engine"])
    state, redirect = _run(world, who, action)
    assert redirect is None
    assert state.error.startswith("No such") and state.notice == ""
    assert strategy_tables(world["engine"]) == before
    assert "Alice" not in browser_view(state) and world["token"] not in browser_view(state)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(("who", "sent_to"), [(None, "/login"), ("unpaid", "/membership")])
def test_visitors_and_unpaid_members_are_sent_away_and_nothing_changes(world, action, who, sent_to):
    before = strategy_tables(world["engine"])
    _, redirect = _run(world, who, action)
    assert sent_to in str(redirect)
    assert strategy_tables(world["engine"]) == before


def test_the_owner_can_act_and_sees_a_new_token_only_once(world):
    state = signed_in_state(StrategiesState, world["alice"])
    call(state, StrategiesState.open_strategies)
    assert [s.name for s in state.strategies] == ["Trend"]
    assert world["token"] not in browser_view(state)

    call(state, StrategiesState.new_token_for, world["strategy_id"])
    new_token = state.new_token
    assert new_token.startswith("pa_live_") and state.error == ""
    assert new_token in state.new_token_snippet and "Authorization: Bearer" in state.new_token_snippet
    assert [t.prefix for t in state.strategies[0].tokens] == [world["token"][:14], new_token[:14]]

    call(state, StrategiesState.open_strategies)  # a reload
    view = browser_view(state)
    assert new_token not in view and new_token[:14] in view
    with session_scope(world["engine"]) as session:
        assert not any(h in view for h in session.scalars(select(StrategyToken.token_hash)))

    call(state, StrategiesState.revoke_token, world["token_id"])
    assert state.error == "" and [t.prefix for t in state.strategies[0].tokens] == [new_token[:14]]


def test_tampered_ids_are_refused_with_a_message(world):
    state = signed_in_state(AccountsState, world["alice"])
    assert call(state, AccountsState.delete_account, "1 OR 1=1") is None
    assert state.error == "No such brokerage account."


def test_a_refused_dialog_stays_the_one_showing_why_and_only_successes_empty_the_forms(world):
    accounts = signed_in_state(AccountsState, world["alice"])
    call(accounts, AccountsState.open_accounts)
    call(accounts, AccountsState.add_account, {"name": "bitmex MAIN"})
    assert "already have an account named 'BitMEX main'" in accounts.error and accounts.added == 0
    call(accounts, AccountsState.add_account, {"name": "Spare"})
    assert accounts.error == "" and accounts.added == 1
    spare = next(a.id for a in accounts.accounts if a.name == "Spare")
    call(accounts, AccountsState.rename_account, {"account_id": str(spare), "name": "BITMEX main"})
    assert (accounts.refused_id, accounts.renamed) == (spare, 0)
    call(accounts, AccountsState.set_archived, world["account_id"], True)  # the next outcome replaces it
    assert accounts.refused_id == 0
    call(accounts, AccountsState.rename_account, ["not", "a", "form"])
    assert accounts.error == "The form could not be read. Reload the page and try again."
    assert accounts.refused_id == -1  # no dialog's
    call(accounts, AccountsState.rename_account, {"account_id": str(spare), "name": "Spare two"})
    assert (accounts.error, accounts.refused_id, accounts.renamed) == ("", 0, 1)

    page = signed_in_state(StrategiesState, world["alice"])
    call(page, StrategiesState.open_strategies)
    call(page, StrategiesState.create_strategy, {"account_id": str(spare), "name": "TREND"})
    assert "already have a strategy named 'Trend'" in page.error and page.created == 0 and page.new_token == ""
    call(page, StrategiesState.create_strategy, {"account_id": str(spare), "name": "Breakout"})
    assert page.error == "" and page.created == 1 and page.new_token.startswith("pa_live_")
    edit = {"strategy_id": str(world["strategy_id"]), "account_id": str(spare), "name": "breakout"}
    call(page, StrategiesState.update_strategy, edit)
    assert (page.refused_id, page.saved) == (world["strategy_id"], 0)
    call(page, StrategiesState.update_strategy, edit | {"name": "Trend two"})
    assert (page.error, page.refused_id, page.saved) == ("", 0, 1)
