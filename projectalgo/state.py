"""The shared base state: who is signed in, checked against the database on every load and event.

Every public var here reaches the browser. Only the signed-in user's own name, email, roles and invite
code are public; the user id lives in a backend var (leading underscore) and is never sent.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import reflex as rx
from reflex.event import Event, EventSpec
from reflex.middleware.middleware import Middleware
from reflex.state import BaseState
from reflex.utils.format import format_event_handler
from sqlalchemy.orm import Session

from projectalgo import members, memberships
from projectalgo.db import session_scope
from projectalgo.errors import SOMETHING_WRONG, DomainError
from projectalgo.live import Viewer
from projectalgo.live_push import live_push
from projectalgo.models import id_of
from projectalgo.runtime import password_threads, services

T = TypeVar("T")
ui_log = logging.getLogger("projectalgo.ui")

if TYPE_CHECKING:
    from typing import TypeVarTuple

    from reflex.event import EventCallback

    _Args = TypeVarTuple("_Args")

    def event_handler(fn: Callable[[Any, *_Args], Any], /) -> EventCallback[*_Args]:
        """rx.event as type checkers should see it: mypy takes rx.event(...) for an EventNamespace, as its
        __new__ returns what is not an instance of the class (an EventCallback, which Reflex's types declare)."""
        ...
else:
    event_handler = rx.event  # decorate page states' event handlers with it: the same rx.event at run time


async def _in_session_on(executor: Executor | None, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with session_scope(services().engine) as session:
            return work(session)

    return await asyncio.get_running_loop().run_in_executor(executor, run)


async def in_session(work: Callable[[Session], T]) -> T:
    """Run `work` in one committed-or-rolled-back database session, in a thread (off the event loop)."""
    return await _in_session_on(None, work)


async def in_password_session(work: Callable[[Session], T]) -> T:
    """As in_session, for work that hashes or checks a password: on the bounded password threads."""
    return await _in_session_on(password_threads, work)


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    email: str
    roles: tuple[str, ...]
    membership_active: bool
    login_session_id: int

    @property
    def actor(self) -> members.Actor:
        return members.Actor(self.id, self.roles)

    @property
    def identity(self) -> tuple[int, int, tuple[str, ...], bool]:
        """What a tab's data was loaded for: when any of it changes, the tab's pages are emptied."""
        return self.login_session_id, self.id, self.roles, self.membership_active


def idle_limit() -> timedelta:
    return timedelta(minutes=services().settings.session_idle_minutes)


def _page_states(cls: type[rx.State]) -> Iterator[type[rx.State]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _page_states(sub)


def login_url(path: str) -> str:
    """/login, remembering where to come back to (the static build serves pages with a trailing slash)."""
    path = path.rstrip("/")
    return f"/login?next={quote(path, safe='')}" if path and path != "/login" else "/login"


def failure_message(error: Exception) -> str:
    """What a page shows when an action failed: a domain refusal's own message; for anything else, which is
    a fault and never shown, a generic text (the fault is logged with its traceback)."""
    if isinstance(error, DomainError):
        return error.message
    ui_log.exception("ui.action_failed error=%s", type(error).__name__, exc_info=error)
    return SOMETHING_WRONG


def unhandled_event_error(exception: Exception) -> EventSpec:
    """rx.App(backend_exception_handler=...): an error no handler caught is shown as failure_message says, in
    development too, never as its own text."""
    return rx.toast.error(failure_message(exception), id="backend_error", position="top-center")


class AuthState(rx.State):
    # The browser's own sign-in token; the database holds only its hash. Synced so sign-out reaches every tab.
    session_token: str = rx.LocalStorage("", name="projectalgo_session", sync=True)
    user_name: rx.Field[str] = rx.field("")
    user_email: rx.Field[str] = rx.field("")
    user_roles: rx.Field[list[str]] = rx.field(default_factory=list)
    invite_code: rx.Field[str] = rx.field("")
    invite_uses_left: rx.Field[int] = rx.field(0)
    invite_uses_default: rx.Field[int] = rx.field(0)
    membership_exempt: rx.Field[bool] = rx.field(False)
    membership_ends_at: rx.Field[str] = rx.field("")  # ISO 8601 UTC, shown in the viewer's time zone
    _user: CurrentUser | None = None
    # Whom this tab's page states were filled for (CurrentUser.identity), None before anyone.
    _identity: tuple | None = None
    # The tab's sign-in ended because its user was disabled: the sign-in page says so.
    _disabled: bool = False

    @rx.var
    def signed_in(self) -> bool:
        return bool(self.user_email)

    @rx.var
    def is_admin(self) -> bool:
        return "admin" in self.user_roles

    @rx.var
    def is_moderator(self) -> bool:
        return "moderator" in self.user_roles or "admin" in self.user_roles

    @rx.var
    def invite_link(self) -> str:
        return f"{services().settings.public_url}/invite/{self.invite_code}" if self.invite_code else ""

    async def _current_user(self, *, after_own_change: bool = False) -> CurrentUser | None:
        """Resolve the browser's token against the database now (a revoked session or disabled user ends here).

        Once per event: TabGuard resolves it before the handler runs, and the handler gets that answer again.
        `after_own_change`: this event's handler just changed its own user's membership or roles (the same
        sign-in): read them again, and keep the tab, which was filled for this very user.
        """
        token, idle = self.session_token, idle_limit()
        resolved = _resolved_this_event.get()
        if after_own_change:
            self._identity = None
        elif resolved is not None and resolved[0] == token:
            return resolved[1]

        def load(session: Session) -> tuple[CurrentUser, memberships.MembershipStatus, int, str] | bool:
            """The signed-in user and their page data, else whether the token's user has been disabled."""
            signed_in = members.user_for_session(session, token, idle=idle)
            if signed_in is None:
                return members.disabled_user_session(session, token)
            user = signed_in.user
            invitation = members.own_invitation(session, id_of(user))
            membership = memberships.status(session, user)
            current = CurrentUser(
                id_of(user), user.name, user.email, tuple(user.roles), membership.active, signed_in.login_session_id
            )
            uses_left, code = (invitation.uses_remaining, invitation.code) if invitation else (0, "")
            return current, membership, uses_left, code

        loaded = await in_session(load) if token else False
        if isinstance(loaded, bool):
            await self._forget_user()
            self._disabled = loaded
            return None
        user, membership, uses_left, code = loaded
        if after_own_change:
            _resolved_this_event.set((token, user))
        if self._identity not in (None, user.identity):  # another user, or a lost role or membership
            await self._empty_tab()
        self._user, self._identity, self._disabled = user, user.identity, False
        self.user_name, self.user_email, self.user_roles = user.name, user.email, list(user.roles)
        self.invite_code, self.invite_uses_left = code, uses_left
        self.invite_uses_default = services().settings.invite_default_uses
        self.membership_exempt = membership.exempt
        self.membership_ends_at = membership.ends_at.isoformat() if membership.ends_at else ""
        return user

    def _viewer(self) -> Viewer | None:
        """Whom this tab shows its pages to now (each live push checks it is still whom it was registered for)."""
        return Viewer.login(self._user.login_session_id) if self._user else None

    async def _forget_user(self) -> None:
        """Nobody is signed in on this tab (any more): empty every page it showed and stop its live updates."""
        if self._identity is not None:
            await self._empty_tab()
        self._user = self._identity = None
        self.user_name = self.user_email = self.invite_code = self.membership_ends_at = ""
        self.user_roles = []
        self.invite_uses_left = 0
        self.membership_exempt = False

    async def _empty_tab(self) -> None:
        """Reset every page state of this tab to its defaults and forget its live registrations, so nothing
        loaded for one user (or role, or membership) is ever sent to the browser for another."""
        live_push.forget(self.router.session.client_token)
        for page_state in _page_states(AuthState):
            (await self.get_state(page_state)).reset()
        self._identity = None

    def _to_login(self) -> EventSpec:
        if self._disabled:
            return rx.redirect("/login?disabled=1")
        return rx.redirect(login_url(self.router.url.path))

    async def _member(self) -> CurrentUser | EventSpec:
        """The signed-in user with an active membership, or where to send them instead."""
        user = await self._current_user()
        if user is None:
            return self._to_login()
        if not user.membership_active:  # /membership says why it was sent here (pages/membership.py)
            return rx.redirect(f"/membership?from={quote(self.router.url.path.rstrip('/') or '/', safe='')}")
        return user

    async def _signed_in(self) -> CurrentUser | EventSpec:
        """The signed-in user, or the sign-in page to send them to."""
        user = await self._current_user()
        return self._to_login() if user is None else user


Guarded = Callable[..., Awaitable[Any]]


def _runs_as(
    resolve: Callable[[AuthState], Awaitable[CurrentUser | EventSpec]],
) -> Callable[[Guarded], Guarded]:
    def guard(handler: Guarded) -> Guarded:
        @functools.wraps(handler)
        async def guarded(self: AuthState, *args: object, **kwargs: object) -> object:
            user = await resolve(self)
            if not isinstance(user, CurrentUser):
                return user
            return await handler(self, user, *args, **kwargs)

        # Reflex reads an event handler's arguments from its signature and annotations: the user is not one.
        signature = inspect.signature(handler)
        state, user, *arguments = signature.parameters.values()
        # inspect.signature reads __signature__, which function types do not declare.
        guarded.__signature__ = signature.replace(parameters=[state, *arguments])  # type: ignore[attr-defined]
        guarded.__annotations__ = {k: v for k, v in handler.__annotations__.items() if k != user.name}
        return guarded

    return guard


# Decorate a page state's method whose second parameter is the user: it runs only for a signed-in member
# (anyone else is sent to sign in or to /membership, AuthState._member) or any signed-in user (signed_in).
# Every members-only page load and event goes through one of them, so a revoked session, a disabled user or an
# ended membership takes effect at the next click, whatever the browser shows.
members_only = _runs_as(AuthState._member)
signed_in = _runs_as(AuthState._signed_in)


class TabGuard(Middleware):
    """Runs before every event of every tab (app.add_middleware), so that no handler can forget it.

    A page load (hydrate) sends the tab's whole state to the browser: every page state is emptied first, and
    the page's on_load fills in what the user signed in now may see. Any other event first checks who is
    signed in now, which empties the tab when that changed (AuthState._current_user).
    """

    async def preprocess(self, app: rx.App, state: BaseState, event: Event) -> None:
        _resolved_this_event.set(None)
        auth = await state.get_state(AuthState)
        if event.name in _page_loads():
            await auth._empty_tab()
            await auth._forget_user()
        else:
            _resolved_this_event.set((auth.session_token, await auth._current_user()))


# Who TabGuard found signed in for the event being processed (the preprocess and the handler of one event run in
# one context), so that the handler does not ask the database again. Set anew before every event.
_resolved_this_event: ContextVar[tuple[str, CurrentUser | None] | None] = ContextVar(
    "resolved_this_event", default=None
)


@functools.cache
def _page_loads() -> frozenset[str]:
    return frozenset(format_event_handler(rx.State.event_handlers[n]) for n in ("hydrate", "hydrate_and_load"))


class MemberActionsMixin(rx.State, mixin=True):
    """For members' pages (subclassing it and AuthState) that change the member's own data:
    one way to run an action on the server and report its outcome."""

    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")
    # The object whose edit was just refused: its dialog stays open and says why.
    refused_id: rx.Field[int] = rx.field(0)

    async def _reload(self, member: CurrentUser) -> None:
        """Refresh the page's lists for `member` (each page defines it)."""
        raise NotImplementedError

    @members_only
    async def _act(
        self,
        member: CurrentUser,
        work: Callable[[Session, members.Actor], T],
        done: Callable[[T], str],
        then: Callable[[T], None] | None = None,
    ) -> EventSpec | None:
        """Check membership on the server, run `work` in one transaction as this member, show the outcome.

        `work` reads the browser's input (forms) and raises a DomainError to refuse; nothing is written then,
        nor on any other exception. On success the notice is `done` of what `work` returned, and `then` receives
        it too.
        """
        self.refused_id = 0  # any outcome replaces the last refusal
        try:
            result = await in_session(lambda session: work(session, member.actor))
        except Exception as error:  # noqa: BLE001 - failure_message logs what is not a refusal
            self.error, self.notice = failure_message(error), ""
        else:
            self.error, self.notice = "", done(result)
            if then is not None:
                then(result)
        await self._reload(member)
        return None

    @members_only
    async def _open(self, member: CurrentUser) -> EventSpec | None:
        """on_load: check membership and load the page's lists."""
        self.error = self.notice = ""
        await self._reload(member)
        return None
