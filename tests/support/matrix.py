"""The authorization matrix's world, tabs and leak checks (tests/integration/test_authorization_matrix.py).

One world is arranged once, through the app's own event handlers where a browser would do it, on a template
SQLite database; every cell then runs on a copy of it. A `Tab` is one browser tab: a whole Reflex state tree
(what the app keeps per tab), pointed at a page and driven with events as the browser's websocket would send
them. What the tab would show is checked against marker strings, each belonging to one person.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import reflex as rx
from reflex_base import constants
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from projectalgo import billing, members
from projectalgo.db import session_scope
from projectalgo.models import AuditEntry, Invitation, StrategyToken, User
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot
from projectalgo.state import AuthState
from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_WEBHOOK_SECRET
from tests.factories import grant_membership, make_admin, make_member
from tests.support.states import browser_view, preprocess

# The people of the world, and the two tabs that outlive a user (the matrix's last two columns).
PEOPLE = ("no_membership", "owner", "other_member", "moderator", "admin", "disabled")
TAB_ACTORS = ("stale_tab", "signed_out_tab")
ACTORS = ("anonymous", *PEOPLE, *TAB_ACTORS)

# Distinctive strings: finding one in a view is finding that person's data.
NAMES = {
    "no_membership": "Ursula Unpaidson",
    "owner": "Olive Ownerby",
    "other_member": "Bruno Otherwise",
    "moderator": "Mona Moderatova",
    "admin": "Adelaide Adminova",
    "disabled": "Dexter Disabledon",
}
OWNER_STRATEGY = "Zephyr Momentum"
OWNER_DESCRIPTION = "zephyr-description-marker"
OWNER_SYMBOL = "ZPHUSD"
OWNER_ACCOUNT = "Quokka Main Account"
OWNER_ACCOUNT_NOTES = "quokka-notes-marker"
OWNER_SPARE_ACCOUNT = "Quokka Spare Account"
OWNER_WALLET = Decimal("123456.78")
OWNER_MARGIN = Decimal("123987.65")
OWNER_SNAPSHOTS = 120  # more than two pages of the strategy page's table
OWNER_PAYMENT = "pi_olivemarker7q3x"
AUDIT_MARKER = "audit-reason-marker-7q3x"
OTHER_STRATEGY, OTHER_ACCOUNT = "Bruno Scalper", "Bruno Brokerage"
DISABLED_STRATEGY, DISABLED_ACCOUNT = "Dexter Grid", "Dexter Brokerage"
# The owner's strategy is on the group board under this alias (no marker: every member may see it); the disabled
# user's is on it under their name (a marker), which the board must never show once they are disabled.
BOARD_ALIAS = "Gallant Heron"
# The owner's alerts: a webhook at a public address (no name to resolve) and its signing secret, which only the owner's
# own /alerts may show (a marker of its own kind).
ALERT_HOOK = "https://1.1.1.1/olive-hook-marker"
ALERT_SECRET = "alert_secret"


def email_of(who: str) -> str:
    return NAMES[who].lower().replace(" ", ".") + "@example.com"


@dataclass(frozen=True)
class Marker:
    owner: str  # a key of PEOPLE
    kind: str  # identity, invite, strategy, data, token_prefix, payment, audit, session, secret
    text: str


@dataclass
class Person:
    key: str
    id: int
    name: str
    email: str
    session_token: str  # the browser's sign-in token (for "disabled": from before the user was disabled)
    invite_code: str
    invitation_id: int


@dataclass
class World:
    people: dict[str, Person]
    strategy_id: int  # the owner's strategy (with OWNER_SNAPSHOTS snapshots)
    account_id: int  # the owner's account holding it
    spare_account_id: int  # the owner's account without strategies (deletable)
    token_id: int  # the owner's bot token
    bot_token: str
    other_strategy_id: int
    other_bot_token: str
    disabled_bot_token: str
    reset_token: str  # a one-time password reset token an admin issued for the member without membership
    flow_at_ms: int  # the owner's strategy shows a deposit here (its first snapshot's wallet was lower)
    markers: list[Marker] = field(default_factory=list)
    share_link_id: int = 0  # the owner's share link to their strategy (no amounts)
    share_token: str = ""
    alert_rule_id: int = 0  # the owner's alert rule (silence on their strategy)

    def person(self, who: str) -> Person | None:
        return self.people.get(who)


# Services


def use_app_services(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Engine:
    """The app's services (as the states and the API use them) on this database; payments off, webhook on."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "DYNAMODB_TABLE", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:3999")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", TEST_STRIPE_WEBHOOK_SECRET)
    services.cache_clear()
    return services().engine


def release_app_services() -> None:
    services().engine.dispose()
    services.cache_clear()


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (WAL included), through SQLite's own backup."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


# Tabs


def _run(work: object) -> object:
    """Whatever an event handler returned, run to its end: a coroutine or async generator on its own loop."""
    if inspect.iscoroutine(work):

        def run() -> object:
            return asyncio.run(work)

    elif inspect.isasyncgen(work):

        async def drain() -> list[object]:
            return [event async for event in work]

        def run() -> object:
            return asyncio.run(drain())

    elif inspect.isgenerator(work):
        return list(work)
    else:
        return work
    # Its own thread: Playwright's sync API may hold an event loop in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def navigate(root: rx.State, path: str, pattern: str, client_token: str) -> None:
    """Point the tab at `path` (route `pattern`), as every event sent from that page carries it."""
    router_data = {
        constants.RouteVar.PATH: pattern,
        constants.RouteVar.ORIGIN: path,
        constants.RouteVar.QUERY: {},
        constants.RouteVar.CLIENT_TOKEN: client_token,
        constants.RouteVar.SESSION_ID: f"sid-{client_token}",
        constants.RouteVar.CLIENT_IP: "127.0.0.1",
        constants.RouteVar.HEADERS: {"origin": "http://127.0.0.1:3999"},
    }
    # What Reflex's event processor does with each event's router data (reflex_base base_state_processor).
    root.router_data = root._update_router_vars(router_data, root.router_data)


class Tab:
    """One browser tab: a whole Reflex state tree, signed in with `session_token` (or not)."""

    def __init__(self, session_token: str = "") -> None:
        self.root = rx.State(_reflex_internal_init=True)
        self.client_token = uuid.uuid4().hex
        self.auth.session_token = session_token

    @property
    def auth(self) -> AuthState:
        return self.state(AuthState)

    def state(self, state_class: type[rx.State]) -> rx.State:
        return self.root.get_substate(state_class.get_full_name().split(".")[1:])

    def open(self, path: str, pattern: str | None = None) -> None:
        navigate(self.root, path, pattern or path, self.client_token)

    def fire(self, handler: rx.event.EventHandler, *args: object) -> object:
        """Run one event handler on this tab as a browser event would (the app's middlewares first); returns
        what it returned."""
        _run(preprocess(self.root, handler))
        return _run(handler.fn(self.state(handler.state), *args))

    def view(self) -> str:
        """What the tab's state would send to the browser, without the router (the browser's own URL)."""
        tree = json.loads(browser_view(self.root))
        for values in tree.values():
            for name in [n for n in values if n.startswith(("rx_router_", "router"))]:
                del values[name]
        return json.dumps(tree)


# What handlers return


def _literal(value: object) -> object:
    return getattr(value, "_var_value", value)


def events_of(result: object) -> list[rx.event.EventSpec]:
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return [spec for item in result for spec in events_of(item)]
    return [result] if isinstance(result, rx.event.EventSpec) else []


def event_arguments(result: object) -> list[str]:
    """The literal arguments of every event a handler returned (redirect paths, download URLs, scripts)."""
    return [str(_literal(value)) for spec in events_of(result) for _, value in spec.args]


def _argument(result: object, event: str, name: str) -> str | None:
    for spec in events_of(result):
        if spec.handler.fn.__qualname__ == event:
            return next((str(_literal(value)) for key, value in spec.args if str(key) == name), None)
    return None


def redirect_target(result: object) -> str | None:
    return _argument(result, "_redirect", "path")


def download_url(result: object) -> str | None:
    return _argument(result, "_download", "url")


# The database, before and after


# Sign-ins, throttle counts (any table of attempts) and the audit log (its refusals are checked apart).
_VOLATILE_TABLES = {"login_sessions", "audit_log"}
_VOLATILE_COLUMNS = {("users", "last_sign_in_at"), ("share_links", "last_viewed_at")}


def database_state(engine: Engine) -> dict[str, list[tuple]]:
    """Every row the matrix compares: a refused call must leave all of it as it was."""
    state = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in _VOLATILE_TABLES or "attempt" in table.name:
                continue
            rows = connection.exec_driver_sql(f'SELECT * FROM "{table.name}"')  # plain SQL: no compiling per call
            kept = [i for i, name in enumerate(rows.keys()) if (table.name, name) not in _VOLATILE_COLUMNS]
            state[table.name] = sorted(tuple(str(row[i]) for i in kept) for row in rows)
    return state


def refusals(engine: Engine) -> list[tuple[int | None, str]]:
    with session_scope(engine) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "refused").order_by(AuditEntry.id))
        return [(row.actor_id, row.action) for row in rows]


def signed_in_after(session_token: str) -> bool:
    """Whether the app still takes this token (a new tab with it is let in to /membership)."""
    from projectalgo.pages.membership import MembershipState

    tab = Tab(session_token)
    tab.open("/membership")
    return redirect_target(tab.fire(MembershipState.open_membership)) is None


# Leaks


def _summary(text: str, markers: Iterable[Marker]) -> str:
    """Whose data, of which kinds, `text` holds: "owner(data, strategy), admin(audit)"."""
    kinds: dict[str, set[str]] = {}
    for m in markers:
        if m.text in text:
            kinds.setdefault(m.owner, set()).add(m.kind)
    return ", ".join(f"{who}({', '.join(sorted(k))})" for who, k in kinds.items())


def _class_names(cls: type[rx.State] = rx.State) -> dict[str, str]:
    names = {cls.get_full_name(): cls.__name__}
    for sub in cls.get_substates():
        names |= _class_names(sub)
    return names


def leak_report(view: str, returned: Iterable[str], markers: list[Marker]) -> list[str]:
    """Where the tab's view (Tab.view()) and the returned events hold any of `markers`, var by var."""
    names, report = _class_names(), []
    for state, values in json.loads(view).items():
        for var, value in values.items():
            if found := _summary(json.dumps(value), markers):
                report.append(f"{names.get(state, state)}.{var.removesuffix('_rx_state_')}: {found}")
    if found := _summary(" ".join(returned), markers):
        report.append(f"returned events: {found}")
    return report


# The world


def _snapshot(strategy_id: int, account_id: int, at_ms: int, wallet: Decimal = OWNER_WALLET) -> Snapshot:
    return Snapshot(
        strategy_id=strategy_id,
        account_id=account_id,
        at_ms=at_ms,
        last_price=Decimal("9321.5"),
        margin_balance=OWNER_MARGIN,
        wallet_balance=wallet,
        realised_pnl=Decimal("120.5"),
        positions=Decimal(150),
        average_entry_price=Decimal("9300.25"),
        symbol=OWNER_SYMBOL,
    )


def _own_account_and_strategy(
    tab: Tab, account: str, strategy: str, notes: str = "", description: str = "", symbol: str = "XBTUSD"
) -> dict:
    """Through the accounts and strategies pages, as the member would: the ids and the token shown once."""
    from projectalgo.pages.accounts import AccountsState
    from projectalgo.pages.strategies import StrategiesState

    tab.open("/accounts")
    tab.fire(AccountsState.open_accounts)
    tab.fire(AccountsState.add_account, {"name": account, "exchange": "BitMEX", "notes": notes})
    account_id = next(a.id for a in tab.state(AccountsState).accounts if a.name == account)
    tab.open("/strategies")
    tab.fire(StrategiesState.open_strategies)
    form = {"account_id": str(account_id), "name": strategy, "description": description, "symbol": symbol}
    tab.fire(StrategiesState.create_strategy, form)
    page = tab.state(StrategiesState)
    assert page.error == "" and page.new_token, page.error
    row = next(s for s in page.strategies if s.name == strategy)
    return {"account_id": account_id, "strategy_id": row.id, "token_id": row.tokens[0].id, "token": page.new_token}


def _share_link(tab: Tab, strategy_id: int) -> tuple[int, str]:
    """The owner's share link to their strategy, made on its page as the owner would: its id and token."""
    from projectalgo.pages.share_links_section import ShareLinksState

    tab.open(f"/strategies/{strategy_id}", "/strategies/[strategy_id]")
    tab.fire(ShareLinksState.create_link, {"label": "Matrix share", "days": "30"})
    section = tab.state(ShareLinksState)
    assert section.new_link, section.error
    return section.links[0].id, section.new_link.rsplit("/", 1)[-1]


def _on_the_board(tab: Tab, strategy_id: int, alias: str) -> None:
    """Through /group, as the member would: their strategy on the group board."""
    from projectalgo.pages.group import GroupState

    tab.open("/group")
    tab.fire(GroupState.open_group)
    tab.fire(GroupState.join_board, {"strategy_id": str(strategy_id), "alias": alias})
    assert tab.state(GroupState).error == "", tab.state(GroupState).error


def _owners_alerts(tab: Tab, engine: Engine, user_id: int, strategy_id: int) -> tuple[int, str]:
    """Through /alerts, as the owner would: a rule on their strategy and their webhook, then an alert it fired (its
    title names the strategy), read. The rule's id and the webhook's signing secret."""
    from projectalgo import alerts
    from projectalgo.pages.alerts import AlertsState

    tab.open("/alerts")
    tab.fire(AlertsState.open_alerts)
    tab.fire(AlertsState.save_rule, {"strategy": str(strategy_id), "kind": "silence", "threshold": "15"})
    tab.fire(AlertsState.save_channels, {"webhook_url": ALERT_HOOK, "webhook_preset": "generic"})
    page = tab.state(AlertsState)
    assert page.error == "" and page.webhook_secret, page.error
    rule_id = page.rules[0].id
    with session_scope(engine) as session:
        title = f"{OWNER_STRATEGY}: no snapshot for 15 minutes"
        now = datetime.now(UTC)
        alerts.fire(
            session, user_id=user_id, kind="silence", title=title, body="", now=now, settings=services().settings
        )
    tab.fire(AlertsState.open_alerts)
    tab.fire(AlertsState.mark_read)
    return rule_id, page.webhook_secret


def build_world(engine: Engine) -> World:
    """The people and their data, on the app's services (`engine` is theirs)."""
    from projectalgo.pages.accounts import AccountsState
    from projectalgo.pages.admin import AdminState

    admin = make_admin(engine, name=NAMES["admin"], email=email_of("admin"))
    users = {"admin": admin}
    for who in ("owner", "other_member", "moderator", "no_membership", "disabled"):
        users[who] = make_member(engine, inviter=admin, name=NAMES[who], email=email_of(who))
    with session_scope(engine) as session:
        members.change_role(session, user=session.get(User, users["moderator"].id), role="moderator", grant=True)
        tokens = {who: members.start_session(session, user=user, days=1) for who, user in users.items()}
    for who in ("other_member", "disabled"):
        grant_membership(engine, users[who], days=365)

    admin_tab = Tab(tokens["admin"])
    admin_tab.open("/admin")
    admin_tab.fire(AdminState.open_admin)
    grant = {"user_id": str(users["owner"].id), "days": "365", "reason": AUDIT_MARKER}
    assert admin_tab.fire(AdminState.grant_membership, grant) is None, admin_tab.state(AdminState).error

    owner_tab = Tab(tokens["owner"])
    own = _own_account_and_strategy(
        owner_tab,
        OWNER_ACCOUNT,
        OWNER_STRATEGY,
        notes=OWNER_ACCOUNT_NOTES,
        description=OWNER_DESCRIPTION,
        symbol=OWNER_SYMBOL,
    )
    owner_tab.fire(AccountsState.add_account, {"name": OWNER_SPARE_ACCOUNT})
    owner_tab.open("/accounts")
    owner_tab.fire(AccountsState.open_accounts)
    spare = next(a.id for a in owner_tab.state(AccountsState).accounts if a.name == OWNER_SPARE_ACCOUNT)
    other = _own_account_and_strategy(Tab(tokens["other_member"]), OTHER_ACCOUNT, OTHER_STRATEGY)
    dexter = _own_account_and_strategy(Tab(tokens["disabled"]), DISABLED_ACCOUNT, DISABLED_STRATEGY)
    _on_the_board(Tab(tokens["owner"]), own["strategy_id"], BOARD_ALIAS)
    _on_the_board(Tab(tokens["disabled"]), dexter["strategy_id"], "")
    assert admin_tab.fire(AdminState.set_disabled, users["disabled"].id, True) is None
    admin_tab.fire(AdminState.issue_reset_link, users["no_membership"].id)
    reset_token = admin_tab.state(AdminState).reset_link.rsplit("/", 1)[-1]
    assert reset_token, admin_tab.state(AdminState).error
    share_link_id, share_token = _share_link(owner_tab, own["strategy_id"])
    alert_rule_id, alert_secret = _owners_alerts(owner_tab, engine, users["owner"].id, own["strategy_id"])

    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    times = [now_ms - (i + 1) * 60_000 for i in range(OWNER_SNAPSHOTS)]  # newest first
    # The oldest a thousand lower: the next one shows a deposit, for the flow corrections' rows.
    snapshots = [
        _snapshot(own["strategy_id"], own["account_id"], at_ms, OWNER_WALLET - (1000 if at_ms == times[-1] else 0))
        for at_ms in times
    ]
    assert all(not isinstance(r, Exception) for r in services().snapshot_store.put_many(snapshots))
    with session_scope(engine) as session:
        intent = billing.Intent(OWNER_PAYMENT, "succeeded", 49_900, "usd", str(users["owner"].id))
        billing.record_payment(session, user_id=users["owner"].id, intent=intent)

    people = {}
    with session_scope(engine) as session:
        for who, user in users.items():
            invitation = session.scalars(
                select(Invitation).where(Invitation.owner_id == user.id).order_by(Invitation.id)
            ).first()
            people[who] = Person(
                who, user.id, user.name, user.email, tokens[who], invitation.code if invitation else "", invitation.id
            )
        password_hashes = {who: session.get(User, user.id).password_hash for who, user in users.items()}
        token_hashes = {row.strategy_id: row.token_hash for row in session.scalars(select(StrategyToken))}
    world = World(
        people=people,
        strategy_id=own["strategy_id"],
        account_id=own["account_id"],
        spare_account_id=spare,
        token_id=own["token_id"],
        bot_token=own["token"],
        other_strategy_id=other["strategy_id"],
        other_bot_token=other["token"],
        disabled_bot_token=dexter["token"],
        reset_token=reset_token,
        flow_at_ms=times[-2],
        share_link_id=share_link_id,
        share_token=share_token,
        alert_rule_id=alert_rule_id,
    )
    world.markers = list(_markers(world, password_hashes, token_hashes, {"owner": own, "other_member": other}, dexter))
    world.markers += [Marker("owner", "data", ALERT_HOOK), Marker("owner", ALERT_SECRET, alert_secret)]
    return world


def _markers(
    world: World, password_hashes: dict, token_hashes: dict, strategies: dict, dexter: dict
) -> Iterator[Marker]:
    for who, person in world.people.items():
        yield Marker(who, "identity", person.name)
        yield Marker(who, "identity", person.email)
        yield Marker(who, "invite", person.invite_code)
        yield Marker(who, "session", person.session_token)
        yield Marker(who, "secret", password_hashes[who])
    for text in (OWNER_STRATEGY, OWNER_ACCOUNT, OWNER_SPARE_ACCOUNT):
        yield Marker("owner", "strategy", text)
    for text in (OWNER_DESCRIPTION, OWNER_ACCOUNT_NOTES, OWNER_SYMBOL):
        yield Marker("owner", "data", text)
    for value in (OWNER_WALLET, OWNER_MARGIN):
        yield Marker("owner", "data", str(value))  # as the figure's numbers
        yield Marker("owner", "data", f"{value:,}")  # as the page's money
    yield Marker("owner", "payment", OWNER_PAYMENT)
    yield Marker("admin", "audit", AUDIT_MARKER)
    for text in (OTHER_STRATEGY, OTHER_ACCOUNT):
        yield Marker("other_member", "strategy", text)
    for text in (DISABLED_STRATEGY, DISABLED_ACCOUNT):
        yield Marker("disabled", "strategy", text)
    bots = {"owner": strategies["owner"], "other_member": strategies["other_member"], "disabled": dexter}
    for who, made in bots.items():
        yield Marker(who, "token_prefix", made["token"][:14])
        yield Marker(who, "secret", made["token"])
        yield Marker(who, "secret", token_hashes[made["strategy_id"]])
    yield Marker("no_membership", "secret", world.reset_token)
    yield Marker("owner", "secret", world.share_token)
    yield Marker("admin", "secret", TEST_SECRET_KEY_BASE)
