"""Operator commands: `python -m projectalgo <command> ...`.

Every command that changes data records it in the audit log, in the change's own transaction, as done by the
command line (admin.record_command_line_change): /admin's audit view lists it with the admins' changes.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence

from projectalgo import admin, flows, logs, members, memberships, strategies
from projectalgo.db import session_scope
from projectalgo.errors import DomainError
from projectalgo.models import ROLES, id_of
from projectalgo.runtime import services
from projectalgo.settings import SettingsError
from projectalgo.snapshots import RollupRebuilding


class CommandError(Exception):
    """A refusal to print as one line, with exit code 1."""


def _check_config(_args: argparse.Namespace) -> int:
    settings = services().settings
    print(
        f"configuration ok: env={settings.app_env} database={settings.database_backend} "
        f"snapshot_store={settings.snapshot_store}"
    )
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    from projectalgo.migrations import upgrade_to_head

    upgrade_to_head(services().settings.database_url)
    return 0


def _read_password() -> str:
    """From a prompt on a terminal (asked twice), else the first line of stdin; never from an argument."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise CommandError("the two passwords differ")
    return password


def _create_admin(args: argparse.Namespace) -> int:
    settings = services().settings
    password = _read_password()
    with session_scope(services().engine) as session:
        user = members.create_admin(
            session,
            name=args.name,
            email=args.email,
            password=password,
            bcrypt_rounds=settings.bcrypt_rounds,
            default_uses=settings.invite_default_uses,
        )
        invitation = members.own_invitation(session, id_of(user))
        if invitation is None:  # every new user gets one (members._create_user)
            raise CommandError("the new admin has no invitation")
        admin.record_command_line_change(session, action="create admin", user=user)
    print(f"created admin {user.email}")
    print(f"invite link: {settings.public_url}/invite/{invitation.code}")
    return 0


def _set_role(args: argparse.Namespace) -> int:
    with session_scope(services().engine) as session:
        user = members.user_by_email(session, args.email)
        changes = [(role, True) for role in args.add or []] + [(role, False) for role in args.remove or []]
        for role, grant in changes:
            members.change_role(session, user=user, role=role, grant=grant)
            admin.record_command_line_change(session, action=admin.role_action(role, grant), user=user)
        print(f"{user.email}: {', '.join(user.roles) or 'no roles'}")
    return 0


def _grant_membership(args: argparse.Namespace) -> int:
    with session_scope(services().engine) as session:
        user = members.user_by_email(session, args.email)
        membership = memberships.grant(
            session, user_id=id_of(user), days=args.days, source="admin", note="granted from the CLI"
        )
        admin.record_command_line_change(session, action=admin.grant_membership_action(args.days), user=user)
    print(f"{user.email}: member until {membership.ends_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _create_strategy(args: argparse.Namespace) -> int:
    with session_scope(services().engine) as session:
        user = members.user_by_email(session, args.email)
        actor = members.Actor(id_of(user), tuple(user.roles))
        wanted = " ".join(args.account.split())
        existing = [a.id for a in strategies.list_accounts(session, actor) if a.name.casefold() == wanted.casefold()]
        if existing:
            account_id = existing[0]
        else:
            account_id = id_of(strategies.create_account(session, actor, name=wanted))
            admin.record_command_line_change(session, action="create account", user=user, target=wanted)
        strategy = strategies.create_strategy(
            session, actor, account_id=account_id, name=args.name, description=args.description, symbol=args.symbol
        )
        token = strategies.issue_token(session, actor, id_of(strategy))
        # The token itself never reaches the audit log; the strategy is named by id and name.
        target = f"strategy {strategy.id} ({strategy.name})"
        admin.record_command_line_change(session, action="create strategy with a bot token", user=user, target=target)
    print(token)  # alone on stdout, for scripts
    return 0


def _create_table(_args: argparse.Namespace) -> int:
    from projectalgo.integrations.dynamodb import DynamoSnapshotStore

    settings = services().settings
    if not settings.dynamodb_table:
        raise CommandError("DYNAMODB_TABLE is not set: the embedded SQL snapshot store needs no table")
    for table, created in DynamoSnapshotStore(settings).create_tables().items():
        print(f"table {table} {'created' if created else 'already exists'}")
    return 0


def _rebuild_rollups(args: argparse.Namespace) -> int:
    store = services().snapshot_store
    if not isinstance(store, RollupRebuilding):
        raise CommandError(f"the {store.name} snapshot store cannot rebuild roll-ups")
    with session_scope(services().engine) as session:
        strategy_ids = args.strategy or strategies.all_strategy_ids(session)
    for strategy_id in strategy_ids:
        # Both stores have rebuild_rollups: an operator's repair, not part of the SnapshotStore protocol.
        buckets = store.rebuild_rollups(strategy_id)
        with session_scope(services().engine) as session:
            found = flows.rebuild_flow_points(session, store, strategy_id, flows.tolerance(services().settings))
            target = f"strategy {strategy_id} ({admin.plural(buckets, 'bucket')}, {admin.plural(found, 'flow')})"
            admin.record_command_line_change(session, action="rebuild roll-ups", user=None, target=target)
        print(f"strategy {strategy_id}: {buckets} roll-up buckets rebuilt, {admin.plural(found, 'cash flow')} found")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m projectalgo")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("check-config", "validate the environment and print a one-line summary", _check_config)
    command("migrate", "apply the database migrations (alembic upgrade head)", _migrate)
    create_admin = command(
        "create-admin", "create an admin (password from a prompt or stdin) and print their invite link", _create_admin
    )
    create_admin.add_argument("--email", required=True)
    create_admin.add_argument("--name", required=True)
    set_role = command("set-role", "grant or remove roles (member, moderator, admin)", _set_role)
    set_role.add_argument("--email", required=True)
    set_role.add_argument("--add", action="append", choices=ROLES, metavar="ROLE")
    set_role.add_argument("--remove", action="append", choices=ROLES, metavar="ROLE")
    grant = command("grant-membership", "grant or extend a membership by N days (source: admin)", _grant_membership)
    grant.add_argument("--email", required=True)
    grant.add_argument("--days", type=int, default=365)
    create_strategy = command(
        "create-strategy",
        "create a strategy (and its account if missing) and print a new token alone",
        _create_strategy,
    )
    create_strategy.add_argument("--email", required=True)
    create_strategy.add_argument("--account", required=True)
    create_strategy.add_argument("--name", required=True)
    create_strategy.add_argument("--description", default="")
    create_strategy.add_argument("--symbol", default="")
    command(
        "create-table",
        "create the DynamoDB snapshot and roll-up tables (on-demand billing) unless they exist",
        _create_table,
    )
    rebuild = command(
        "rebuild-rollups",
        "recompute the hourly/daily roll-ups from the stored snapshots (safe while bots post)",
        _rebuild_rollups,
    )
    rebuild.add_argument("--strategy", type=int, action="append", metavar="ID", help="default: every strategy")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        logs.configure(services().settings)
        return args.handler(args)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except (CommandError, DomainError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
