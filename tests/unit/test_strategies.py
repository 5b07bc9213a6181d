import pytest
from sqlalchemy import select

from projectalgo import strategies, tokens
from projectalgo.db import session_scope
from projectalgo.errors import NotFoundError
from projectalgo.models import StrategyToken
from tests.factories import actor_of, resolve, strategy_tables, strategy_world


@pytest.fixture
def two_members(engine):
    return strategy_world(engine)


CHANGES = {
    "rename_account": lambda s, a, ids: strategies.rename_account(s, a, ids["account_id"], name="Mine now"),
    "archive_account": lambda s, a, ids: strategies.set_account_archived(s, a, ids["account_id"], archived=True),
    "delete_account": lambda s, a, ids: strategies.delete_account(s, a, ids["account_id"]),
    "create_strategy_on_account": lambda s, a, ids: strategies.create_strategy(
        s, a, account_id=ids["account_id"], name="Sneaky"
    ),
    "update_strategy": lambda s, a, ids: strategies.update_strategy(
        s, a, ids["strategy_id"], account_id=ids["account_id"], name="Mine", description="", symbol=""
    ),
    "archive_strategy": lambda s, a, ids: strategies.set_strategy_archived(s, a, ids["strategy_id"], archived=True),
    "issue_token": lambda s, a, ids: strategies.issue_token(s, a, ids["strategy_id"]),
    "revoke_token": lambda s, a, ids: strategies.revoke_token(s, a, ids["token_id"]),
}


@pytest.mark.parametrize("action", CHANGES)
@pytest.mark.parametrize("intruder", ["bob", "admin"])
def test_nobody_but_the_owner_changes_an_account_or_strategy(engine, two_members, action, intruder):
    before = strategy_tables(engine)
    with pytest.raises(NotFoundError), session_scope(engine) as session:
        CHANGES[action](session, actor_of(two_members[intruder]), two_members)
    assert strategy_tables(engine) == before


def test_others_cannot_read_a_strategy_but_admins_can(engine, two_members):
    with session_scope(engine) as session:
        with pytest.raises(NotFoundError, match="No such strategy"):
            strategies.get_strategy(session, actor_of(two_members["bob"]), two_members["strategy_id"])
        assert strategies.list_strategies(session, actor_of(two_members["bob"])) == []
        assert strategies.list_accounts(session, actor_of(two_members["bob"])) == []
        seen = strategies.get_strategy(session, actor_of(two_members["admin"]), two_members["strategy_id"])
        assert seen.owner_id == two_members["alice"].id


def test_names_are_unique_per_owner_not_across_owners(engine, two_members):
    bob = actor_of(two_members["bob"])
    with session_scope(engine) as session:
        account = strategies.create_account(session, bob, name="BitMEX main")  # Alice has one named so too
        strategies.create_strategy(session, bob, account_id=account.id, name="Trend")
    with pytest.raises(strategies.StrategyError, match="already have an account"), session_scope(engine) as session:
        strategies.create_account(session, bob, name="  BitMEX   main ")
    with pytest.raises(strategies.StrategyError, match="already have a strategy"), session_scope(engine) as session:
        strategies.create_strategy(session, bob, account_id=account.id, name="Trend")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": " "}, "a name"),
        ({"name": "x" * 61}, "at most 60"),
        ({"symbol": "S" * 33}, "at most 32"),
        ({"description": "d" * 1001}, "at most 1000"),
    ],
)
def test_bad_strategy_fields_are_refused(engine, two_members, fields, message):
    alice = actor_of(two_members["alice"])
    before = strategy_tables(engine)
    with pytest.raises(strategies.StrategyError, match=message), session_scope(engine) as session:
        strategies.create_strategy(session, alice, account_id=two_members["account_id"], **({"name": "N"} | fields))
    assert strategy_tables(engine) == before


def test_an_account_with_strategies_cannot_be_deleted_but_can_be_archived(engine, two_members):
    alice = actor_of(two_members["alice"])
    with pytest.raises(strategies.StrategyError, match="still has 1 strategy"), session_scope(engine) as session:
        strategies.delete_account(session, alice, two_members["account_id"])
    with session_scope(engine) as session:
        strategies.set_account_archived(session, alice, two_members["account_id"], archived=True)
        assert strategies.list_accounts(session, alice)[0].archived
    with pytest.raises(strategies.StrategyError, match="archived"), session_scope(engine) as session:
        strategies.create_strategy(session, alice, account_id=two_members["account_id"], name="New")
    with session_scope(engine) as session:
        empty = strategies.create_account(session, alice, name="Spare")
    with session_scope(engine) as session:
        strategies.delete_account(session, alice, empty.id)
        assert [a.name for a in strategies.list_accounts(session, alice)] == ["BitMEX main"]


def test_token_lifecycle(engine, two_members):
    alice, token = actor_of(two_members["alice"]), two_members["token"]
    assert token.startswith("pa_live_") and len(token) >= len("pa_live_") + 43  # 256 bits, url-safe
    with session_scope(engine) as session:
        first = resolve(session, token)
        assert (first.strategy_id, first.owner_id) == (two_members["strategy_id"], two_members["alice"].id)
        stored = session.scalars(select(StrategyToken.token_hash)).all()
        assert token not in stored and stored == [tokens.token_hash(token)]
        second = strategies.issue_token(session, alice, two_members["strategy_id"])
    with session_scope(engine) as session:
        assert resolve(session, second).strategy_id == two_members["strategy_id"]
        assert resolve(session, token) is not None  # both active: rotation without downtime
        view = strategies.get_strategy(session, alice, two_members["strategy_id"])
        assert [t.prefix for t in view.tokens] == [token[:14], second[:14]]
        strategies.revoke_token(session, alice, two_members["token_id"])
    with session_scope(engine) as session:
        assert resolve(session, token) is None
        assert resolve(session, second) is not None
        assert resolve(session, "pa_live_" + "x" * 43) is None
        assert resolve(session, "") is None
        with pytest.raises(NotFoundError):
            strategies.revoke_token(session, alice, two_members["token_id"])  # already revoked


def test_archived_strategies_refuse_their_tokens_until_restored(engine, two_members):
    alice, token = actor_of(two_members["alice"]), two_members["token"]
    with session_scope(engine) as session:
        strategies.set_strategy_archived(session, alice, two_members["strategy_id"], archived=True)
    with session_scope(engine) as session:
        assert resolve(session, token).strategy_archived  # the ingestion refuses it, saying why
        strategies.set_strategy_archived(session, alice, two_members["strategy_id"], archived=False)
    with session_scope(engine) as session:
        assert not resolve(session, token).strategy_archived


def test_names_differing_only_in_case_are_the_same_name_per_owner(engine, two_members):
    alice, bob = actor_of(two_members["alice"]), actor_of(two_members["bob"])
    with session_scope(engine) as session:
        strategies.create_account(session, alice, name="Ärger Fund")
        spare = strategies.create_account(session, alice, name="Spare")
        other = strategies.create_strategy(session, alice, account_id=two_members["account_id"], name="Other")
    refusals = {
        "create account": lambda s: strategies.create_account(s, alice, name="bitmex MAIN"),
        "create account, non-ASCII": lambda s: strategies.create_account(s, alice, name="ärger FUND"),
        "rename account": lambda s: strategies.rename_account(s, alice, spare.id, name="BITMEX main"),
        "create strategy": lambda s: strategies.create_strategy(
            s, alice, account_id=two_members["account_id"], name="tREND"
        ),
        "edit strategy": lambda s: strategies.update_strategy(
            s, alice, other.id, account_id=two_members["account_id"], name="trend", description="", symbol=""
        ),
    }
    before = strategy_tables(engine)
    for action, refused in refusals.items():
        with pytest.raises(strategies.StrategyError) as refusal, session_scope(engine) as session:
            refused(session)
        assert "already have" in str(refusal.value) and "differ only in case" in str(refusal.value), action
    assert strategy_tables(engine) == before
    with pytest.raises(strategies.StrategyError) as refusal, session_scope(engine) as session:
        strategies.create_account(session, alice, name="BitMEX main")
    assert str(refusal.value) == "You already have an account named 'BitMEX main'."  # the same name: no aside

    with session_scope(engine) as session:  # a change of case alone is a rename; other owners are not affected
        assert strategies.rename_account(session, alice, two_members["account_id"], name="BITMEX Main").name == (
            "BITMEX Main"
        )
        strategies.create_account(session, bob, name="bitmex main")
        strategies.update_strategy(
            session,
            alice,
            two_members["strategy_id"],
            account_id=two_members["account_id"],
            name="TREND",
            description="",
            symbol="",
        )
        assert {s.name for s in strategies.list_strategies(session, alice)} == {"TREND", "Other"}


def test_deleting_an_account_with_strategies_says_what_can_be_done(engine, two_members):
    alice = actor_of(two_members["alice"])
    with session_scope(engine) as session:
        strategies.create_strategy(session, alice, account_id=two_members["account_id"], name="Second")
        strategies.set_strategy_archived(session, alice, two_members["strategy_id"], archived=True)
    with pytest.raises(strategies.StrategyError) as refusal, session_scope(engine) as session:
        strategies.delete_account(session, alice, two_members["account_id"])
    message = str(refusal.value)
    assert message.startswith("'BitMEX main' still has 2 strategies (archived ones count too).")
    assert "can be archived but not deleted" in message and "archive the account instead" in message
    assert "move them to another account" in message
    assert "delete them" not in message
