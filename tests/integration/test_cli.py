"""Operator commands, run as an operator runs them: `python -m projectalgo ...` in a subprocess."""

import subprocess
import sys
from decimal import Decimal

from sqlalchemy import select

from projectalgo import admin, flows, members
from projectalgo.analytics import FlowPoint
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.members import Actor
from projectalgo.models import AuditEntry, Membership, Strategy, User
from projectalgo.snapshots import ALL_TIME_END_MS
from tests.conftest import TEST_SECRET_KEY_BASE
from tests.factories import PASSWORD, make_member, make_strategy, resolve, store_one
from tests.integration.test_snapshot_stores import HOUR, MIDNIGHT, all_rollups, snap


def _cli(engine, *args, stdin="", extra_env=None):
    env = {
        "DATABASE_URL": str(engine.url),
        "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE,
        "BCRYPT_ROUNDS": "4",
        "PUBLIC_URL": "http://127.0.0.1:9999",
        "PATH": "/usr/bin:/bin",
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "projectalgo", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_create_admin_reads_the_password_from_stdin_and_prints_the_invite_link(engine):
    result = _cli(engine, "create-admin", "--email", "Boss@Example.com", "--name", "Boss", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    with session_scope(engine) as session:
        user = session.scalars(select(User)).one()
        code = members.own_invitation(session, user.id).code
        assert (
            members.authenticate(session, email="boss@example.com", password=PASSWORD, client="cli", bcrypt_rounds=4).id
            == user.id
        )
    assert user.roles == ["member", "admin"]
    assert f"invite link: http://127.0.0.1:9999/invite/{code}" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_create_admin_refuses_a_short_password_and_a_taken_email(engine):
    short = _cli(engine, "create-admin", "--email", "a@example.com", "--name", "A", stdin="short\n")
    assert short.returncode == 1 and "at least 10" in short.stderr and "Traceback" not in short.stderr
    assert _cli(engine, "create-admin", "--email", "a@example.com", "--name", "A", stdin=PASSWORD).returncode == 0
    taken = _cli(engine, "create-admin", "--email", "A@example.com", "--name", "A", stdin=PASSWORD)
    assert taken.returncode == 1 and "already exists" in taken.stderr


def test_set_role_adds_and_removes_roles(engine):
    _cli(engine, "create-admin", "--email", "a@example.com", "--name", "A", stdin=PASSWORD)
    result = _cli(engine, "set-role", "--email", "a@example.com", "--add", "moderator", "--remove", "admin")
    assert result.returncode == 0 and result.stdout.strip() == "a@example.com: member, moderator"
    unknown = _cli(engine, "set-role", "--email", "ghost@example.com", "--add", "admin")
    assert unknown.returncode == 1 and "No user has the email" in unknown.stderr


def test_a_bad_setting_stops_with_one_line_naming_it(engine):
    env_result = subprocess.run(
        [sys.executable, "-m", "projectalgo", "check-config"],
        capture_output=True,
        text=True,
        env={"BCRYPT_ROUNDS": "lots", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert env_result.returncode == 2
    assert env_result.stderr.strip() == "configuration error: BCRYPT_ROUNDS must be a whole number, got 'lots'"


def test_grant_membership_records_an_admin_grant(engine):
    _cli(engine, "create-admin", "--email", "a@example.com", "--name", "A", stdin=PASSWORD)
    result = _cli(engine, "grant-membership", "--email", "a@example.com", "--days", "30")
    assert result.returncode == 0 and "member until" in result.stdout
    with session_scope(engine) as session:
        membership = session.scalars(select(Membership)).one()
    assert (membership.source, (membership.ends_at - membership.starts_at).days) == ("admin", 30)
    refused = _cli(engine, "grant-membership", "--email", "a@example.com", "--days", "0")
    assert refused.returncode == 1 and "between 1 and 3650" in refused.stderr


def test_create_strategy_prints_the_token_alone_and_reuses_the_account(engine):
    _cli(engine, "create-admin", "--email", "a@example.com", "--name", "A", stdin=PASSWORD)
    first = _cli(engine, "create-strategy", "--email", "a@example.com", "--account", "Main", "--name", "Trend")
    second = _cli(engine, "create-strategy", "--email", "a@example.com", "--account", "MAIN", "--name", "Carry")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    token = first.stdout.strip()
    assert first.stdout == token + "\n" and token.startswith("pa_live_")
    with session_scope(engine) as session:
        owner = resolve(session, token)
        assert owner is not None
        assert resolve(session, second.stdout.strip()).account_id == owner.account_id
    taken = _cli(engine, "create-strategy", "--email", "a@example.com", "--account", "Main", "--name", "Trend")
    assert taken.returncode == 1 and "already have a strategy" in taken.stderr


def test_rebuild_rollups_fills_them_from_stored_snapshots(engine):
    member = make_member(engine)
    ids = [make_strategy(engine, member, name=name)[0] for name in ("A", "B")]
    store = SqlSnapshotStore(engine)
    for strategy_id in ids:
        for hour, wallet in enumerate(("100", "100", "600")):  # $500 moved in, with no realised PnL
            store_one(store, snap(strategy_id, MIDNIGHT + hour * HOUR, wallet))
    expected = {strategy_id: all_rollups(store, strategy_id, "hour") for strategy_id in ids}
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM snapshot_rollups")
    one = _cli(engine, "rebuild-rollups", "--strategy", str(ids[1]))
    assert one.returncode == 0, one.stderr
    # three hours, one day; the deposit's interval found again
    assert one.stdout == f"strategy {ids[1]}: 4 roll-up buckets rebuilt, 1 cash flow found\n"
    assert all_rollups(store, ids[0], "hour") == []
    with session_scope(engine) as session:
        points = flows.flow_points(session, ids, 0, ALL_TIME_END_MS)
    assert points == {ids[0]: [], ids[1]: [FlowPoint(MIDNIGHT + 2 * HOUR, Decimal(500), stated=False)]}
    every = _cli(engine, "rebuild-rollups")
    assert every.stdout.splitlines() == [f"strategy {n}: 4 roll-up buckets rebuilt, 1 cash flow found" for n in ids]
    assert {strategy_id: all_rollups(store, strategy_id, "hour") for strategy_id in ids} == expected


def test_create_table_creates_the_snapshot_and_rollup_tables_once(engine, dynamodb_local):
    dynamodb = {
        "DYNAMODB_TABLE": "clitable",
        "DYNAMODB_ENDPOINT_URL": dynamodb_local.url,
        "AWS_ACCESS_KEY": "test",
        "AWS_SECRET_KEY": "test",
    }
    first = _cli(engine, "create-table", extra_env=dynamodb)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["table clitable created", "table clitable-rollups created"]
    again = _cli(engine, "create-table", extra_env=dynamodb)
    assert again.stdout.splitlines() == ["table clitable already exists", "table clitable-rollups already exists"]


def _audit_view(engine):
    """The audit log as /admin shows it to an admin: (who, what, to whom), oldest first."""
    with session_scope(engine) as session:
        boss = session.scalars(select(User).where(User.email == "a@example.com")).one()
        rows = admin.audit_log(session, Actor(boss.id, tuple(boss.roles)))
    return [(row.actor, row.action, row.target, row.outcome) for row in reversed(rows)]


def test_every_command_that_changes_data_is_in_the_audit_log_as_the_command_line(engine):
    assert _cli(engine, "create-admin", "--email", "a@example.com", "--name", "A", stdin=PASSWORD).returncode == 0
    member = make_member(engine, email="m@example.com")
    commands = [
        ("set-role", "--email", "m@example.com", "--add", "moderator", "--remove", "moderator"),
        ("grant-membership", "--email", "m@example.com", "--days", "1"),
        ("create-strategy", "--email", "m@example.com", "--account", "Main", "--name", "Trend"),
        ("create-strategy", "--email", "m@example.com", "--account", "Main", "--name", "Carry"),
    ]
    outputs = []
    for command in commands:
        result = _cli(engine, *command)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    with session_scope(engine) as session:
        trend, carry = session.scalars(select(Strategy.id).where(Strategy.owner_id == member.id).order_by(Strategy.id))
    rebuilt = _cli(engine, "rebuild-rollups", "--strategy", str(trend))
    assert rebuilt.returncode == 0, rebuilt.stderr

    assert _audit_view(engine) == [
        (admin.COMMAND_LINE, "create admin", "a@example.com", "done"),
        (admin.COMMAND_LINE, "grant moderator", "m@example.com", "done"),
        (admin.COMMAND_LINE, "remove moderator", "m@example.com", "done"),
        (admin.COMMAND_LINE, "grant membership 1 day", "m@example.com", "done"),
        (admin.COMMAND_LINE, "create account", "Main", "done"),
        (admin.COMMAND_LINE, "create strategy with a bot token", f"strategy {trend} (Trend)", "done"),
        (admin.COMMAND_LINE, "create strategy with a bot token", f"strategy {carry} (Carry)", "done"),
        (admin.COMMAND_LINE, "rebuild roll-ups", f"strategy {trend} (0 buckets, 0 flows)", "done"),
    ]
    tokens = [out.strip() for out in outputs[2:]]
    with session_scope(engine) as session:
        stored = " ".join(f"{e.action} {e.target} {e.reason}" for e in session.scalars(select(AuditEntry)))
    assert all(token.startswith("pa_live_") and token not in stored for token in tokens)


def test_a_refused_command_leaves_no_audit_entry(engine):
    assert _cli(engine, "create-admin", "--email", "a@example.com", "--name", "A", stdin=PASSWORD).returncode == 0
    refused = _cli(engine, "grant-membership", "--email", "a@example.com", "--days", "0")
    assert refused.returncode == 1
    assert [action for _, action, _, _ in _audit_view(engine)] == ["create admin"]
