"""/alerts (issue 17): the member's alert rules (create, edit, pause, delete), where alerts go (email, a webhook and
its signing secret, a test per channel) and the recent firings with each delivery and each attempt's result.

Members only, their own rules and channels only (alerts.py and notify.py check the owner on every call). The rule
form is one form for a new rule and for editing one; it keeps what was typed when refused and empties on success
(its key changes). The page's registration watches the member's alerts topic, so a firing delivered in the app
shows here without reload; its timer reads the page again once a minute (retries and other channels' results).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import alerts, forms, members, notify, strategies
from projectalgo.clock import utcnow
from projectalgo.components.alerts_bell import BellState
from projectalgo.components.dialogs import with_confirmation
from projectalgo.components.layout import form_error, layout, notice
from projectalgo.components.status import status_timer
from projectalgo.components.tables import ROW_ACTION_SIZE, WHOLE_CARD, labelled_cell, stacked_table
from projectalgo.errors import NotFoundError
from projectalgo.live import Notice, Viewer, alerts_topic
from projectalgo.live_push import live_push
from projectalgo.members import Actor
from projectalgo.models import AlertChannels, id_of, max_length
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot
from projectalgo.state import (
    AuthState,
    CurrentUser,
    MemberActionsMixin,
    event_handler,
    idle_limit,
    in_session,
    members_only,
)

log = logging.getLogger("projectalgo.alerts")
ALL = "all"  # the strategy choice "All my strategies" (a select's value cannot be empty)
UNITS = {alerts.SILENCE: "minutes", alerts.DRAWDOWN: "%", alerts.BALANCE: "$", alerts.DAILY_LOSS: "$"}
CHANNEL_NAMES = {notify.APP: "In the app", notify.EMAIL: "Email", notify.WEBHOOK: "Webhook"}
THRESHOLD_MAX_LENGTH = 40
URL_MAX_LENGTH = max_length(AlertChannels, "webhook_url")
CHAT_ID_MAX_LENGTH = max_length(AlertChannels, "telegram_chat_id")


@dataclass
class RuleRow:
    id: int
    strategy: str  # the strategy's id as the form's select holds it, or ALL
    kind: str
    threshold: str
    unit: str
    description: str
    notify_recovery: bool
    paused: bool
    firing: bool


@dataclass
class StrategyOption:
    value: str
    label: str


@dataclass
class AttemptRow:
    at: str  # ISO 8601
    result: str  # "sent: shown in the app", "failed: HTTP 500"
    ok: bool


@dataclass
class DeliveryRow:
    channel: str
    status: str  # sent, waiting, retrying, failed
    at: str  # sent at, or the next try's time while retrying ("" otherwise)
    detail: str  # the last attempt's result, when it failed for good
    tries: list[AttemptRow] = field(default_factory=list)


@dataclass
class FiringRow:
    id: int
    title: str
    body: str
    created_at: str
    unread: bool
    deliveries: list[DeliveryRow] = field(default_factory=list)


def rule_row(view: alerts.RuleView) -> RuleRow:
    strategy = str(view.strategy_id) if view.strategy_id is not None else ALL
    return RuleRow(
        view.id,
        strategy,
        view.kind,
        view.threshold,
        UNITS[view.kind],
        view.description,
        view.notify_recovery,
        view.paused,
        view.firing,
    )


def delivery_row(delivery: alerts.DeliveryView) -> DeliveryRow:
    """A delivery as the member reads it: sent, waiting for its first try, retrying at a time, or failed and why."""
    tries = [AttemptRow(t.at, f"{'sent' if t.ok else 'failed'}: {t.detail}", t.ok) for t in delivery.tries]
    channel = CHANNEL_NAMES.get(delivery.channel, delivery.channel)
    if delivery.status == notify.SENT:
        return DeliveryRow(channel, "sent", delivery.sent_at, "", tries)
    if delivery.status == notify.FAILED:
        last = delivery.tries[-1].detail if delivery.tries else ""
        return DeliveryRow(channel, "failed", "", last, tries)
    if not delivery.tries:
        return DeliveryRow(channel, "waiting", "", "", tries)
    return DeliveryRow(channel, "retrying", delivery.next_attempt_at, "", tries)


def firing_row(view: alerts.FiringView) -> FiringRow:
    return FiringRow(
        view.id, view.title, view.body, view.created_at, not view.read_at, [delivery_row(d) for d in view.deliveries]
    )


async def announce_read(user_id: int) -> None:
    """The member's other tabs' bells read their count again. A failure is logged only: they catch up at their
    minute tick."""
    try:
        await services().broadcast.publish(Notice(alerts_topic(user_id)))
    except Exception:
        log.exception("alerts.announce_read_failed")


class AlertsState(MemberActionsMixin, AuthState):
    rules: rx.Field[list[RuleRow]] = rx.field(default_factory=list)
    strategy_options: rx.Field[list[StrategyOption]] = rx.field(default_factory=list)
    firings: rx.Field[list[FiringRow]] = rx.field(default_factory=list)
    # The member's own channels (their tab only: it holds their webhook's signing secret).
    email_available: rx.Field[bool] = rx.field(False)
    email_enabled: rx.Field[bool] = rx.field(False)
    email: rx.Field[str] = rx.field("")
    webhook_url: rx.Field[str] = rx.field("")
    webhook_preset: rx.Field[str] = rx.field("generic")
    telegram_chat_id: rx.Field[str] = rx.field("")
    webhook_secret: rx.Field[str] = rx.field("")
    # The rule form: a new rule (editing 0) or the rule being edited, and its kind (the threshold's unit follows).
    editing: rx.Field[int] = rx.field(0)
    form_strategy: rx.Field[str] = rx.field(ALL)
    form_kind: rx.Field[str] = rx.field(alerts.SILENCE)
    form_threshold: rx.Field[str] = rx.field("")
    form_recovery: rx.Field[bool] = rx.field(True)
    saved: rx.Field[int] = rx.field(0)  # the forms' key: they show what is stored after each change

    @rx.var
    def form_unit(self) -> str:
        return UNITS.get(self.form_kind, "")

    async def _reload(self, member: CurrentUser) -> None:
        actor, settings = member.actor, services().settings
        live_push.watch(
            self.router.session.client_token,
            AlertsState,
            [],
            Viewer.login(member.login_session_id),
            [alerts_topic(member.id)],
        )

        def read(
            session: Session,
        ) -> tuple[list[alerts.RuleView], list[strategies.StrategyView], notify.ChannelsView, list[alerts.FiringView]]:
            return (
                alerts.list_rules(session, actor),
                strategies.list_strategies(session, actor),
                notify.channels_view(session, actor, settings),
                alerts.recent_firings(session, actor),
            )

        rules, own, channels, firings = await in_session(read)
        self.rules = [rule_row(r) for r in rules]
        self.strategy_options = [StrategyOption(str(s.id), s.name) for s in own if not s.archived]
        self.firings = [firing_row(f) for f in firings]
        self.email_available, self.email_enabled, self.email = (
            channels.email_available,
            channels.email_enabled,
            channels.email,
        )
        self.webhook_url, self.webhook_preset = channels.webhook_url, channels.webhook_preset
        self.telegram_chat_id, self.webhook_secret = channels.telegram_chat_id, channels.webhook_secret

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        """The page watches no strategy."""

    async def _apply_notice(self, topic: str) -> None:
        """A firing was delivered in the app, or read (live push): the page again, if the tab's sign-in still lasts
        and is that member's; else the page empties and the tab's pushes stop."""
        user, viewer = self._user, self._viewer()
        if user is None or viewer is None or topic != alerts_topic(user.id):
            return
        still = await in_session(lambda session: members.live_session_user(session, viewer.id, idle=idle_limit()))
        if still is None or id_of(still) != user.id:
            self.reset()
            live_push.forget(self.router.session.client_token)
            return
        await self._reload(user)

    def _clear_form(self, _done: object = None) -> None:
        self.editing, self.form_strategy, self.form_kind = 0, ALL, alerts.SILENCE
        self.form_threshold, self.form_recovery = "", True
        self.saved += 1

    @event_handler
    async def open_alerts(self) -> EventSpec | None:
        self._clear_form()
        return await self._open()

    @event_handler
    @members_only
    async def tick(self, member: CurrentUser, _shown: str = "") -> EventSpec | None:
        """The page's timer, once a minute: deliveries' results and rules' states again."""
        await self._reload(member)
        return None

    @event_handler
    async def save_rule(self, form: dict[str, str]) -> EventSpec | None:
        def work(session: Session, actor: Actor) -> alerts.RuleView:
            rule = forms.form_text(form, "rule_id", max_length=12, label="The alert")
            strategy = forms.form_text(form, "strategy", max_length=12, label="The strategy")
            return alerts.save_rule(
                session,
                actor,
                rule_id=forms.parse_id(rule) if rule not in ("", "0") else None,
                strategy_id=forms.parse_id(strategy) if strategy != ALL else None,
                kind=forms.form_text(form, "kind", max_length=20, label="The kind"),
                threshold=forms.form_text(form, "threshold", max_length=THRESHOLD_MAX_LENGTH, label="The threshold"),
                notify_recovery=form.get("notify_recovery") in (True, "on", "true"),
                now=utcnow(),
            )

        editing = self.editing
        return await self._act(work, lambda _rule: f"Alert {'saved' if editing else 'added'}.", self._clear_form)

    @event_handler
    @members_only
    async def edit_rule(self, member: CurrentUser, rule_id: int) -> EventSpec | None:
        """Fill the form with one of the member's rules (the rules this tab was shown: saving checks again)."""
        rule = next((r for r in self.rules if r.id == forms.parse_id(rule_id)), None)
        if rule is None:
            self.error, self.notice = NotFoundError("No such alert.").message, ""
            return None
        self.editing, self.form_strategy, self.form_kind = rule.id, rule.strategy, rule.kind
        self.form_threshold, self.form_recovery = rule.threshold, rule.notify_recovery
        self.error = self.notice = ""
        self.saved += 1
        return rx.scroll_to("rule-form")

    @event_handler
    @members_only
    async def cancel_edit(self, member: CurrentUser) -> EventSpec | None:
        self._clear_form()
        return None

    @event_handler
    @members_only
    async def choose_kind(self, member: CurrentUser, kind: str) -> EventSpec | None:
        """The form's kind changed: its threshold's unit follows."""
        if kind in alerts.KINDS:
            self.form_kind = kind
        return None

    @event_handler
    async def set_paused(self, rule_id: int, paused: bool) -> EventSpec | None:
        return await self._act(
            lambda session, actor: alerts.set_paused(
                session, actor, forms.parse_id(rule_id), forms.parse_flag(paused), utcnow()
            ),
            lambda rule: f"Alert {'paused' if rule.paused else 'resumed'}.",
        )

    @event_handler
    async def delete_rule(self, rule_id: int) -> EventSpec | None:
        return await self._act(
            lambda session, actor: alerts.delete_rule(session, actor, forms.parse_id(rule_id)),
            lambda _none: "Alert deleted (its past alerts stay listed).",
            self._clear_form,
        )

    @event_handler
    async def save_channels(self, form: dict[str, str]) -> EventSpec | None:
        settings = services().settings

        def work(session: Session, actor: Actor) -> notify.ChannelsView:
            return notify.save_channels(
                session,
                actor,
                settings,
                email_enabled=form.get("email_enabled") in (True, "on", "true"),
                webhook_url=forms.form_text(form, "webhook_url", max_length=URL_MAX_LENGTH, label="The webhook URL"),
                webhook_preset=forms.form_text(form, "webhook_preset", max_length=16, label="The format"),
                telegram_chat_id=forms.form_text(
                    form, "telegram_chat_id", max_length=CHAT_ID_MAX_LENGTH, label="The chat id"
                ),
            )

        return await self._act(work, lambda _view: "Channels saved.", self._clear_form)

    @event_handler
    async def new_secret(self) -> EventSpec | None:
        settings = services().settings
        return await self._act(
            lambda session, actor: notify.new_webhook_secret(session, actor, settings),
            lambda _view: "New signing secret made: your receiver must verify with it from now on.",
        )

    @event_handler
    async def send_test(self, channel: str) -> EventSpec | None:
        settings = services().settings

        def work(session: Session, actor: Actor) -> int:
            if channel not in notify.CHANNELS:
                raise forms.InputError(forms.FORM_NOT_UNDERSTOOD)
            return notify.send_test(session, actor, channel, settings, utcnow())

        seconds = settings.alert_sweep_seconds
        return await self._act(work, lambda _id: f"Test alert made: it is sent within {seconds} seconds.")

    @event_handler
    async def mark_read(self) -> EventSpec | None:
        """The member has read the firings the page shows (a newer one stays unread)."""
        newest = max((f.id for f in self.firings), default=0)
        done = await self._act(
            lambda session, actor: alerts.mark_read(session, actor, up_to_id=newest, now=utcnow()),
            lambda _none: "Marked as read.",
        )
        if done is None and not self.error and (user := self._user) is not None:
            bell = await self.get_state(BellState)
            bell.toasts = []
            await bell._read(user)
            await announce_read(user.id)
        return done


# The page


def _labelled(label: str, control: rx.Component, **props: object) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", weight="medium"), control, spacing="1", **props)


def _strategy_select() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label="Strategy", width="100%"),
        rx.select.content(
            rx.select.item("All my strategies", value=ALL),
            rx.foreach(AlertsState.strategy_options, lambda o: rx.select.item(o.label, value=o.value)),
        ),
        name="strategy",
        default_value=AlertsState.form_strategy,
    )


def _kind_select() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label="Alert when", width="100%"),
        rx.select.content(*(rx.select.item(label, value=kind) for kind, label in alerts.KIND_LABELS.items())),
        name="kind",
        default_value=AlertsState.form_kind,
        on_change=AlertsState.choose_kind,
    )


def rule_form() -> rx.Component:
    """A new rule, or the one being edited: which strategy, what it watches, the threshold in its unit."""
    s = AlertsState
    threshold = rx.flex(
        rx.cond(s.form_unit == "$", rx.text("$", size="2")),
        rx.input(
            name="threshold",
            default_value=s.form_threshold,
            required=True,
            max_length=THRESHOLD_MAX_LENGTH,
            input_mode="decimal",
            aria_label="Threshold",
            width="8em",
        ),
        rx.cond(s.form_unit != "$", rx.text(s.form_unit, size="2", id="threshold-unit")),
        align="center",
        spacing="2",
    )
    return rx.form(
        rx.el.input(type="hidden", name="rule_id", value=s.editing.to_string()),
        rx.flex(
            _labelled("Strategy", _strategy_select(), flex="2 1 12em", min_width="0"),
            _labelled("Alert when", _kind_select(), flex="2 1 12em"),
            _labelled("Threshold", threshold, flex="1 1 10em"),
            spacing="3",
            wrap="wrap",
            width="100%",
        ),
        rx.cond(
            s.form_kind == alerts.SILENCE,
            rx.checkbox(
                "Tell me when it is back", name="notify_recovery", default_checked=s.form_recovery, margin_top="0.75em"
            ),
        ),
        rx.flex(
            rx.button(rx.cond(s.editing > 0, "Save alert", "Add alert"), type="submit"),
            rx.cond(
                s.editing > 0,
                rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=s.cancel_edit),
            ),
            spacing="2",
            margin_top="0.75em",
        ),
        on_submit=s.save_rule,
        key=f"rule-form-{s.saved}",
        id="rule-form",
        width="100%",
    )


def _rule_state(rule: ObjectVar[RuleRow]) -> rx.Component:
    return rx.cond(
        rule.paused,
        rx.badge("paused", color_scheme="gray"),
        rx.cond(rule.firing, rx.badge("firing now", color_scheme="red"), rx.badge("armed", color_scheme="green")),
    )


def _rule_row(rule: ObjectVar[RuleRow]) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.text(rule.description, as_="span"),
            rx.cond(
                rule.notify_recovery & (rule.kind == alerts.SILENCE), rx.text(" (and when it is back)", as_="span")
            ),
        ),
        labelled_cell("State", _rule_state(rule)),
        rx.table.cell(
            rx.flex(
                rx.button("Edit", size=ROW_ACTION_SIZE, variant="soft", on_click=AlertsState.edit_rule(rule.id)),
                rx.cond(
                    rule.paused,
                    rx.button(
                        "Resume", size=ROW_ACTION_SIZE, variant="soft", on_click=AlertsState.set_paused(rule.id, False)
                    ),
                    rx.button(
                        "Pause", size=ROW_ACTION_SIZE, variant="soft", on_click=AlertsState.set_paused(rule.id, True)
                    ),
                ),
                with_confirmation(
                    rx.button("Delete", size=ROW_ACTION_SIZE, variant="soft", color_scheme="red"),
                    question="Delete this alert?",
                    consequence=rx.text("“", rule.description, "” stops. The alerts it sent stay listed below."),
                    action="Delete alert",
                    on_confirm=AlertsState.delete_rule(rule.id),
                ),
                spacing="2",
                wrap="wrap",
            ),
            grid_column=WHOLE_CARD,
        ),
    )


def rules_section() -> rx.Component:
    return rx.vstack(
        rx.heading("Your alerts", size="5"),
        rx.card(rule_form(), width="100%"),
        rx.cond(
            AlertsState.rules.length() > 0,
            stacked_table(("Watches", "State", ""), AlertsState.rules, _rule_row, id_="alert-rules"),
            rx.text("No alerts yet: add the first one above.", color_scheme="gray"),
        ),
        spacing="3",
        width="100%",
    )


def _test_button(label: str, channel: str) -> rx.Component:
    return rx.button(label, size="2", variant="soft", type="button", on_click=AlertsState.send_test(channel))


def channels_section() -> rx.Component:
    """Where alerts go: the app always, email when the server sends it, the member's webhook and its secret."""
    s = AlertsState
    form = rx.form(
        rx.vstack(
            rx.cond(
                s.email_available,
                rx.checkbox(
                    rx.text("Email me at ", rx.text.strong(s.email)),
                    name="email_enabled",
                    default_checked=s.email_enabled,
                ),
            ),
            _labelled(
                "Webhook URL (empty: none)",
                rx.input(
                    name="webhook_url",
                    default_value=s.webhook_url,
                    type="url",
                    max_length=URL_MAX_LENGTH,
                    placeholder="https://…",
                    aria_label="Webhook URL",
                    width="100%",
                ),
                width="100%",
            ),
            rx.flex(
                _labelled(
                    "Message format",
                    rx.select.root(
                        rx.select.trigger(aria_label="Message format"),
                        rx.select.content(*(rx.select.item(p.capitalize(), value=p) for p in notify.PRESETS)),
                        name="webhook_preset",
                        default_value=s.webhook_preset,
                    ),
                ),
                _labelled(
                    "Telegram chat id (Telegram only)",
                    rx.input(
                        name="telegram_chat_id",
                        default_value=s.telegram_chat_id,
                        max_length=CHAT_ID_MAX_LENGTH,
                        aria_label="Telegram chat id",
                    ),
                ),
                spacing="3",
                wrap="wrap",
            ),
            rx.button("Save channels", type="submit"),
            spacing="3",
            width="100%",
        ),
        on_submit=s.save_channels,
        key=f"channels-form-{s.saved}",
        id="channels-form",
        width="100%",
    )
    secret = rx.cond(
        s.webhook_secret != "",
        rx.vstack(
            rx.text("Signing secret", size="2", weight="medium"),
            rx.flex(
                rx.code(s.webhook_secret, id="webhook-secret", overflow_wrap="anywhere", word_break="break-all"),
                with_confirmation(
                    rx.button("New secret", size="1", variant="soft"),
                    question="Make a new signing secret?",
                    consequence="Your receiver must verify with the new one from now on: the old one stops working.",
                    action="Make a new secret",
                    on_confirm=s.new_secret,
                    color_scheme="amber",
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            rx.text(
                "To verify a webhook: X-ProjectAlgo-Signature is sha256= and the hex HMAC-SHA256, with this secret, "
                "of X-ProjectAlgo-Timestamp, a dot and the raw body.",
                size="1",
                color_scheme="gray",
            ),
            spacing="1",
            width="100%",
        ),
    )
    tests = rx.flex(
        _test_button("Send a test in the app", notify.APP),
        rx.cond(s.email_available & s.email_enabled, _test_button("Send a test email", notify.EMAIL)),
        rx.cond(s.webhook_url != "", _test_button("Send a test to the webhook", notify.WEBHOOK)),
        spacing="2",
        wrap="wrap",
    )
    return rx.vstack(
        rx.heading("Where alerts go", size="5"),
        rx.text("Always in the app: the bell at the top, and a notice in every open tab.", color_scheme="gray"),
        rx.card(rx.vstack(form, secret, spacing="4", width="100%"), width="100%"),
        tests,
        spacing="3",
        width="100%",
    )


def _attempt(attempt: ObjectVar[AttemptRow]) -> rx.Component:
    return rx.text(
        rx.moment(attempt.at, format="YYYY-MM-DD HH:mm:ss", local=True),
        " ",
        attempt.result,
        size="1",
        color_scheme=rx.cond(attempt.ok, "gray", "red"),
        overflow_wrap="anywhere",
    )


def _delivery(delivery: ObjectVar[DeliveryRow]) -> rx.Component:
    status = rx.match(
        delivery.status,
        ("sent", rx.text("sent ", rx.moment(delivery.at, format="YYYY-MM-DD HH:mm:ss", local=True), as_="span")),
        ("retrying", rx.text("retrying at ", rx.moment(delivery.at, format="HH:mm:ss", local=True), as_="span")),
        ("failed", rx.text("failed: ", delivery.detail, as_="span", color_scheme="red")),
        rx.text("waiting to be sent", as_="span"),
    )
    return rx.vstack(
        rx.text(rx.text.strong(delivery.channel), ": ", status, size="2", overflow_wrap="anywhere"),
        rx.foreach(delivery.tries, _attempt),
        spacing="0",
        padding_left="0.75em",
    )


def _firing(firing: ObjectVar[FiringRow]) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.text(firing.title, weight="bold", overflow_wrap="anywhere"),
                rx.cond(firing.unread, rx.badge("new", color_scheme="red")),
                rx.spacer(),
                rx.text(
                    rx.moment(firing.created_at, format="YYYY-MM-DD HH:mm", local=True), size="1", color_scheme="gray"
                ),
                spacing="2",
                wrap="wrap",
                align="center",
                width="100%",
            ),
            rx.text(firing.body, size="2", overflow_wrap="anywhere"),
            rx.foreach(firing.deliveries, _delivery),
            spacing="1",
            width="100%",
        ),
        width="100%",
        class_name="alert-firing",
    )


def firings_section() -> rx.Component:
    s = AlertsState
    return rx.vstack(
        rx.flex(
            rx.heading("Recent alerts", size="5"),
            rx.spacer(),
            rx.cond(
                s.firings.length() > 0,
                rx.button("Mark all as read", size="2", variant="soft", on_click=s.mark_read),
            ),
            align="center",
            width="100%",
            wrap="wrap",
            spacing="2",
        ),
        rx.cond(
            s.firings.length() > 0,
            rx.vstack(rx.foreach(s.firings, _firing), spacing="2", width="100%", id="alert-firings"),
            rx.text("Nothing has fired yet.", color_scheme="gray"),
        ),
        status_timer(s.tick),
        spacing="3",
        width="100%",
    )


def alerts_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("Alerts", size="7"),
            rx.text(
                "Be told when a bot goes silent, a drawdown deepens or a balance runs low. Each alert fires once when "
                "its condition starts, and again only after it has cleared.",
                color_scheme="gray",
            ),
            form_error(AlertsState.error),
            notice(AlertsState.notice),
            rules_section(),
            channels_section(),
            firings_section(),
            spacing="5",
            width="100%",
        )
    )
