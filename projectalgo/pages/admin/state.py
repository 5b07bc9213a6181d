"""/admin's state: what the page shows and every change an admin makes there.

Admins only; moderators see users and strategies read-only. Each event checks the role on the server
(admin.py); a refused call — say, a member calling an admin event directly — is recorded in the audit log, a
few times a minute per tab and per caller at most. Event arguments arrive as the browser sent them, whatever
their annotations: each handler reads them with admin's parsers, so a tampered one gets a message.
A password reset link an admin issues is shown once, in a dialog, and forgotten at their next click.
The strategies' statuses follow the clock: `refresh_statuses`, sent once a minute by the page's timer, re-reads
the strategies (checking the role again) and recomputes each status with liveness.status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.orm import Session

from projectalgo import admin, charts, forms, liveness
from projectalgo.clock import iso, utcnow
from projectalgo.errors import NotAllowedError
from projectalgo.members import Actor
from projectalgo.pages.group import announce_board_changed
from projectalgo.runtime import services
from projectalgo.snapshots import epoch_ms
from projectalgo.state import AuthState, event_handler, failure_message, in_session


@dataclass
class UserRow:
    id: int
    name: str
    email: str
    roles: str
    is_moderator: bool
    is_admin: bool
    membership_ends_at: str
    created_at: str
    last_sign_in_at: str
    disabled: bool


@dataclass
class InviteRow:
    id: int
    code: str
    owner: str
    uses_remaining: int
    registrations: int
    disabled: bool


@dataclass
class PaymentRow:
    created_at: str
    user_email: str
    amount: str
    status: str
    stripe_id: str


@dataclass
class OwnedStrategyRow:
    id: int
    name: str
    owner_email: str
    account_name: str
    last_snapshot_at: str
    status: str


@dataclass
class AuditRow:
    at: str
    actor: str
    action: str
    target: str
    reason: str
    outcome: str


@dataclass
class Figure:
    outcome: str
    count: int


def _strategy_rows(session: Session, actor: Actor) -> list[OwnedStrategyRow]:
    now, settings = epoch_ms(utcnow()), services().settings
    return [
        OwnedStrategyRow(
            s.id,
            s.name,
            s.owner_email,
            s.account_name,
            iso(s.last_snapshot_at),
            "archived"
            if s.archived
            else liveness.status(epoch_ms(s.last_snapshot_at) if s.last_snapshot_at else None, now, settings),
        )
        for s in admin.list_strategies(session, actor)
    ]


def _reason(form: object) -> str:
    return forms.form_text(form, "reason", max_length=admin.REASON_MAX_LENGTH, label="The reason")


SECTIONS = frozenset({"users", "strategies", "invites", "payments", "audit"})
INVITES = frozenset({"invites"})


@dataclass(frozen=True)
class Seen:
    """What _read found, by section; None for a section not read."""

    users: tuple[list[UserRow], int] | None = None  # a page of them, and how many match
    strategies: list[OwnedStrategyRow] | None = None
    invites: list[InviteRow] | None = None
    payments: list[PaymentRow] | None = None
    audit: list[AuditRow] | None = None


def _read(session: Session, actor: Actor, sections: frozenset[str], search: str, page: int) -> Seen:
    """The sections asked for, as far as the actor may see them: moderators users and strategies, admins all."""
    users = strategies = invites = payments = audit = None
    if "users" in sections:
        rows, total = admin.list_users(session, actor, search=search, page=page)
        lines = [
            UserRow(
                u.id,
                u.name,
                u.email,
                ", ".join(u.roles),
                "moderator" in u.roles,
                "admin" in u.roles,
                iso(u.membership_ends_at),
                iso(u.created_at),
                iso(u.last_sign_in_at),
                u.disabled,
            )
            for u in rows
        ]
        users = (lines, total)
    if "strategies" in sections:
        strategies = _strategy_rows(session, actor)
    if actor.is_admin and "invites" in sections:
        invites = [
            InviteRow(i.id, i.code, f"{i.owner_name} <{i.owner_email}>", i.uses_remaining, i.registrations, i.disabled)
            for i in admin.list_invites(session, actor)
        ]
    if actor.is_admin and "payments" in sections:
        payments = [
            PaymentRow(
                iso(p.created_at), p.user_email, f"{p.amount / 100:,.2f} {p.currency.upper()}", p.status, p.stripe_id
            )
            for p in admin.list_payments(session, actor)
        ]
    if actor.is_admin and "audit" in sections:
        audit = [
            AuditRow(iso(a.at), a.actor, a.action, a.target, a.reason, a.outcome)
            for a in admin.audit_log(session, actor)
        ]
    return Seen(users, strategies, invites, payments, audit)


@dataclass(frozen=True)
class Change:
    """One admin change as a handler plans it from the browser's arguments, for AdminState._act."""

    action: str  # for the audit log: no browser text beyond what admin.role_action lets through
    target: str
    work: Callable[[Session, Actor | None], object]  # refuses (NotAllowedError) whom the role does not allow
    done: str  # the notice once done
    then: Callable[[object], None] | None = None  # receives what `work` returned
    shows: frozenset[str] = frozenset({"users"})  # the sections it changes (and the audit log, always)


class AdminState(AuthState):
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")
    search: rx.Field[str] = rx.field("")
    page: rx.Field[int] = rx.field(1)
    total_users: rx.Field[int] = rx.field(0)
    users: rx.Field[list[UserRow]] = rx.field(default_factory=list)
    invites: rx.Field[list[InviteRow]] = rx.field(default_factory=list)
    payments: rx.Field[list[PaymentRow]] = rx.field(default_factory=list)
    strategies: rx.Field[list[OwnedStrategyRow]] = rx.field(default_factory=list)
    ingest_figures: rx.Field[list[Figure]] = rx.field(default_factory=list)
    audit: rx.Field[list[AuditRow]] = rx.field(default_factory=list)
    # A password reset link just issued, shown to this admin until their next click; never kept longer.
    reset_link: rx.Field[str] = rx.field("")
    reset_link_for: rx.Field[str] = rx.field("")
    _refusal_budget: admin.RefusalBudget = admin.RefusalBudget()
    _statuses_read_at: float = 0.0  # wall-clock seconds: the tab may move between workers

    async def _actor(self) -> Actor | None:
        user = await self._current_user()
        return user.actor if user else None

    async def _reload(self, actor: Actor, sections: frozenset[str] = SECTIONS) -> None:
        """Read again what this actor may see of `sections` (moderators: users and strategies; admins all), in a
        thread; the page's vars are set here, on the event loop."""
        search, page = self.search, self.page
        seen = await in_session(lambda session: _read(session, actor, sections, search, page))
        if seen.users is not None:
            self.users, self.total_users = seen.users
        if seen.strategies is not None:
            self.strategies = seen.strategies
            self._statuses_read_at = time.time()
        if seen.invites is not None:
            self.invites = seen.invites
        if seen.payments is not None:
            self.payments = seen.payments
        if seen.audit is not None:
            self.audit = seen.audit
        figures = await asyncio.to_thread(services().ingest_stats.last_hour)  # Redis, with several workers
        self.ingest_figures = [Figure(k, v) for k, v in figures.items()]

    async def _refuse(self, actor: Actor | None, action: str, target: str) -> EventSpec:
        """End the visit of someone who may not do this; audited a few times a minute per tab and per actor."""
        budget = self._refusal_budget.take(time.time())
        recorded = False
        if budget is not None:
            self._refusal_budget = budget
            recorded = await in_session(lambda session: admin.record_refusal(session, actor, action, target))
        if not recorded:
            tab = self.router.session.client_token
            self._refusal_budget = self._refusal_budget.skip(actor=actor, action=action, tab=tab)
        self._clear()
        return rx.redirect("/dashboard" if actor else "/login?next=%2Fadmin")

    def _clear(self) -> None:
        self.users, self.invites, self.payments, self.strategies, self.audit = [], [], [], [], []
        self.ingest_figures, self.total_users = [], 0
        self.reset_link = self.reset_link_for = ""

    async def _act(self, action: str, plan: Callable[[], Change]) -> EventSpec | None:
        """Run one admin change as the signed-in user; refusals by role are audited and end the visit.

        `plan` reads the browser's arguments (forms.InputError when they are not what the page sends); `action`
        names the change in the audit log when they cannot be read.
        """
        self.reset_link = self.reset_link_for = ""
        actor = await self._actor()
        try:
            change = plan()
        except forms.InputError as problem:
            if actor is None or not actor.is_admin:
                return await self._refuse(actor, action, "")
            self.error, self.notice = failure_message(problem), ""
            await self._reload(actor)
            return None
        try:
            result = await in_session(lambda session: change.work(session, actor))
        except NotAllowedError:  # by role
            return await self._refuse(actor, change.action, change.target)
        except Exception as problem:  # noqa: BLE001 - failure_message logs what is not a refusal
            self.error, self.notice = failure_message(problem), ""
        else:
            self.error, self.notice = "", change.done
            if change.then is not None:
                change.then(result)
        if actor is None:  # `work` refused them above: every admin change needs a signed-in admin
            return await self._refuse(actor, change.action, change.target)
        await self._reload(actor, change.shows | {"audit"})
        return None

    @event_handler
    async def open_admin(self) -> EventSpec | None:
        actor = await self._actor()
        self.error = self.notice = ""
        if actor is None:
            return self._to_login()
        if not actor.is_moderator:
            return await self._refuse(actor, "open admin page", "/admin")
        self._clear()
        await self._reload(actor)
        return None

    async def _browse(self, action: str, read: Callable[[], None]) -> EventSpec | None:
        """A moderator's change of what the page shows; `read` takes the browser's input (forms.InputError)."""
        self.reset_link = self.reset_link_for = ""
        actor = await self._actor()
        if actor is None or not actor.is_moderator:
            return await self._refuse(actor, action, "")
        try:
            read()
        except forms.InputError as problem:
            self.error, self.notice = failure_message(problem), ""
        else:
            self.error = ""
        await self._reload(actor, frozenset({"users"}))
        return None

    @event_handler
    async def refresh_statuses(self, _shown: str) -> EventSpec | None:
        """The tab's timer (the hidden moment's text is ignored): statuses and ingestion figures as of now.

        Not a click: the error, notice and a reset link being shown stay. A tick right after the page loaded
        (the timer's first, on mount) reads nothing."""
        actor = await self._actor()
        if actor is None or not actor.is_moderator:
            return await self._refuse(actor, "refresh statuses", "")
        if time.time() - self._statuses_read_at < charts.TICK_MS / 2000:
            return None
        await self._reload(actor, frozenset({"strategies"}))  # and the ingestion figures
        return None

    @event_handler
    async def search_users(self, form: dict[str, str]) -> EventSpec | None:
        def read() -> None:
            search = forms.form_text(form, "search", max_length=admin.SEARCH_MAX_LENGTH, label="The search")
            self.search, self.page = search, 1

        return await self._browse("search users", read)

    @event_handler
    async def change_page(self, step: int) -> EventSpec | None:
        def read() -> None:
            if type(step) is not int or step not in (-1, 1):
                raise forms.InputError(forms.FORM_NOT_UNDERSTOOD)
            last = max(1, -(-self.total_users // admin.PAGE_SIZE))
            self.page = min(max(1, self.page + step), last)

        return await self._browse("page users", read)

    @event_handler
    async def set_role(self, user_id: int, role: str, grant: bool) -> EventSpec | None:
        def plan() -> Change:
            uid, flag = forms.parse_id(user_id), forms.parse_flag(grant)
            checked = role if role in admin.MANAGED_ROLES else ""
            return Change(
                admin.role_action(role, grant),
                f"user {uid}",
                lambda session, actor: admin.set_role(session, actor, user_id=uid, role=checked, grant=flag),
                f"Role {checked} {'granted' if flag else 'removed'}.",
            )

        return await self._act(admin.role_action(role, grant), plan)

    @event_handler
    async def set_disabled(self, user_id: int, disabled: bool) -> EventSpec | None:
        def plan() -> Change:
            uid, flag = forms.parse_id(user_id), forms.parse_flag(disabled)
            return Change(
                "disable user" if flag else "enable user",
                f"user {uid}",
                lambda session, actor: admin.set_disabled(session, actor, user_id=uid, disabled=flag),
                "User disabled: their sessions ended and their bots are refused." if flag else "User enabled.",
                then=done.append,
            )

        done: list[object] = []
        outcome = await self._act("disable or enable user", plan)
        if done:  # their strategies leave (or come back to) the group board: open boards read it again
            await announce_board_changed()
        return outcome

    @event_handler
    async def issue_reset_link(self, user_id: int) -> EventSpec | None:
        """A one-time password reset link for the user, shown to this admin once (until their next click)."""
        public_url = services().settings.public_url

        def plan() -> Change:
            uid = forms.parse_id(user_id)

            def show(token: object) -> None:
                shown = next((u.email for u in self.users if u.id == uid), "")
                self.reset_link, self.reset_link_for = f"{public_url}/reset/{token}", shown or f"user {uid}"

            return Change(
                "issue password reset link",
                f"user {uid}",
                lambda session, actor: admin.issue_password_reset(session, actor, user_id=uid),
                "Reset link issued: copy it now, it is shown only once.",
                show,
            )

        return await self._act("issue password reset link", plan)

    @event_handler
    async def close_reset_link(self) -> None:
        self.reset_link = self.reset_link_for = ""

    @event_handler
    async def grant_membership(self, form: dict[str, str]) -> EventSpec | None:
        def plan() -> Change:
            uid, reason = forms.form_id(form, "user_id"), _reason(form)
            days = forms.form_number(form, "days", label="Days")
            return Change(
                "grant membership",
                f"user {uid}",
                lambda session, actor: admin.grant_membership(session, actor, user_id=uid, days=days, reason=reason),
                f"Membership extended by {admin.plural(days, 'day')}.",
            )

        return await self._act("grant membership", plan)

    @event_handler
    async def end_membership(self, form: dict[str, str]) -> EventSpec | None:
        def plan() -> Change:
            uid, reason = forms.form_id(form, "user_id"), _reason(form)
            return Change(
                "end membership",
                f"user {uid}",
                lambda session, actor: admin.end_membership(session, actor, user_id=uid, reason=reason),
                "Membership ended.",
                then=done.append,
            )

        done: list[object] = []
        outcome = await self._act("end membership", plan)
        if done:  # their strategies leave the group board: open boards read it again
            await announce_board_changed()
        return outcome

    @event_handler
    async def set_invite_uses(self, form: dict[str, str]) -> EventSpec | None:
        def plan() -> Change:
            iid, reason = forms.form_id(form, "invitation_id"), _reason(form)
            uses = forms.form_number(form, "uses", label="Uses")
            return Change(
                "set invite uses",
                f"invitation {iid}",
                lambda session, actor: admin.set_invite_uses(
                    session, actor, invitation_id=iid, uses=uses, reason=reason
                ),
                "Invitation updated.",
                shows=INVITES,
            )

        return await self._act("set invite uses", plan)

    @event_handler
    async def set_invite_disabled(self, invitation_id: int, disabled: bool) -> EventSpec | None:
        def plan() -> Change:
            iid, flag = forms.parse_id(invitation_id), forms.parse_flag(disabled)
            return Change(
                "disable invite" if flag else "enable invite",
                f"invitation {iid}",
                lambda session, actor: admin.set_invite_disabled(session, actor, invitation_id=iid, disabled=flag),
                "Invitation disabled." if flag else "Invitation enabled.",
                shows=INVITES,
            )

        return await self._act("disable or enable invite", plan)

    @event_handler
    async def create_invite(self, form: dict[str, str]) -> EventSpec | None:
        def plan() -> Change:
            uid, reason = forms.form_id(form, "user_id"), _reason(form)
            uses = forms.form_number(form, "uses", label="Uses")
            return Change(
                "create invite",
                f"user {uid}",
                lambda session, actor: admin.create_invite(session, actor, user_id=uid, uses=uses, reason=reason),
                "Invitation created.",
                shows=INVITES,
            )

        return await self._act("create invite", plan)
