"""/membership: the price, what it gives, the signed-in user's own membership and payments, and paying by card.

Paying (see integrations/stripe.py for why in this order): "Pay" makes a card set-up on the server; Stripe.js
(assets/payments.js) completes it with the card field; the server then charges the price to that card and
grants the year if Stripe says it succeeded. When Stripe asks for 3-D Secure, Stripe.js completes it and the
server reads the PaymentIntent back from Stripe. A payment whose result never came back (a lost answer, a closed
page) is read back from Stripe when the page opens, and no new payment starts while one may still be charged.
Each "Pay" creates a Stripe set-up, so a user may start only a few within an hour, whichever tabs they click in
(billing.start_card_setup). The Stripe ids stay in backend vars; the client secrets only travel inside the script
calls to this payer's browser.

The page says what is true for its viewer: active until when, ended when, or not a member yet, and, when payments
are not configured here, to ask an admin. A members' page sends a signed-in user without an active membership
here with `?from=<its path>` (state.AuthState._member): the page then says why, for the pages it knows (the
browser's text is never shown). Inviting is not a benefit of paying: every account's invite link works.
"""

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import TypeVar

import reflex as rx
from reflex.event import EventSpec

from projectalgo import __version__, billing, memberships
from projectalgo.components.layout import form_error, layout
from projectalgo.db import session_scope
from projectalgo.errors import DomainError
from projectalgo.runtime import in_stripe_thread, services
from projectalgo.state import AuthState, CurrentUser, event_handler, failure_message, in_session, signed_in

T = TypeVar("T")
log = logging.getLogger("projectalgo.membership")
CARD_ELEMENT_ID = "card-element"
STATUS_LABELS = {"succeeded": "Paid", "failed": "Declined", "processing": "Processing", "canceled": "Canceled"}
SOMETHING_WRONG = (
    "Something went wrong on our side; it has been logged. If your payment went through, your membership shows "
    "here within a few minutes: reload this page before paying again."
)
SCRIPT_MISSING = "The payment script could not be loaded. Check your connection and reload the page."
CARD_NOT_CHECKED = "Your card could not be checked. Please try again."
FROM_PARAMETER = "from"  # the members' page a user without an active membership was sent here from
MEMBERS_ONLY = "for members with an active membership"
WHY_SENT_HERE = (
    (re.compile(r"/dashboard"), f"The dashboard is {MEMBERS_ONLY}: it opens as soon as yours is."),
    (
        re.compile(r"/strategies(/[0-9]+)?"),
        f"Strategies and their charts are {MEMBERS_ONLY}: they open as soon as yours is.",
    ),
    (re.compile(r"/accounts"), f"Brokerage accounts are {MEMBERS_ONLY}: they open as soon as yours is."),
)


def why_sent_here(path: object) -> str:
    """Why a members' page sent its visitor here, for the `from` path the page was opened with ("" if unknown)."""
    if not isinstance(path, str):
        return ""
    path = path.rstrip("/")
    return next((why for pattern, why in WHY_SENT_HERE if pattern.fullmatch(path)), "")


def _payments_js(call: str) -> str:
    """JavaScript that runs `call` on assets/payments.js (an ES module, fetched once by the browser).

    Its functions always resolve to {error: ...}; a failed import does too, so the callback always runs."""
    missing = json.dumps({"error": SCRIPT_MISSING})
    return f'import("/payments.js?v={__version__}").then((payments) => payments.{call}, () => ({missing}))'


def _browser_error(result: object) -> str:
    """The message Stripe.js reported, if any (shown to this browser only; never trusted for anything else).

    The browser may send anything: only a dict's string "error" is shown (cut short); another error value
    gets a message of our own."""
    error = result.get("error") if isinstance(result, dict) else None
    if not error:
        return ""
    return error[:300] if isinstance(error, str) else CARD_NOT_CHECKED


def _payment_step(step: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T | EventSpec | None]]:
    """A step of paying, for a signed-in user: whatever goes wrong in it, the Pay button stops spinning and the
    payer reads what to do (MembershipState._failsafe)."""
    guarded = signed_in(step)

    @functools.wraps(guarded)
    async def failsafe_step(self: "MembershipState", *args: object, **kwargs: object) -> T | EventSpec | None:
        result: T | EventSpec | None = None  # None: the step failed, and _failsafe told the payer
        with self._failsafe():
            result = await guarded(self, *args, **kwargs)
        return result

    return failsafe_step


class MembershipState(AuthState):
    paying: rx.Field[bool] = rx.field(False)
    pay_error: rx.Field[str] = rx.field("")
    pay_notice: rx.Field[str] = rx.field("")
    # The user's own payments, newest first: date (ISO 8601), amount, status.
    payments: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    _payments_loaded: bool = False  # False again after TabGuard emptied the tab
    _setup_id: str = ""
    _intent_id: str = ""

    # The page's facts are computed from the settings, the viewer's membership (AuthState) and the address, so
    # they hold when TabGuard empties the tab's page states: a payment going through changes the membership.

    @rx.var
    def price(self) -> str:
        return f"{services().settings.membership_price:,.2f}"

    @rx.var
    def currency(self) -> str:
        return services().settings.membership_currency.upper()

    @rx.var
    def payments_configured(self) -> bool:
        return services().payments is not None

    @rx.var(cache=False)
    def member_active(self) -> bool:
        """Exempt by role, or a membership that has not ended (as of now)."""
        ends_at = datetime.fromisoformat(self.membership_ends_at) if self.membership_ends_at else None
        return memberships.MembershipStatus(exempt=self.membership_exempt, ends_at=ends_at).active

    @rx.var(cache=False)
    def why_here(self) -> str:
        """Why a members' page sent this viewer here, while they are not a member (WHY_SENT_HERE)."""
        if not self.signed_in or self.member_active:
            return ""
        return why_sent_here(self.router.url.query_parameters.get(FROM_PARAMETER))

    @event_handler
    @signed_in
    async def open_membership(self, user: CurrentUser) -> EventSpec | None:
        settings = services().settings
        self.paying, self.pay_error, self.pay_notice = False, "", ""
        self._setup_id = self._intent_id = ""
        if self.payments_configured and not self.membership_exempt:
            with self._failsafe():
                # A payment whose result never reached a page (answer lost, 3-D Secure page closed) settles here.
                if (earlier := await self._run(billing.settle_open_payments, user_id=user.id)) is not None:
                    await self._show(user, earlier)
        await self._load_payments(user)
        if not self.payments_configured or self.membership_exempt:
            return None
        mount = f"mountCard({json.dumps(settings.stripe_js_url)}, {json.dumps(settings.stripe_publishable_key)}, "
        return rx.call_script(
            _payments_js(f"{mount}{json.dumps('#' + CARD_ELEMENT_ID)})"), callback=MembershipState.card_field_ready
        )

    @event_handler
    async def card_field_ready(self, result: dict) -> None:
        self.pay_error = self.pay_error or _browser_error(result)
        if (user := await self._current_user()) is not None:
            await self._reload_if_emptied(user)

    @event_handler
    @_payment_step
    async def start_payment(self, user: CurrentUser) -> EventSpec | None:
        gateway = services().payments
        if gateway is None or self.membership_exempt or self.paying:
            return None
        self.pay_error = self.pay_notice = ""
        start = partial(billing.start_card_setup, partial(session_scope, services().engine), gateway, user_id=user.id)
        try:
            self._setup_id, secret = await in_stripe_thread(start)
        except DomainError as error:  # anything else: _payment_step
            self.pay_error = failure_message(error)
            await self._reload_if_emptied(user)
            return None
        self.paying = True
        return rx.call_script(_payments_js(f"setUpCard({json.dumps(secret)})"), callback=MembershipState.card_set_up)

    @event_handler
    @_payment_step
    async def card_set_up(self, user: CurrentUser, result: dict) -> EventSpec | None:
        """Stripe.js finished the card set-up started here: charge the card (the set-up id is the server's own)."""
        setup_id, self._setup_id = self._setup_id, ""
        if not setup_id:
            return None  # nothing was started from this page: a stale or forged call
        if error := _browser_error(result):
            return await self._show(user, billing.PaymentOutcome("failed", error))  # e.g. Stripe declined the card
        settings = services().settings
        outcome = await self._run(
            billing.pay_with_card_setup,
            user_id=user.id,
            setup_id=setup_id,
            price=settings.membership_price,
            currency=settings.membership_currency,
        )
        return await self._show(user, outcome)

    @event_handler
    @_payment_step
    async def payment_returned(self, user: CurrentUser, _result: dict) -> EventSpec | None:
        """Stripe.js finished 3-D Secure: read this user's PaymentIntent back from Stripe, whatever the browser says."""
        intent_id, self._intent_id = self._intent_id, ""
        if not intent_id:
            return None
        outcome = await self._run(billing.check_payment, user_id=user.id, intent_id=intent_id)
        return await self._show(user, outcome)

    @contextmanager
    def _failsafe(self) -> Iterator[None]:
        """Whatever goes wrong in a payment step, the Pay button stops spinning and the payer reads what to do."""
        try:
            yield
        except Exception:  # logged with its traceback; the payer gets a message instead of a spinner
            log.exception("membership.payment_step_failed")
            self.paying, self.pay_error, self.pay_notice = False, SOMETHING_WRONG, ""

    async def _run(self, flow: Callable[..., T], **kwargs: object) -> T | billing.PaymentOutcome:
        """Run a blocking payment flow of billing on the Stripe threads; a refusal becomes a failed outcome."""
        gateway = services().payments
        if gateway is None:
            return billing.PaymentOutcome("failed", "Payments are not configured on this server.")
        sessions = partial(session_scope, services().engine)
        try:
            return await in_stripe_thread(partial(flow, sessions, gateway, **kwargs))
        except DomainError as error:
            return billing.PaymentOutcome("failed", failure_message(error))

    async def _show(self, user: CurrentUser, outcome: billing.PaymentOutcome) -> EventSpec | None:
        if outcome.status == "granted" and not outcome.message:
            self.paying = False
            return rx.redirect("/dashboard")
        if outcome.status == "requires_action":
            self._intent_id = outcome.intent_id
            script = _payments_js(f"confirmPayment({json.dumps(outcome.client_secret)})")
            return rx.call_script(script, callback=MembershipState.payment_returned)
        self.paying = False
        if outcome.status == "granted":  # an earlier payment went through (nothing was charged now): show its year
            await self._current_user(after_own_change=True)
        self.pay_error, self.pay_notice = (outcome.message, "") if outcome.status == "failed" else ("", outcome.message)
        await self._load_payments(user)
        return None

    async def _reload_if_emptied(self, user: CurrentUser) -> None:
        """Show the payments again after TabGuard emptied the tab (the membership changed since the page loaded)."""
        if not self._payments_loaded:
            await self._load_payments(user)

    async def _load_payments(self, user: CurrentUser) -> None:
        history = await in_session(lambda session: billing.payment_history(session, user.id))
        self._payments_loaded = True
        self.payments = [
            {
                "date": view.created_at.isoformat(),
                "amount": f"{view.amount:,.2f} {view.currency.upper()}",
                "status": STATUS_LABELS.get(view.status, "Not completed"),
            }
            for view in history
        ]


def _membership_end() -> rx.Component:
    return rx.moment(AuthState.membership_ends_at, format="LL, HH:mm", local=True)


def membership_summary() -> rx.Component:
    """What is true for this viewer: included with their role, active until, ended on, or none yet."""
    return rx.card(
        rx.vstack(
            rx.heading("Your membership", size="4"),
            rx.cond(
                AuthState.membership_exempt,
                rx.text("Included with your role: you never need to pay.", id="membership-state"),
                rx.cond(
                    AuthState.membership_ends_at == "",
                    rx.text("You have no membership yet.", id="membership-state"),
                    rx.cond(
                        MembershipState.member_active,
                        rx.text("Active until ", _membership_end(), ".", id="membership-state"),
                        rx.text("Your membership ended on ", _membership_end(), ".", id="membership-state"),
                    ),
                ),
            ),
            spacing="2",
        ),
        width="100%",
    )


def why_here_notice() -> rx.Component:
    return rx.cond(
        MembershipState.why_here != "",
        rx.callout(MembershipState.why_here, icon="lock", color_scheme="amber", id="why-here", width="100%"),
    )


def pay_form() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(rx.cond(MembershipState.member_active, "Add a year", "Pay for a year"), size="4"),
            rx.text(
                "Enter your card. It goes straight to Stripe; paying while a membership runs adds a year to its end.",
                color_scheme="gray",
                size="2",
            ),
            rx.box(
                id=CARD_ELEMENT_ID,
                width="100%",
                padding="0.75em",
                border=f"1px solid {rx.color('gray', 6)}",
                border_radius="var(--radius-2)",
            ),
            form_error(MembershipState.pay_error),
            rx.cond(
                MembershipState.pay_notice != "",
                rx.callout(MembershipState.pay_notice, icon="info", color_scheme="blue", width="100%"),
            ),
            rx.button(
                "Pay ",
                MembershipState.price,
                " ",
                MembershipState.currency,
                on_click=MembershipState.start_payment,
                loading=MembershipState.paying,
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def payment_section() -> rx.Component:
    return rx.cond(
        AuthState.membership_exempt,
        rx.fragment(),
        rx.cond(
            MembershipState.payments_configured,
            pay_form(),
            rx.callout(
                rx.cond(
                    MembershipState.member_active,
                    "Payments are not configured on this server: to extend your membership, ask an admin.",
                    "Payments are not configured on this server: ask an admin to grant you a membership.",
                ),
                icon="info",
                color_scheme="gray",
                id="payments-not-configured",
                width="100%",
            ),
        ),
    )


def payment_history() -> rx.Component:
    return rx.cond(
        MembershipState.payments.length() > 0,
        rx.vstack(
            rx.heading("Your payments", size="4"),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Date"),
                        rx.table.column_header_cell("Amount"),
                        rx.table.column_header_cell("Status"),
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        MembershipState.payments,
                        lambda payment: rx.table.row(
                            rx.table.cell(rx.moment(payment["date"], format="LL, HH:mm", local=True)),
                            rx.table.cell(payment["amount"]),
                            rx.table.cell(payment["status"]),
                        ),
                    )
                ),
                id="payments",
                width="100%",
            ),
            spacing="2",
            width="100%",
        ),
    )


def membership_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("Membership", size="7"),
            why_here_notice(),
            rx.text(
                "A yearly membership costs ",
                rx.text.strong(MembershipState.price, " ", MembershipState.currency),
                " and gives you:",
            ),
            rx.unordered_list(
                rx.list_item("the live dashboard of your strategies, updated as your bots post;"),
                rx.list_item("your brokerage accounts and strategies, their history and charts."),
            ),
            rx.text(
                "Inviting is not part of it: every account's invite link works, paid or not.",
                color_scheme="gray",
                size="2",
                id="invite-rule",
            ),
            # Only once the page has loaded for its viewer: until then the defaults would say "no membership".
            rx.cond(AuthState.signed_in, rx.fragment(membership_summary(), payment_section())),
            payment_history(),
            spacing="4",
            width="100%",
        )
    )
