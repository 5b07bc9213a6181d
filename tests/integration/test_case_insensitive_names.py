"""A member's account (and strategy) names are unique whatever their case, atomically, on SQLite and PostgreSQL:
the unique index on (owner_id, lower(name)) of migration 0009, and what that migration does to rows that
already collide."""

import threading

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, insert, select
from sqlalchemy.exc import IntegrityError

from projectalgo import strategies
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.migrations import ROOT
from projectalgo.models import BrokerageAccount, Strategy
from tests.factories import actor_of, make_member


@pytest.fixture(params=["engine", "pg_engine"], ids=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(request.param)


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = engine.url.render_as_string(hide_password=False)
    config.attributes["configure_logging"] = False
    (command.downgrade if down else command.upgrade)(config, revision)


def names(engine: Engine, model: type[BrokerageAccount] | type[Strategy]) -> list[tuple[int, str]]:
    with session_scope(engine) as session:
        return [(row.owner_id, row.name) for row in session.execute(select(model).order_by(model.id)).scalars()]


def test_the_migration_renames_the_later_of_colliding_names_and_then_refuses_them(database):
    alice, bob = make_member(database, name="Alice"), make_member(database, name="Bob")
    migrate(database, "0008", down=True)
    long = "x" * 60
    accounts = [
        (alice.id, "BitMEX main"),
        (alice.id, "bitmex MAIN"),  # collides with the one before
        (alice.id, "BITMEX MAIN (2)"),  # its own name, which the renamed one must avoid in any case
        (bob.id, "bitmex main"),  # another owner's
        (alice.id, long),
        (alice.id, long.upper()),
    ]
    with session_scope(database) as session:
        account_ids = [
            session.execute(
                insert(BrokerageAccount).values(owner_id=owner, name=name, exchange="", notes="", created_at=utcnow())
            ).inserted_primary_key[0]
            for owner, name in accounts
        ]
        for name in ("Trend", "TREND", "trend"):
            session.execute(
                insert(Strategy).values(
                    owner_id=alice.id,
                    account_id=account_ids[0],
                    name=name,
                    description="",
                    symbol="",
                    created_at=utcnow(),
                )
            )

    migrate(database, "head")

    assert names(database, BrokerageAccount) == [
        (alice.id, "BitMEX main"),
        (alice.id, "bitmex MAIN (3)"),
        (alice.id, "BITMEX MAIN (2)"),
        (bob.id, "bitmex main"),
        (alice.id, long),
        (alice.id, "X" * 56 + " (2)"),
    ]
    assert names(database, Strategy) == [(alice.id, "Trend"), (alice.id, "TREND (2)"), (alice.id, "trend (3)")]
    with pytest.raises(IntegrityError), session_scope(database) as session:  # the database itself refuses
        session.execute(
            insert(BrokerageAccount).values(
                owner_id=bob.id, name="BITMEX Main", exchange="", notes="", created_at=utcnow()
            )
        )

    migrate(database, "0008", down=True)  # the downgrade drops the indexes, names stay
    migrate(database, "head")
    assert names(database, Strategy)[1:] == [(alice.id, "TREND (2)"), (alice.id, "trend (3)")]


def test_two_requests_racing_for_one_name_in_two_cases_give_one_account_and_a_message(database):
    """The second request checks the name before the first commits, so only the index can refuse it."""
    alice = actor_of(make_member(database, name="Alice"))
    first_flushed, second_inserting = threading.Event(), threading.Event()
    outcome: list[str] = []

    def seen(_connection, _cursor, statement, *_args) -> None:
        if statement.startswith("INSERT INTO brokerage_accounts") and threading.current_thread() is racer:
            second_inserting.set()  # its own check is done, and found nothing committed

    def second() -> None:
        first_flushed.wait(10)
        try:
            with session_scope(database) as session:
                strategies.create_account(session, alice, name="bybit MAIN")
            outcome.append("created")
        except strategies.StrategyError as refusal:
            outcome.append(str(refusal))

    racer = threading.Thread(target=second)
    event.listen(database, "before_cursor_execute", seen)
    try:
        racer.start()
        with session_scope(database) as session:
            strategies.create_account(session, alice, name="Bybit main")
            first_flushed.set()
            assert second_inserting.wait(10)
        racer.join(30)
    finally:
        event.remove(database, "before_cursor_execute", seen)
    assert outcome == ["You already have an account named 'bybit MAIN' (or the same name in another case)."]
    assert [name for _, name in names(database, BrokerageAccount)] == ["Bybit main"]
