"""Alerts (issue 17): members' rules, the firings they make, and what the pages show of both. No Reflex.

A rule watches one of its owner's strategies, or all of them (no strategy): no snapshot for N minutes ("silence",
and "back online" when the bot returns, if `notify_recovery`), a drawdown from the peak beyond X % ("drawdown"), the
wallet or the combined equity below $Y ("balance"), a day's loss beyond $Z ("daily_loss"). Only its owner sees
and changes it: an admin does not edit members' rules, and another member's rule is not found. How rules are
evaluated, and the admins' system alerts: alert_checks.py.

A firing is stored with its deliveries, one per channel the user has (notify.py), in the caller's transaction: the
outbox that notify.deliver_due sends from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import notify, strategies
from projectalgo.charts import money
from projectalgo.clock import iso
from projectalgo.errors import InvalidInputError, NotAllowedError, NotFoundError
from projectalgo.members import Actor
from projectalgo.models import (
    AlertAttempt,
    AlertDelivery,
    AlertFiring,
    AlertRule,
    AlertState,
    Strategy,
    User,
    id_of,
    max_length,
)
from projectalgo.settings import Settings

SILENCE, DRAWDOWN, BALANCE, DAILY_LOSS = "silence", "drawdown", "balance", "daily_loss"
KINDS = (SILENCE, DRAWDOWN, BALANCE, DAILY_LOSS)
# The admins' system conditions are kept as hidden rules of this kind (alert_checks.py): never listed, counted or
# changed here.
SYSTEM = "system"
KIND_LABELS = {
    SILENCE: "No snapshot for",
    DRAWDOWN: "Drawdown beyond",
    BALANCE: "Balance below",
    DAILY_LOSS: "Loss over a day beyond",
}
MAX_RULES = 50  # per member
MAX_SILENCE_MINUTES = 10_080  # a week
AMOUNT_LIMIT = Decimal("1e15")
MAX_DECIMALS = 8
FIRINGS_SHOWN = 50
ADMIN_FIRINGS_SHOWN = 100
TITLE_MAX_LENGTH = max_length(AlertFiring, "title")
BODY_MAX_LENGTH = max_length(AlertFiring, "body")
ALL_STRATEGIES = "All strategies"


class AlertError(InvalidInputError):
    """A rule the member can correct; the message is safe to show."""


@dataclass(frozen=True)
class RuleView:
    """A rule as the /alerts page lists it. `threshold` is the number as typed back into the form; `description`
    says the rule in words ("Trend: no snapshot for 15 minutes"). Times are ISO 8601."""

    id: int
    strategy_id: int | None
    strategy_name: str
    kind: str
    threshold: str
    description: str
    notify_recovery: bool
    paused: bool
    firing: bool  # its condition holds now (on any of its strategies)
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class AttemptView:
    at: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DeliveryView:
    channel: str
    status: str
    attempts: int
    sent_at: str
    next_attempt_at: str  # while pending: when it is tried (again)
    tries: tuple[AttemptView, ...]


@dataclass(frozen=True)
class FiringView:
    id: int
    user_id: int
    user_name: str
    rule_id: int | None
    strategy_id: int | None
    kind: str
    title: str
    body: str
    created_at: str
    read_at: str
    deliveries: tuple[DeliveryView, ...]


# Thresholds


def _number(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AlertError(f"{text or 'Nothing'} is not a number: write the {what} like 15 or 12.5.") from None
    if not value.is_finite():
        raise AlertError(f"Write the {what} as a plain number.")
    return value


def clean_threshold(kind: str, text: str) -> str:
    """The threshold as stored (a plain decimal), or a readable refusal."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace("%", "").replace(" ", "")
    if kind == SILENCE:
        minutes = _number(cleaned, "minutes")
        if minutes != minutes.to_integral_value() or not 1 <= minutes <= MAX_SILENCE_MINUTES:
            raise AlertError(f"Silence is a whole number of minutes from 1 to {MAX_SILENCE_MINUTES:,} (a week).")
        return str(int(minutes))
    if kind == DRAWDOWN:
        percent = _number(cleaned, "percentage")
        if not 0 < percent < 100:
            raise AlertError("A drawdown is a percentage above 0 and below 100.")
        return _plain(percent)
    if kind in (BALANCE, DAILY_LOSS):
        amount = _number(cleaned, "amount")
        if amount <= 0:
            raise AlertError("Write a positive amount in dollars.")
        if amount >= AMOUNT_LIMIT:
            raise AlertError("That amount is too large.")
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
            raise AlertError(f"Amounts have at most {MAX_DECIMALS} decimals.")
        return _plain(amount)
    raise AlertError("Pick what the alert watches: silence, drawdown, balance or daily loss.")


def _plain(value: Decimal) -> str:
    """12.50 -> "12.5", 1E+3 -> "1000": the number as the form shows it back."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def threshold_text(kind: str, threshold: str) -> str:
    """The threshold in words: "15 minutes", "10%", "$5,000.00"."""
    if kind == SILENCE:
        return f"{threshold} minute{'' if threshold == '1' else 's'}"
    if kind == DRAWDOWN:
        return f"{threshold}%"
    return money(Decimal(threshold))


def describe(kind: str, threshold: str, strategy_name: str | None) -> str:
    label = KIND_LABELS[kind].lower() if strategy_name else KIND_LABELS[kind]
    what = threshold_text(kind, threshold)
    if kind == BALANCE and not strategy_name:
        return f"{ALL_STRATEGIES}: combined equity below {what}"
    return f"{strategy_name or ALL_STRATEGIES}: {label} {what}"


# Rules


def _own_rule(session: Session, actor: Actor, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None or rule.owner_id != actor.user_id or rule.kind not in KINDS:
        raise NotFoundError("No such alert.")
    return rule


def _views(session: Session, rules: Sequence[AlertRule]) -> list[RuleView]:
    ids = [id_of(rule) for rule in rules]
    names: dict[int | None, str] = dict(
        session.execute(
            select(col(Strategy.id), col(Strategy.name)).where(
                col(Strategy.id).in_({rule.strategy_id for rule in rules if rule.strategy_id is not None})
            )
        ).all()
    )
    firing = set(
        session.scalars(select(col(AlertState.rule_id)).where(col(AlertState.rule_id).in_(ids), col(AlertState.firing)))
    )
    return [
        RuleView(
            id=id_of(rule),
            strategy_id=rule.strategy_id,
            strategy_name=names.get(rule.strategy_id, "") if rule.strategy_id is not None else ALL_STRATEGIES,
            kind=rule.kind,
            threshold=rule.threshold,
            description=describe(
                rule.kind, rule.threshold, names.get(rule.strategy_id, "") if rule.strategy_id is not None else None
            ),
            notify_recovery=rule.notify_recovery,
            paused=rule.paused,
            firing=id_of(rule) in firing,
            created_at=iso(rule.created_at),
            updated_at=iso(rule.updated_at),
        )
        for rule in rules
    ]


def list_rules(session: Session, actor: Actor) -> list[RuleView]:
    """The actor's own rules, oldest first."""
    rules = session.scalars(
        select(AlertRule)
        .where(col(AlertRule.owner_id) == actor.user_id, col(AlertRule.kind).in_(KINDS))
        .order_by(col(AlertRule.id))
    ).all()
    return _views(session, rules)


def save_rule(
    session: Session,
    actor: Actor,
    *,
    rule_id: int | None,
    strategy_id: int | None,
    kind: str,
    threshold: str,
    notify_recovery: bool,
    now: datetime,
) -> RuleView:
    """Create a rule (rule_id None) or edit one of the actor's; an edited rule starts afresh (its states go)."""
    if kind not in KINDS:
        raise AlertError("Pick what the alert watches: silence, drawdown, balance or daily loss.")
    cleaned = clean_threshold(kind, threshold)
    if strategy_id is not None:
        strategy = strategies.own_strategy(session, actor, strategy_id)
        if strategy.archived_at is not None:
            raise AlertError(f"{strategy.name} is archived: restore it first, or pick another strategy.")
    if rule_id is None:
        count = session.scalar(
            select(func.count())
            .select_from(AlertRule)
            .where(col(AlertRule.owner_id) == actor.user_id, col(AlertRule.kind).in_(KINDS))
        )
        if (count or 0) >= MAX_RULES:
            raise AlertError(f"You have {MAX_RULES} alerts, the most a member keeps: delete one first.")
        rule = AlertRule(owner_id=actor.user_id, kind=kind, threshold=cleaned, created_at=now, updated_at=now)
    else:
        rule = _own_rule(session, actor, rule_id)
        session.execute(delete(AlertState).where(col(AlertState.rule_id) == rule_id))
    rule.strategy_id = strategy_id
    rule.kind = kind
    rule.threshold = cleaned
    rule.notify_recovery = bool(notify_recovery)
    rule.updated_at = now
    session.add(rule)
    session.flush()
    return _views(session, [rule])[0]


def set_paused(session: Session, actor: Actor, rule_id: int, paused: bool, now: datetime) -> RuleView:
    """A paused rule is not evaluated; resumed, it starts afresh (what happened meanwhile does not fire late)."""
    rule = _own_rule(session, actor, rule_id)
    if rule.paused != bool(paused):
        session.execute(delete(AlertState).where(col(AlertState.rule_id) == rule_id))
        rule.paused = bool(paused)
        rule.updated_at = now
        session.add(rule)
        session.flush()
    return _views(session, [rule])[0]


def delete_rule(session: Session, actor: Actor, rule_id: int) -> None:
    """The rule and where it stood go; its firings stay in the history, no longer tied to it."""
    rule = _own_rule(session, actor, rule_id)
    session.execute(delete(AlertState).where(col(AlertState.rule_id) == rule_id))
    session.execute(update(AlertFiring).where(col(AlertFiring.rule_id) == rule_id).values(rule_id=None))
    session.delete(rule)
    session.flush()


# Firings


def fire(
    session: Session,
    *,
    user_id: int,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    settings: Settings,
    rule_id: int | None = None,
    strategy_id: int | None = None,
) -> AlertFiring:
    """Store one firing for a user with a delivery on each of their channels (the outbox), flushed."""
    firing = AlertFiring(
        user_id=user_id,
        rule_id=rule_id,
        strategy_id=strategy_id,
        kind=kind,
        title=_cut(title, TITLE_MAX_LENGTH),
        body=_cut(body, BODY_MAX_LENGTH),
        created_at=now,
    )
    session.add(firing)
    session.flush()
    for channel in notify.channels_for(session, user_id, settings):
        session.add(notify.new_delivery(id_of(firing), channel, now))
    session.flush()
    return firing


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _firing_views(session: Session, firings: Sequence[AlertFiring]) -> list[FiringView]:
    ids = [id_of(firing) for firing in firings]
    deliveries = session.scalars(
        select(AlertDelivery).where(col(AlertDelivery.firing_id).in_(ids)).order_by(col(AlertDelivery.id))
    ).all()
    tries: dict[int, list[AttemptView]] = {}
    for attempt in session.scalars(
        select(AlertAttempt)
        .where(col(AlertAttempt.delivery_id).in_([id_of(d) for d in deliveries]))
        .order_by(col(AlertAttempt.id))
    ):
        tries.setdefault(attempt.delivery_id, []).append(AttemptView(iso(attempt.at), attempt.ok, attempt.detail))
    by_firing: dict[int, list[DeliveryView]] = {}
    for delivery in deliveries:
        by_firing.setdefault(delivery.firing_id, []).append(
            DeliveryView(
                delivery.channel,
                delivery.status,
                delivery.attempts,
                iso(delivery.sent_at),
                iso(delivery.next_attempt_at),
                tuple(tries.get(id_of(delivery), ())),
            )
        )
    names: dict[int | None, str] = dict(
        session.execute(
            select(col(User.id), col(User.name)).where(col(User.id).in_({firing.user_id for firing in firings}))
        ).all()
    )
    return [
        FiringView(
            id=id_of(firing),
            user_id=firing.user_id,
            user_name=names.get(firing.user_id, ""),
            rule_id=firing.rule_id,
            strategy_id=firing.strategy_id,
            kind=firing.kind,
            title=firing.title,
            body=firing.body,
            created_at=iso(firing.created_at),
            read_at=iso(firing.read_at),
            deliveries=tuple(by_firing.get(id_of(firing), ())),
        )
        for firing in firings
    ]


def _limit(limit: int, most: int) -> int:
    return max(1, min(limit, most))


def recent_firings(session: Session, actor: Actor, *, limit: int = FIRINGS_SHOWN) -> list[FiringView]:
    """The actor's own firings, newest first, each with its deliveries and every attempt."""
    firings = session.scalars(
        select(AlertFiring)
        .where(col(AlertFiring.user_id) == actor.user_id)
        .order_by(col(AlertFiring.id).desc())
        .limit(_limit(limit, FIRINGS_SHOWN))
    ).all()
    return _firing_views(session, firings)


def admin_recent_firings(session: Session, actor: Actor, *, limit: int = ADMIN_FIRINGS_SHOWN) -> list[FiringView]:
    """Everyone's firings, newest first: for admins only."""
    if not actor.is_admin:
        raise NotAllowedError("Only admins may see this.")
    firings = session.scalars(
        select(AlertFiring).order_by(col(AlertFiring.id).desc()).limit(_limit(limit, ADMIN_FIRINGS_SHOWN))
    ).all()
    return _firing_views(session, firings)


def unread_count(session: Session, user_id: int) -> int:
    """The bell's number: the user's firings not read yet."""
    count = session.scalar(
        select(func.count())
        .select_from(AlertFiring)
        .where(col(AlertFiring.user_id) == user_id, col(AlertFiring.read_at).is_(None))
    )
    return count or 0


def mark_read(session: Session, actor: Actor, *, up_to_id: int, now: datetime) -> None:
    """The actor has seen their firings up to this one (the newest the page showed): later ones stay unread."""
    if up_to_id < 0:
        raise AlertError("That is not an alert.")
    session.execute(
        update(AlertFiring)
        .where(
            col(AlertFiring.user_id) == actor.user_id,
            col(AlertFiring.id) <= up_to_id,
            col(AlertFiring.read_at).is_(None),
        )
        .values(read_at=now)
    )
