"""The per-test timeout (pytest-timeout, pyproject.toml) without the start of the session's servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

SETTINGS = pytest.StashKey[object]()
RUNNING = pytest.StashKey[pytest.Item]()


class ServerStartsUntimed:
    """A session-scoped fixture (a server: DynamoDB Local, PostgreSQL, the app building its front end) starts
    under its own deadline (tests/support/servers.py), minutes for a first build; the test that happens to start
    it gets its full timeout again once it is up.

    A plugin registered by tests/conftest.py, not hooks in it: pytest asks only the root's conftest about
    session-scoped fixtures.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.config.stash[RUNNING] = item

    def pytest_timeout_set_timer(self, item: pytest.Item, settings: object) -> None:
        item.stash[SETTINGS] = settings  # pytest-timeout's own hook then arms the timer

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> Iterator[None]:
        item = request.config.stash.get(RUNNING, None)
        if fixturedef.scope != "session" or item is None or SETTINGS not in item.stash:
            return (yield)
        item.ihook.pytest_timeout_cancel_timer(item=item)
        try:
            return (yield)
        finally:
            item.ihook.pytest_timeout_set_timer(item=item, settings=item.stash[SETTINGS])
