"""Operator commands: `python -m projectalgo <command> ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from projectalgo.runtime import services
from projectalgo.settings import SettingsError


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


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "check-config": ("validate the environment and print a one-line summary", _check_config),
    "migrate": ("apply the database migrations (alembic upgrade head)", _migrate),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m projectalgo")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, handler) in COMMANDS.items():
        commands.add_parser(name, help=help_text).set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
