"""Who may do what (issue 12): every page state's event handler, every page load and every HTTP route, against
every kind of visitor, table-driven.

The handlers, the pages and the routes are read from the app itself: a new one without a row here fails
test_every_*_has_a_row. Each cell runs on its own copy of one arranged world (tests/support/matrix.py) and
checks the outcome its row expects AND that nothing of anyone else reaches the browser: the whole tab's state
(a superset of any delta) and whatever the handler returned (redirect paths, download links, scripts) are
searched for every person's marker strings (names, emails, invite codes, strategy and account names, snapshot
values, the admin's audit row, a Stripe id, bot tokens, hashes, sign-in and reset tokens).

Columns: anonymous, signed in without membership, the owner of the strategy/accounts/token, another member,
a moderator, an admin, a disabled user (with their sign-in token from before), and two tabs that outlive their
user: the same state tree first used by an admin who opened /admin and viewed page 2 of the owner's strategy,
then its session token replaced by another member's ("stale_tab": must behave exactly as that member's own tab)
or cleared, as signing out in another tab does ("signed_out_tab": must behave as an anonymous tab). In those two
the cell's event is the very next one, sent from the row's page without its page load.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
import httpx
import pytest
import reflex as rx
from sqlalchemy import Engine

from projectalgo.api import build_api
from projectalgo.components.alerts_bell import BellState
from projectalgo.migrations import upgrade_to_head
from projectalgo.pages.accounts import AccountsState
from projectalgo.pages.admin import AdminState
from projectalgo.pages.admin.alerts import AdminAlertsState
from projectalgo.pages.admin.share_links import AdminShareLinksState
from projectalgo.pages.alerts import AlertsState
from projectalgo.pages.dashboard import DashboardLiveState, DashboardState
from projectalgo.pages.group import GroupState
from projectalgo.pages.invite import InviteState
from projectalgo.pages.login import LoginState, LogoutState
from projectalgo.pages.membership import MembershipState
from projectalgo.pages.not_found import NotFoundState
from projectalgo.pages.profile import ProfileState
from projectalgo.pages.reset import ResetState
from projectalgo.pages.share_links_section import ShareLinksState
from projectalgo.pages.shared import SharedLiveState, SharedPageState
from projectalgo.pages.strategies import StrategiesState
from projectalgo.pages.strategy import StrategyLiveState, StrategyPageState
from projectalgo.pages.strategy_performance import StrategyPerformanceState
from projectalgo.runtime import services
from projectalgo.snapshots import ALL_TIME_END_MS, EXAMPLE_DATA
from tests.factories import PASSWORD
from tests.support.matrix import (
    ACTORS,
    ALERT_HOOK,
    ALERT_SECRET,
    BOARD_ALIAS,
    NAMES,
    OWNER_ACCOUNT,
    OWNER_STRATEGY,
    OWNER_WALLET,
    PEOPLE,
    Marker,
    Tab,
    World,
    build_world,
    copy_database,
    database_state,
    download_url,
    event_arguments,
    leak_report,
    redirect_target,
    refusals,
    release_app_services,
    signed_in_after,
    use_app_services,
)
from tests.support.webhooks import sign


class Outcome(Enum):
    LOGIN = "sent to /login, or nothing happens; nothing of anyone in the tab"
    MEMBERSHIP = "sent to /membership; nothing changes; only their own data in the tab"
    REFUSED = "sent to /dashboard, the refusal audited under their id; nothing changes; only their own data"
    NOT_FOUND = "'No such ...': another user's object is not found; nothing changes; only their own data"
    OK = "done: no error, the row's success check holds; only their own data (and what the row shows anyone)"
    HOME = "signed in already: sent to /dashboard; only their own data"
    REJECTED = "refused with a message, no redirect; nothing changes; nothing of anyone"
    SIGNED_OUT = "signed out: sent to /login, the sign-in ended, every page state emptied: nothing of anyone"
    ADMIN = "done, and the admin may see everything (users, invites, payments, strategies, audit), never a secret"
    MOD_READ = "done, read-only: users and strategies lists, nothing else of others"
    ADMIN_VIEW = "done: the admin views the owner's strategy page (strategy, account and snapshots)"
    VIEW_ONLY = "'No such ...': the admin, who views the owner's strategy page, may not change it; nothing changes"


LOGIN, MEMBERSHIP, REFUSED, NOT_FOUND, OK, HOME, REJECTED, SIGNED_OUT, ADMIN, MOD_READ, ADMIN_VIEW, VIEW_ONLY = Outcome
SUCCESS = {OK, HOME, ADMIN, MOD_READ, ADMIN_VIEW}
# What a person may see of their own (their alerts' signing secret on /alerts, where admins never see it).
SELF_KINDS = {"identity", "invite", "strategy", "data", "token_prefix", ALERT_SECRET}


def cols(
    anonymous: Outcome,
    no_membership: Outcome,
    owner: Outcome,
    other_member: Outcome,
    moderator: Outcome,
    admin: Outcome,
    disabled: Outcome,
) -> dict[str, Outcome]:
    return {
        "anonymous": anonymous,
        "no_membership": no_membership,
        "owner": owner,
        "other_member": other_member,
        "moderator": moderator,
        "admin": admin,
        "disabled": disabled,
    }


# The columns' usual patterns:            anonymous  no membership  owner  other member  moderator  admin  disabled
OWNERS_ONLY = cols(LOGIN, MEMBERSHIP, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, LOGIN)
OWNERS_AND_ADMINS_VIEW = cols(LOGIN, MEMBERSHIP, OK, NOT_FOUND, NOT_FOUND, ADMIN_VIEW, LOGIN)
OWNERS_CHANGE_ADMINS_VIEW = cols(LOGIN, MEMBERSHIP, OK, NOT_FOUND, NOT_FOUND, VIEW_ONLY, LOGIN)
MEMBERS_OWN_DATA = cols(LOGIN, MEMBERSHIP, OK, OK, OK, OK, LOGIN)
SIGNED_IN = cols(LOGIN, OK, OK, OK, OK, OK, LOGIN)
ADMINS_CHANGE = cols(LOGIN, REFUSED, REFUSED, REFUSED, REFUSED, ADMIN, LOGIN)
MODERATORS_READ = cols(LOGIN, REFUSED, REFUSED, REFUSED, MOD_READ, ADMIN, LOGIN)
ANYONE = cols(OK, OK, OK, OK, OK, OK, OK)
LOGIN_PAGE = cols(OK, HOME, HOME, HOME, HOME, HOME, OK)
EVERYONE_SIGNED_OUT = cols(*[SIGNED_OUT] * 7)


def acting(actor: str) -> str | None:
    """The person whose sign-in token the tab holds when the cell's event is sent."""
    return {"anonymous": None, "stale_tab": "other_member", "signed_out_tab": None}.get(actor, actor)


def column(actor: str) -> str:
    """The two tabs that outlive their user must behave as the new user's (or an anonymous) own tab."""
    return {"stale_tab": "other_member", "signed_out_tab": "anonymous"}.get(actor, actor)


# Pages: route pattern -> the path the tab is at.
PAGES: dict[str, Callable[[World], str]] = {
    "/": lambda w: "/",
    "/login": lambda w: "/login",
    "/logout": lambda w: "/logout",
    "/invite/[code]": lambda w: f"/invite/{w.people['owner'].invite_code}",
    "/profile": lambda w: "/profile",
    "/reset/[token]": lambda w: f"/reset/{w.reset_token}",
    "/membership": lambda w: "/membership",
    "/dashboard": lambda w: "/dashboard",
    "/accounts": lambda w: "/accounts",
    "/strategies": lambda w: "/strategies",
    "/strategies/[strategy_id]": lambda w: f"/strategies/{w.strategy_id}",
    "/admin": lambda w: "/admin",
    "/group": lambda w: "/group",
    "/alerts": lambda w: "/alerts",
    "/share/[token]": lambda w: f"/share/{w.share_token}",
    "/404": lambda w: "/no-such-page",
}
MONEY = f"{OWNER_WALLET:,}"
NEW_PASSWORD = "a brand new passphrase"


def shows(*texts: str | Callable[[World], str], to: tuple[str, ...]) -> Callable[[World, str | None], list[str]]:
    """Marker texts a success must show, to these people."""
    return lambda world, who: [t(world) if callable(t) else t for t in texts] if who in to else []


def nothing(_world: World, _who: str | None) -> list:
    return []


@dataclass(frozen=True)
class Row:
    handler: rx.event.EventHandler
    page: str  # the route pattern the event is sent from; for a page load, the page loaded
    expect: dict[str, Outcome]
    args: Callable[[World, str | None], list] = nothing  # the event's arguments, for the acting person
    is_load: bool = False  # the row is the page's on_load
    # What the actor did in the tab before: the page's own load (except for a page load row), then these.
    before: tuple[Callable[[Tab, World], object], ...] = ()
    must_show: Callable[[World, str | None], list[str]] = nothing  # a success shows these
    check: Callable[[Tab, World, object], bool] | None = None  # what else a success looks like
    writes: bool = False  # a success changes the database
    redirects_to: str | None = None  # where a success sends the browser
    anyone_sees: tuple[str, ...] = ()  # marker texts every visitor of the page may see (an inviter's name)

    @property
    def name(self) -> str:
        name = f"{self.handler.state.__name__}.{self.handler.fn.__name__}"
        return f"{name}@{self.page}" if self.is_load else name


def load_page(tab: Tab, world: World, page: str) -> object:
    tab.open(PAGES[page](world), page)
    return tab.fire(ON_LOAD[page])


def tour(tab: Tab, world: World) -> None:
    """Every signed-in page, as the actor: whatever each shows them is in the tab."""
    pages = ("/dashboard", "/accounts", "/strategies", "/strategies/[strategy_id]", "/admin", "/profile", "/membership")
    for page in pages:
        load_page(tab, world, page)


def to_page_two(tab: Tab, _world: World) -> object:
    return tab.fire(StrategyPageState.older_page)


def new_token_shown(tab: Tab, _world: World) -> None:
    """A new bot token for the actor's own first strategy, if they have one: it is on the page, shown once."""
    if own := tab.state(StrategiesState).strategies:
        tab.fire(StrategiesState.new_token_for, own[0].id)


def manual_flow(world: World) -> dict[str, str]:
    """A flow added by hand on the strategy page, inside the owner's snapshots (the minute of their deposit)."""
    at = datetime.fromtimestamp(world.flow_at_ms // 60_000 * 60, tz=UTC)
    return {"at": at.strftime("%Y-%m-%dT%H:%M"), "amount": "250"}


def manual_flow_added(tab: Tab, world: World) -> object:
    """A flow added by hand on the strategy page (only its owner's is kept)."""
    return tab.fire(StrategyPerformanceState.add_flow, manual_flow(world))


def on_page(number: int) -> Callable[[Tab, World, object], bool]:
    return lambda tab, world, result: tab.state(StrategyPageState).page == number


def owner_email(world: World) -> str:
    return world.people["owner"].email


STRATEGY_SHOWN = shows(OWNER_STRATEGY, MONEY, to=("owner", "admin"))
USERS_SHOWN = shows(owner_email, to=("moderator", "admin"))
INVITER = (NAMES["owner"],)

ROWS: list[Row] = [
    # Page loads: the app's on_load of every route.
    Row(LoginState.open_login, "/", LOGIN_PAGE, is_load=True),
    Row(LoginState.open_login, "/login", LOGIN_PAGE, is_load=True),
    Row(LogoutState.sign_out, "/logout", EVERYONE_SIGNED_OUT, is_load=True, before=(tour,)),
    Row(InviteState.open_invite, "/invite/[code]", ANYONE, is_load=True, anyone_sees=INVITER),
    Row(ProfileState.open_profile, "/profile", SIGNED_IN, is_load=True),
    Row(NotFoundState.open_not_found, "/404", ANYONE, is_load=True),
    Row(
        ResetState.open_reset,
        "/reset/[token]",
        ANYONE,
        is_load=True,
        check=lambda tab, w, result: tab.state(ResetState).usable,
    ),
    Row(MembershipState.open_membership, "/membership", SIGNED_IN, is_load=True),
    Row(
        DashboardState.open_dashboard,
        "/dashboard",
        MEMBERS_OWN_DATA,
        is_load=True,
        must_show=shows(MONEY, to=("owner",)),
    ),
    Row(
        AccountsState.open_accounts,
        "/accounts",
        MEMBERS_OWN_DATA,
        is_load=True,
        must_show=shows(OWNER_ACCOUNT, to=("owner",)),
    ),
    Row(
        StrategiesState.open_strategies,
        "/strategies",
        MEMBERS_OWN_DATA,
        is_load=True,
        must_show=shows(OWNER_STRATEGY, lambda w: w.bot_token[:14], to=("owner",)),
    ),
    Row(
        StrategyPageState.open_strategy,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        is_load=True,
        must_show=STRATEGY_SHOWN,
    ),
    Row(
        AdminState.open_admin,
        "/admin",
        MODERATORS_READ,
        is_load=True,
        must_show=shows(owner_email, OWNER_STRATEGY, to=("moderator", "admin")),
    ),
    # /login: each person with their own password; the anonymous with the owner's email and a wrong password.
    Row(
        LoginState.sign_in,
        "/login",
        cols(REJECTED, OK, OK, OK, OK, OK, REJECTED),
        args=lambda w, who: [
            {"email": w.people[who].email, "password": PASSWORD}
            if who
            else {"email": w.people["owner"].email, "password": "not the password"}
        ],
        redirects_to="/dashboard",
    ),
    # /invite/<the owner's code>: whoever holds a code may register with it, and sees who invited them.
    Row(
        InviteState.register,
        "/invite/[code]",
        ANYONE,
        args=lambda w, who: [
            {
                "name": "Newt Newcomer",
                "email": "newt.newcomer@example.com",
                "password": PASSWORD,
                "confirmation": PASSWORD,
            }
        ],
        writes=True,
        redirects_to="/login?registered",
        anyone_sees=INVITER,
    ),
    # /profile
    Row(
        ProfileState.change_password,
        "/profile",
        SIGNED_IN,
        args=lambda w, who: [{"current": PASSWORD, "password": NEW_PASSWORD, "confirmation": NEW_PASSWORD}],
        writes=True,
        check=lambda tab, w, result: tab.state(ProfileState).notice != "",
    ),
    Row(ProfileState.sign_out_everywhere, "/profile", EVERYONE_SIGNED_OUT, before=(tour,)),
    # /reset/<the member without membership's one-time token>: whoever holds the link may set the password.
    Row(
        ResetState.reset_password,
        "/reset/[token]",
        ANYONE,
        args=lambda w, who: [{"password": NEW_PASSWORD, "confirmation": NEW_PASSWORD}],
        writes=True,
        redirects_to="/login?reset",
    ),
    # /membership (payments are not configured on these services: paying does nothing)
    Row(MembershipState.start_payment, "/membership", SIGNED_IN),
    Row(MembershipState.card_field_ready, "/membership", SIGNED_IN, args=lambda w, who: [{}]),
    Row(MembershipState.card_set_up, "/membership", SIGNED_IN, args=lambda w, who: [{"setupIntent": "seti_x"}]),
    Row(MembershipState.payment_returned, "/membership", SIGNED_IN, args=lambda w, who: [{}]),
    # /dashboard
    Row(
        DashboardState.set_range,
        "/dashboard",
        MEMBERS_OWN_DATA,
        args=lambda w, who: ["7D"],
        must_show=shows(MONEY, to=("owner",)),
    ),
    Row(DashboardState.resync, "/dashboard", MEMBERS_OWN_DATA, must_show=shows(MONEY, to=("owner",))),
    # /accounts (others add their own account; the owner's are not found for anyone else)
    Row(
        AccountsState.add_account,
        "/accounts",
        MEMBERS_OWN_DATA,
        args=lambda w, who: [{"name": "Fresh Account", "exchange": "", "notes": ""}],
        writes=True,
    ),
    Row(
        AccountsState.rename_account,
        "/accounts",
        OWNERS_ONLY,
        args=lambda w, who: [{"account_id": str(w.account_id), "name": "Renamed Account"}],
        writes=True,
    ),
    Row(AccountsState.set_archived, "/accounts", OWNERS_ONLY, args=lambda w, who: [w.account_id, True], writes=True),
    Row(AccountsState.delete_account, "/accounts", OWNERS_ONLY, args=lambda w, who: [w.spare_account_id], writes=True),
    # /strategies
    Row(
        StrategiesState.create_strategy,
        "/strategies",
        OWNERS_ONLY,
        args=lambda w, who: [{"account_id": str(w.account_id), "name": "Sneaky Strategy"}],
        writes=True,
    ),
    Row(
        StrategiesState.new_token_for,
        "/strategies",
        OWNERS_ONLY,
        args=lambda w, who: [w.strategy_id],
        writes=True,
        check=lambda tab, w, result: tab.state(StrategiesState).new_token.startswith("pa_"),
    ),
    Row(StrategiesState.revoke_token, "/strategies", OWNERS_ONLY, args=lambda w, who: [w.token_id], writes=True),
    Row(
        StrategiesState.set_archived,
        "/strategies",
        OWNERS_ONLY,
        args=lambda w, who: [w.strategy_id, True],
        writes=True,
    ),
    Row(
        StrategiesState.update_strategy,
        "/strategies",
        OWNERS_ONLY,
        args=lambda w, who: [{"strategy_id": str(w.strategy_id), "account_id": str(w.account_id), "name": "Mine Now"}],
        writes=True,
    ),
    Row(
        StrategiesState.dismiss_token,
        "/strategies",
        cols(LOGIN, OK, OK, OK, OK, OK, LOGIN),  # it only hides the token shown once
        before=(new_token_shown,),
        check=lambda tab, w, result: tab.state(StrategiesState).new_token == "",
    ),
    # /strategies/<the owner's id>
    Row(
        StrategyPageState.set_range,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        args=lambda w, who: ["7D"],
        must_show=STRATEGY_SHOWN,
    ),
    Row(StrategyPageState.resync, "/strategies/[strategy_id]", OWNERS_AND_ADMINS_VIEW, must_show=STRATEGY_SHOWN),
    Row(
        StrategyLiveState.tick,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        args=lambda w, who: [""],
        must_show=STRATEGY_SHOWN,
    ),
    Row(
        DashboardLiveState.tick,
        "/dashboard",
        MEMBERS_OWN_DATA,
        args=lambda w, who: [""],
        must_show=shows(MONEY, to=("owner",)),
    ),
    Row(
        DashboardLiveState.sort_by,
        "/dashboard",
        MEMBERS_OWN_DATA,
        args=lambda w, who: ["All"],
        must_show=shows(OWNER_STRATEGY, to=("owner",)),
    ),
    Row(
        StrategyPageState.newer_page,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        before=(to_page_two,),
        must_show=STRATEGY_SHOWN,
        check=on_page(1),
    ),
    Row(
        StrategyPageState.older_page,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        must_show=STRATEGY_SHOWN,
        check=on_page(2),
    ),
    Row(
        StrategyPageState.show_newest,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        before=(to_page_two,),
        must_show=STRATEGY_SHOWN,
        check=on_page(1),
    ),
    Row(
        StrategyPageState.download_csv,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        check=lambda tab, w, result: f"/api/v1/strategies/{w.strategy_id}/" in (download_url(result) or ""),
    ),
    Row(
        StrategyPerformanceState.set_time_zone,
        "/strategies/[strategy_id]",
        OWNERS_AND_ADMINS_VIEW,
        args=lambda w, who: ["Europe/Paris"],
        must_show=STRATEGY_SHOWN,
    ),
    Row(
        StrategyPerformanceState.confirm,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        args=lambda w, who: [w.flow_at_ms],
        writes=True,
    ),
    Row(
        StrategyPerformanceState.not_a_flow,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        args=lambda w, who: [w.flow_at_ms],
        writes=True,
    ),
    Row(
        StrategyPerformanceState.correct,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        args=lambda w, who: [{"at_ms": str(w.flow_at_ms), "amount": "100"}],
        writes=True,
    ),
    Row(
        StrategyPerformanceState.add_flow,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        args=lambda w, who: [manual_flow(w)],
        writes=True,
    ),
    Row(
        StrategyPerformanceState.remove_flow,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        args=lambda w, who: [w.flow_at_ms // 60_000 * 60_000, "250"],
        before=(manual_flow_added,),
        writes=True,
    ),
    # /admin
    Row(
        AdminState.search_users,
        "/admin",
        MODERATORS_READ,
        args=lambda w, who: [{"search": "ownerby"}],
        must_show=USERS_SHOWN,
    ),
    Row(AdminState.change_page, "/admin", MODERATORS_READ, args=lambda w, who: [1], must_show=USERS_SHOWN),
    # The tab's once-a-minute timer: statuses as of now (its argument, the hidden moment's text, is ignored).
    Row(
        AdminState.refresh_statuses,
        "/admin",
        MODERATORS_READ,
        args=lambda w, who: ["a minute ago"],
        must_show=shows(OWNER_STRATEGY, to=("moderator", "admin")),
    ),
    Row(
        AdminState.set_role,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [w.people["owner"].id, "moderator", True],
        writes=True,
    ),
    Row(
        AdminState.set_disabled, "/admin", ADMINS_CHANGE, args=lambda w, who: [w.people["owner"].id, True], writes=True
    ),
    Row(
        AdminState.issue_reset_link,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [w.people["owner"].id],
        writes=True,
        check=lambda tab, w, result: "/reset/" in tab.state(AdminState).reset_link,
    ),
    # Only hides the reset link this tab was just shown: nothing to refuse (nor to audit) for anyone.
    Row(
        AdminState.close_reset_link,
        "/admin",
        cols(LOGIN, OK, OK, OK, MOD_READ, ADMIN, LOGIN),
        check=lambda tab, w, result: tab.state(AdminState).reset_link == "",
    ),
    Row(
        AdminState.grant_membership,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [{"user_id": str(w.people["no_membership"].id), "days": "30", "reason": "matrix"}],
        writes=True,
    ),
    Row(
        AdminState.end_membership,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [{"user_id": str(w.people["owner"].id), "reason": "matrix"}],
        writes=True,
    ),
    Row(
        AdminState.set_invite_uses,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [{"invitation_id": str(w.people["owner"].invitation_id), "uses": "9", "reason": "matrix"}],
        writes=True,
    ),
    Row(
        AdminState.set_invite_disabled,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [w.people["owner"].invitation_id, True],
        writes=True,
    ),
    Row(
        AdminState.create_invite,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [{"user_id": str(w.people["owner"].id), "uses": "2", "reason": "matrix"}],
        writes=True,
    ),
]
# Share links (issue 16): the shared page is anyone's who holds the link, and shows nothing of anyone (no marker:
# percentages only); the owner's section and /admin's tab.
SHARED_SHOWN = {"check": lambda tab, w, result: tab.state(SharedPageState).shown}
ROWS += [
    Row(SharedPageState.open_share, "/share/[token]", ANYONE, is_load=True, **SHARED_SHOWN),
    Row(SharedPageState.set_range, "/share/[token]", ANYONE, args=lambda w, who: ["All"], **SHARED_SHOWN),
    Row(SharedPageState.resync, "/share/[token]", ANYONE, **SHARED_SHOWN),
    Row(SharedPageState.set_time_zone, "/share/[token]", ANYONE, args=lambda w, who: ["Asia/Tokyo"], **SHARED_SHOWN),
    Row(SharedLiveState.tick, "/share/[token]", ANYONE, args=lambda w, who: [""]),  # a tab never shown one: nothing
    Row(
        ShareLinksState.open_links,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        check=lambda tab, w, result: tab.state(ShareLinksState).mine,
    ),
    Row(
        ShareLinksState.create_link,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        args=lambda w, who: [{"label": "Another", "days": "7", "amounts": "on"}],
        writes=True,
        check=lambda tab, w, result: "/share/sh_" in tab.state(ShareLinksState).new_link,
    ),
    Row(
        ShareLinksState.revoke_link,
        "/strategies/[strategy_id]",
        OWNERS_CHANGE_ADMINS_VIEW,
        args=lambda w, who: [w.share_link_id],
        writes=True,
    ),
    # Only hides the link this tab was just shown (the admin's tab shows the owner's strategy page).
    Row(ShareLinksState.dismiss_link, "/strategies/[strategy_id]", cols(LOGIN, OK, OK, OK, OK, ADMIN_VIEW, LOGIN)),
    Row(
        AdminShareLinksState.open_links,
        "/admin",
        ADMINS_CHANGE,
        must_show=shows(owner_email, OWNER_STRATEGY, to=("admin",)),
    ),
    Row(
        AdminShareLinksState.revoke_link,
        "/admin",
        ADMINS_CHANGE,
        args=lambda w, who: [w.share_link_id],
        writes=True,
    ),
]
# The group board (issue 16): every member sees the owner's strategy there under its alias, BOARD_ALIAS, which is
# no marker (percentages only: no name, account, amount or token of the owner's); the disabled user's strategy is
# on it under their name, a marker, which must never show. Only the owner changes their line; moderators and admins
# take it off (audited), anyone else calling that is refused and audited.
BOARD_SHOWN = shows(BOARD_ALIAS, to=("owner", "other_member", "moderator", "admin"))


def board_form(**fields: str) -> Callable[[World, str | None], list]:
    return lambda w, who: [{"strategy_id": str(w.strategy_id), **fields}]


def off_the_board(tab: Tab, world: World) -> object:
    """The owner's strategy taken off the board by whoever acts (only its owner can), to put it on again."""
    return tab.fire(GroupState.leave_board, world.strategy_id)


ROWS += [
    Row(GroupState.open_group, "/group", MEMBERS_OWN_DATA, is_load=True, must_show=BOARD_SHOWN),
    Row(GroupState.tick, "/group", MEMBERS_OWN_DATA, args=lambda w, who: [""], must_show=BOARD_SHOWN),
    Row(GroupState.set_range, "/group", MEMBERS_OWN_DATA, args=lambda w, who: ["7D"], must_show=BOARD_SHOWN),
    # Sorts what the tab holds (a tab that changed user holds nothing until it reads the board again).
    Row(GroupState.sort_by, "/group", MEMBERS_OWN_DATA, args=lambda w, who: ["name"]),
    Row(
        GroupState.join_board,
        "/group",
        OWNERS_ONLY,
        args=board_form(alias="Fresh Heron"),
        before=(off_the_board,),
        writes=True,
        must_show=shows("Fresh Heron", to=("owner",)),
    ),
    Row(
        GroupState.set_alias,
        "/group",
        OWNERS_ONLY,
        args=board_form(alias="Renamed Heron"),
        writes=True,
        must_show=shows("Renamed Heron", to=("owner",)),
    ),
    Row(
        GroupState.leave_board,
        "/group",
        OWNERS_ONLY,
        args=lambda w, who: [w.strategy_id],
        writes=True,
        check=lambda tab, w, result: BOARD_ALIAS not in tab.view(),
    ),
    Row(
        GroupState.take_off,
        "/group",
        cols(LOGIN, MEMBERSHIP, REFUSED, REFUSED, OK, OK, LOGIN),
        args=board_form(reason="matrix"),
        writes=True,
        check=lambda tab, w, result: BOARD_ALIAS not in tab.view(),
    ),
]
# Alerts (issue 17): the owner's rule (on their strategy: its description names it), their webhook and its signing
# secret, and an alert fired for them, read. Only the owner sees or changes them; everyone manages their own channels
# and tests; the bell, on every signed-in page, holds its own user's count only; /admin's tab is for admins.
ALERTS_SHOWN = shows(OWNER_STRATEGY, ALERT_HOOK, to=("owner",))


def owners_rule_edited(world: World) -> dict[str, str]:
    return {
        "rule_id": str(world.alert_rule_id),
        "strategy": str(world.strategy_id),
        "kind": "drawdown",
        "threshold": "20",
    }


def alert_secret(world: World) -> str:
    return next(m.text for m in world.markers if m.kind == ALERT_SECRET)


ROWS += [
    Row(
        AlertsState.open_alerts,
        "/alerts",
        MEMBERS_OWN_DATA,
        is_load=True,
        must_show=shows(OWNER_STRATEGY, ALERT_HOOK, alert_secret, to=("owner",)),
    ),
    Row(AlertsState.tick, "/alerts", MEMBERS_OWN_DATA, args=lambda w, who: [""], must_show=ALERTS_SHOWN),
    Row(
        AlertsState.save_rule,
        "/alerts",
        OWNERS_ONLY,
        args=lambda w, who: [owners_rule_edited(w)],
        writes=True,
    ),
    Row(
        AlertsState.edit_rule,
        "/alerts",
        OWNERS_ONLY,
        args=lambda w, who: [w.alert_rule_id],
        check=lambda tab, w, result: tab.state(AlertsState).editing == w.alert_rule_id,
    ),
    Row(AlertsState.cancel_edit, "/alerts", MEMBERS_OWN_DATA),
    Row(AlertsState.choose_kind, "/alerts", MEMBERS_OWN_DATA, args=lambda w, who: ["balance"]),
    Row(AlertsState.set_paused, "/alerts", OWNERS_ONLY, args=lambda w, who: [w.alert_rule_id, True], writes=True),
    Row(AlertsState.delete_rule, "/alerts", OWNERS_ONLY, args=lambda w, who: [w.alert_rule_id], writes=True),
    # Each their own channels (none but the owner's exist): the owner's webhook removed, the others' made.
    Row(
        AlertsState.save_channels,
        "/alerts",
        MEMBERS_OWN_DATA,
        args=lambda w, who: [{"webhook_url": "", "webhook_preset": "slack"}],
        writes=True,
    ),
    Row(AlertsState.new_secret, "/alerts", MEMBERS_OWN_DATA, writes=True),
    Row(AlertsState.send_test, "/alerts", MEMBERS_OWN_DATA, args=lambda w, who: ["app"], writes=True),
    Row(AlertsState.mark_read, "/alerts", MEMBERS_OWN_DATA),  # the owner's alert is read already: nothing changes
    Row(BellState.tick, "/dashboard", SIGNED_IN, args=lambda w, who: [""]),
    Row(BellState.dismiss, "/dashboard", SIGNED_IN, args=lambda w, who: [1]),  # only hides a toast of the tab's
    Row(
        AdminAlertsState.open_alerts,
        "/admin",
        ADMINS_CHANGE,
        must_show=shows(owner_email, OWNER_STRATEGY, to=("admin",)),
    ),
]
ON_LOAD = {row.page: row.handler for row in ROWS if row.is_load}

# Handlers the matrix does not row, and why:
# - setvar, on every state: Reflex's generic setter, callable from the browser. It only calls a `set_<name>`
#   attribute of the state; auto setters are off (test_setvar_reaches_no_var checks that no var has a setter),
#   so it reaches only the pages' own set_* handlers (rowed here; setvar cannot even run them: it does not
#   await them) and Reflex's set_is_hydrated.
# - hydrate, set_is_hydrated, hydrate_and_load: Reflex's own, on rx.State, not on a page state. They send the
#   tab's state as it is, which is what every cell checks (the tab's whole state, not a delta).
SKIPPED_HANDLERS = {"setvar"}


def expected(row: Row, actor: str) -> Outcome:
    return row.expect[column(actor)]


# The world, arranged once; a fresh copy per cell


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, World]]:
    path = tmp_path_factory.mktemp("authorization-matrix") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        engine = use_app_services(monkeypatch, f"sqlite:///{path}")
        import projectalgo.projectalgo  # noqa: F401 - builds the app: every page and its state exist

        try:
            world = build_world(engine)
        finally:
            release_app_services()
    yield path, world


@pytest.fixture
def cell(
    template: tuple[Path, World], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, World]]:
    source, world = template
    copy_database(source, tmp_path / "cell.db")
    engine = use_app_services(monkeypatch, f"sqlite:///{tmp_path / 'cell.db'}")
    yield engine, world
    release_app_services()


# Page states: the page cells


def arrange_tab(row: Row, actor: str, world: World) -> Tab:
    if actor in ("stale_tab", "signed_out_tab"):
        tab = Tab(world.people["admin"].session_token)
        load_page(tab, world, "/admin")
        load_page(tab, world, "/strategies/[strategy_id]")
        to_page_two(tab, world)
        earlier = [m for m in world.markers if m.kind in ("audit", "data")]
        assert leak_report(tab.view(), [], earlier), "the admin's tab does not show what it should"
        tab.auth.session_token = world.people["other_member"].session_token if actor == "stale_tab" else ""
    else:
        person = world.person(actor)
        tab = Tab(person.session_token if person else "")
        if not row.is_load:
            load_page(tab, world, row.page)
        for step in row.before:
            step(tab, world)
    tab.open(PAGES[row.page](world), row.page)
    return tab


def allowed_markers(outcome: Outcome, who: str | None, world: World, row: Row) -> set[Marker]:
    """What the tab may show for this outcome, acting as `who`."""
    if outcome is SIGNED_OUT:
        return set()
    own_token = {m for m in world.markers if m.kind == "session" and m.owner == who}  # the browser's own storage
    if who in (None, "disabled") or outcome in (LOGIN, REJECTED):
        allowed = own_token
    else:
        allowed = own_token | {m for m in world.markers if m.owner == who and m.kind in SELF_KINDS}
    allowed |= {m for m in world.markers if m.text in row.anyone_sees}
    if outcome is MOD_READ:
        allowed |= {m for m in world.markers if m.kind in ("identity", "strategy")}
    if outcome is ADMIN:
        allowed |= {m for m in world.markers if m.kind not in ("secret", "session", ALERT_SECRET)}
    if outcome in (ADMIN_VIEW, VIEW_ONLY):
        allowed |= {m for m in world.markers if m.owner == "owner" and m.kind in ("strategy", "data")}
    return allowed


def run_cell(row: Row, actor: str, engine: Engine, world: World) -> list[str]:
    """Run one cell; what is wrong with it (nothing: the cell holds)."""
    outcome, who = expected(row, actor), acting(actor)
    tab = arrange_tab(row, actor, world)
    state = tab.state(row.handler.state)
    database, audit = database_state(engine), refusals(engine)
    result = tab.fire(row.handler, *row.args(world, who))
    target, error = redirect_target(result), str(getattr(state, "error", ""))
    problems: list[str] = []

    def expect(condition: bool, problem: str) -> None:
        if not condition:
            problems.append(problem)

    # What happened
    if outcome is LOGIN:
        expect(target is None or target.startswith("/login"), f"sent to {target}")
    if outcome is SIGNED_OUT:
        expect((target or "").startswith("/login"), f"sent to {target}")
        expect(tab.auth.session_token == "", "the tab keeps its sign-in token")
        if who is not None:
            expect(not signed_in_after(world.people[who].session_token), "the sign-in still works")
    if outcome is MEMBERSHIP:
        expect((target or "").startswith("/membership"), f"sent to {target}, not /membership")
    if outcome in (REFUSED, HOME):
        expect((target or "").startswith("/dashboard"), f"sent to {target}, not /dashboard")
    if outcome is REFUSED:
        new = refusals(engine)[len(audit) :]
        expect([by for by, _ in new] == [world.people[who].id], f"audited refusals {new}, not one by the actor")
    if outcome in (NOT_FOUND, VIEW_ONLY):
        expect(not (target or "").startswith(("/login", "/membership")), f"sent to {target}")
        expect(not hasattr(state, "error") or error.startswith("No such"), f"not refused as not found: {error=}")
        expect(download_url(result) is None, f"a download link: {download_url(result)}")
    if outcome is REJECTED:
        expect(target is None and error != "", f"not refused with a message: sent to {target}, {error=}")
    if outcome in SUCCESS - {HOME}:
        wanted = row.redirects_to
        expect(target == wanted or bool(wanted and (target or "").startswith(wanted)), f"sent to {target}")
        expect(error == "", f"{error=}")
    if outcome in SUCCESS:
        view = tab.view()
        missing = [text for text in row.must_show(world, who) if text not in view]
        expect(not missing, f"does not show {missing}")
        expect(row.check is None or row.check(tab, world, result), "the row's success check fails")

    # What changed
    changed = database_state(engine) != database
    if outcome in SUCCESS and row.writes:
        expect(changed, "nothing was written")
    else:
        expect(not changed, "the database changed")
    if outcome not in (REFUSED, LOGIN):
        new = refusals(engine)[len(audit) :]
        expect(not new, f"refusals audited: {new}")

    # What reaches the browser
    allowed = allowed_markers(outcome, who, world, row)
    leaks = leak_report(tab.view(), event_arguments(result), [m for m in world.markers if m not in allowed])
    expect(not leaks, "reaches the browser: " + "; ".join(leaks))
    return problems


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_page_cell(row: Row, actor: str, cell: tuple[Engine, World]) -> None:
    engine, world = cell
    problems = run_cell(row, actor, engine, world)
    assert not problems, f"{row.name} as {actor} (expected {expected(row, actor).name}): " + " | ".join(problems)


# HTTP routes: the API app in process (the routes hold no per-tab state: the two tab columns do not apply)

HTTP_ACTORS = ("anonymous", *PEOPLE)
BOT_BODY = {"data": EXAMPLE_DATA}


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def session_of(world: World, who: str | None) -> str | None:
    return world.people[who].session_token if who else None


def plain(method: str, url: str) -> Callable[[World, str | None], list[Call]]:
    """A request with the person's sign-in token as a bearer token: it must not matter."""
    return lambda world, who: [Call(method, url, bearer(session_of(world, who)))]


def bot_post(path: str) -> Callable[[World, str | None], list[Call]]:
    """The bot route, with the bot token each has: the owner's and the other member's own, the disabled user's
    (their bot is refused with them), and everyone else's sign-in token."""

    def calls(world: World, who: str | None) -> list[Call]:
        token = {
            "owner": world.bot_token,
            "other_member": world.other_bot_token,
            "disabled": world.disabled_bot_token,
        }.get(who or "", session_of(world, who))
        headers = {"Content-Type": "application/json"} | bearer(token)
        return [Call("POST", path, headers, json.dumps(BOT_BODY).encode())]

    return calls


def _link_as(world: World, who: str, page: str = "/strategies/[strategy_id]", strategy_id: int | None = None) -> str:
    tab = Tab(world.people[who].session_token)
    tab.open(f"/strategies/{strategy_id or world.strategy_id}", page)
    tab.fire(StrategyPageState.open_strategy)
    link = download_url(tab.fire(StrategyPageState.download_csv))
    assert link, f"the strategy page gave {who} no download link"
    return link


def _with_query(link: str, **changes: object) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{urlencode(dict(parse_qsl(parts.query)) | {k: str(v) for k, v in changes.items()})}"


def csv_download(world: World, who: str | None) -> list[Call]:
    """The CSV of the owner's strategy: the owner's and an admin's own links; everyone else only has a link
    tampered with (re-signed for nobody), or the owner's link after the owner was disabled."""
    if who in ("owner", "admin"):
        link = _link_as(world, who)
    elif who == "other_member":  # their own link, pointed at the owner's strategy
        own = _link_as(world, who, strategy_id=world.other_strategy_id)
        link = own.replace(f"/strategies/{world.other_strategy_id}/", f"/strategies/{world.strategy_id}/")
    elif who == "disabled":  # a link the owner got, then the owner is disabled
        link = _link_as(world, "owner")
        admin = Tab(world.people["admin"].session_token)
        load_page(admin, world, "/admin")
        assert admin.fire(AdminState.set_disabled, world.people["owner"].id, True) is None
    elif who is None:
        link = _with_query(_link_as(world, "owner"), sig="0" * 64)
    else:  # the owner's link, with the user changed to theirs
        link = _with_query(_link_as(world, "owner"), user=world.people[who].id)
    return [Call("GET", link, bearer(session_of(world, who)))]


def forged_webhook(world: World, who: str | None) -> list[Call]:
    """A payment event granting the member without membership, signed with a secret that is not the app's."""
    intent = {"id": "pi_forged", "object": "payment_intent", "amount": 49_900, "currency": "usd"}
    intent |= {"status": "succeeded", "metadata": {"user_id": str(world.people["no_membership"].id)}}
    body = json.dumps({"id": "evt_forged", "type": "payment_intent.succeeded", "data": {"object": intent}}).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body, "whsec_not_the_apps")}
    return [Call("POST", "/api/v1/stripe/webhook", headers, body)]


def unknown_route(world: World, who: str | None) -> list[Call]:
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return [Call(m, "/api/v1/users", bearer(session_of(world, who))) for m in methods]


def every(status: int | tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return dict.fromkeys(HTTP_ACTORS, status if isinstance(status, tuple) else (status,))


def http_cols(**statuses: int | tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {who: s if isinstance(s, tuple) else (s,) for who, s in statuses.items()}


BOTS = http_cols(
    anonymous=401, no_membership=401, owner=201, other_member=201, moderator=401, admin=401, disabled=(401, 403)
)


@dataclass(frozen=True)
class HttpRow:
    path: str  # as the API declares it
    methods: tuple[str, ...]  # as the route lists them (HEAD aside), or ANY
    calls: Callable[[World, str | None], list[Call]]
    expect: dict[str, tuple[int, ...]]  # the status each actor gets


HTTP_ROWS = [
    HttpRow("/api/v1/health", ("GET",), plain("GET", "/api/v1/health"), every(200)),
    HttpRow("/api/v1/health/live", ("GET",), plain("GET", "/api/v1/health/live"), every(200)),
    HttpRow("/api/v1/health/ready", ("GET",), plain("GET", "/api/v1/health/ready"), every(200)),
    HttpRow("/api/openapi.json", ("GET",), plain("GET", "/api/openapi.json"), every(200)),
    HttpRow("/api/docs", ("GET",), plain("GET", "/api/docs"), every(200)),
    HttpRow("/api/v1/strategy/", ("POST",), bot_post("/api/v1/strategy/"), BOTS),
    HttpRow("/api/v1/strategy", ("POST",), bot_post("/api/v1/strategy"), BOTS),
    HttpRow(
        "/api/v1/strategies/{strategy_id}/snapshots.csv",
        ("GET",),
        csv_download,
        http_cols(
            anonymous=403, no_membership=403, owner=200, other_member=403, moderator=403, admin=200, disabled=(403, 404)
        ),
    ),
    HttpRow("/api/v1/stripe/webhook", ("POST",), forged_webhook, every(400)),
    HttpRow("/api/{path:path}", ("ANY",), unknown_route, every(404)),
]


def send(calls: list[Call]) -> list[httpx.Response]:
    """The requests, in order, to the API built in this process on the cell's services."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=build_api(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:3999") as client:
            return [await client.request(c.method, c.url, headers=c.headers, content=c.body) for c in calls]

    with ThreadPoolExecutor(max_workers=1) as thread:  # its own event loop, as the states' calls have
        return thread.submit(anyio.run, run).result()


def snapshot_counts(world: World) -> dict[int, int]:
    store = services().snapshot_store
    return {
        sid: len(store.recent(sid, ALL_TIME_END_MS, limit=10_000))
        for sid in (world.strategy_id, world.other_strategy_id)
    }


@pytest.mark.parametrize("actor", HTTP_ACTORS)
@pytest.mark.parametrize("row", HTTP_ROWS, ids=lambda row: row.path)
def test_http_cell(row: HttpRow, actor: str, cell: tuple[Engine, World]) -> None:
    engine, world = cell
    who = acting(actor)
    calls = row.calls(world, who)
    database, counts = database_state(engine), snapshot_counts(world)
    answers = send(calls)
    problems = [
        f"{c.method} answered {a.status_code} {a.text[:120]}"
        for c, a in zip(calls, answers, strict=True)
        if a.status_code not in row.expect[actor]
    ]
    stored = {sid: n - counts[sid] for sid, n in snapshot_counts(world).items() if n != counts[sid]}
    own = {"owner": world.strategy_id, "other_member": world.other_strategy_id}.get(actor)
    if {a.status_code for a in answers} == {201}:
        if stored != {own: 1}:
            problems.append(f"stored {stored}, not one snapshot in the actor's own strategy")
    elif database_state(engine) != database:
        problems.append("the database changed")
    # Only a CSV download the owner or an admin may have holds anything of anyone: the owner's strategy.
    csv_allowed = row.path.endswith(".csv") and actor in ("owner", "admin")
    forbidden = [
        m for m in world.markers if not (csv_allowed and m.owner == "owner" and m.kind in ("strategy", "data"))
    ]
    for answer in answers:
        if leaks := leak_report("{}", [answer.text, str(answer.headers)], forbidden):
            problems.append(f"the answer holds {leaks}")
    assert not problems, f"{row.path} as {actor}: " + " | ".join(problems)


# The table covers the app: a new handler, page or route without a row fails here


def page_states(cls: type[rx.State] = rx.State) -> Iterator[type[rx.State]]:
    for sub in cls.get_substates():
        if sub.__module__.startswith("projectalgo"):
            yield sub
        yield from page_states(sub)


def test_every_event_handler_of_every_page_state_has_a_row(template: tuple[Path, World]) -> None:
    handlers = {
        (cls.__name__, name) for cls in page_states() for name in cls.event_handlers if name not in SKIPPED_HANDLERS
    }
    rowed = {(row.handler.state.__name__, row.handler.fn.__name__) for row in ROWS}
    assert handlers - rowed == set(), "handlers without a row"
    assert rowed - handlers == set(), "rows for handlers the app no longer has"


def test_every_page_and_its_load_has_a_row(template: tuple[Path, World]) -> None:
    from projectalgo.projectalgo import app

    # Reflex 0.10 lists the pages only in this attribute; each keeps its on_load handlers.
    pages = {"/" + ("" if route == "index" else route): page.on_load for route, page in app._unevaluated_pages.items()}
    loads = {
        route: sorted(f"{h.state.__name__}.{h.fn.__name__}" for h in (on if isinstance(on, list) else [on]) if h)
        for route, on in pages.items()
    }
    rowed = {row.page: [f"{row.handler.state.__name__}.{row.handler.fn.__name__}"] for row in ROWS if row.is_load}
    assert loads == rowed
    assert set(PAGES) == set(pages)


def api_routes(routes: list, prefix: str = "") -> Iterator[tuple[str, tuple[str, ...]]]:
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's included router
            yield from api_routes(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "routes"):  # a mount
            yield from api_routes(route.routes, prefix + route.path)
        else:  # a route of no methods listed takes every method
            yield prefix + route.path, tuple(sorted(set(route.methods or {"ANY"}) - {"HEAD"}))


def test_every_http_route_has_a_row(template: tuple[Path, World]) -> None:
    assert dict(api_routes(build_api().routes)) == {row.path: row.methods for row in HTTP_ROWS}


def test_setvar_reaches_no_var() -> None:
    """The browser's setvar(name, value) calls `set_<name>`: no var of a page state has one (but Reflex's own
    is_hydrated)."""
    setters = {
        f"{cls.__name__}.set_{name}"
        for cls in page_states()
        for name in (*cls.get_fields(), *cls.computed_vars)
        if hasattr(cls, f"set_{name}") and name != "is_hydrated"
    }
    assert setters == set()


def test_matrix_size(record_property: Callable[[str, object], None]) -> None:
    state_cells, http_cells = len(ROWS) * len(ACTORS), len(HTTP_ROWS) * len(HTTP_ACTORS)
    record_property("matrix_cells", state_cells + http_cells)
    print(f"\nauthorization matrix: {len(ROWS)} rows x {len(ACTORS)} actors = {state_cells} page cells, ", end="")
    print(f"{len(HTTP_ROWS)} routes x {len(HTTP_ACTORS)} actors = {http_cells} HTTP cells")
    assert state_cells + http_cells > 0
