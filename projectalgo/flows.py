"""A strategy's cash flows and its figures net of them (issue 16): the member's corrections, kept in the database
(models.FlowCorrection), joined with what analytics.py finds in the snapshots a page reads for its range. Only the
strategy's owner corrects its flows; whoever may see the strategy (its owner, admins) sees them. No Reflex.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import analytics, strategies
from projectalgo.clock import utcnow
from projectalgo.errors import InvalidInputError
from projectalgo.members import Actor
from projectalgo.models import FlowCorrection, id_of
from projectalgo.settings import Settings
from projectalgo.snapshots import Snapshot

AMOUNT_LIMIT = Decimal("1e15")  # a quadrillion dollars: past it a typed amount is a slip, not money
EARLIEST_MS = 946_684_800_000  # 2000-01-01 UTC, the earliest a snapshot may be


def tolerance(settings: Settings) -> analytics.FlowTolerance:
    return analytics.FlowTolerance(settings.flow_tolerance_usd, settings.flow_tolerance_percent / 100)


def parse_amount(text: str, *, zero: bool = False) -> Decimal:
    """A signed amount in dollars as a member types it ("5000", "-1,250.50", "$300"); 0 only when `zero`."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInputError(
            f"{text.strip() or 'Nothing'} is not an amount: write it like 5000 or -1250.50."
        ) from None
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        raise InvalidInputError("That amount is too large.")
    exponent = amount.as_tuple().exponent  # an int for a finite number
    if isinstance(exponent, int) and exponent < -8:
        raise InvalidInputError("Amounts have at most 8 decimals.")
    if not amount and not zero:
        raise InvalidInputError("A flow of $0 is no flow: write the amount that moved.")
    return amount


def _checked_time(at_ms: int) -> int:
    if not EARLIEST_MS <= at_ms <= 2**53:
        raise InvalidInputError("That date is out of range.")
    return at_ms


def corrections_of(session: Session, strategy_id: int) -> list[analytics.FlowCorrection]:
    """The member's corrections of a strategy's flows, oldest first (analytics applies them in this order)."""
    rows = session.scalars(
        select(FlowCorrection).where(col(FlowCorrection.strategy_id) == strategy_id).order_by(col(FlowCorrection.id))
    )
    found: list[analytics.FlowCorrection] = []
    for row in rows:
        if row.kind == "manual":
            found.append(analytics.ManualFlow(row.at_ms, Decimal(row.amount or 0)))
        elif row.kind == "not_a_flow":
            found.append(analytics.NotAFlow(row.at_ms, Decimal(row.found or 0)))
        else:
            amount = Decimal(row.amount) if row.amount is not None else None
            found.append(analytics.ConfirmFlow(row.at_ms, Decimal(row.found or 0), amount))
    return found


def _word(
    session: Session,
    actor: Actor,
    strategy_id: int,
    kind: str,
    at_ms: int,
    found: Decimal | None = None,
    amount: Decimal | None = None,
) -> None:
    """Record the owner's word on the flow at at_ms, replacing their earlier confirm or not_a_flow there."""
    strategy = strategies.own_strategy(session, actor, strategy_id)
    at_ms = _checked_time(at_ms)
    if kind != "manual":
        session.execute(
            delete(FlowCorrection).where(
                col(FlowCorrection.strategy_id) == id_of(strategy),
                col(FlowCorrection.at_ms) == at_ms,
                col(FlowCorrection.kind).in_(("confirm", "not_a_flow")),
            )
        )
    session.add(
        FlowCorrection(
            strategy_id=id_of(strategy),
            kind=kind,
            at_ms=at_ms,
            found=None if found is None else str(found),
            amount=None if amount is None else str(amount),
            created_by=actor.user_id,
            created_at=utcnow(),
        )
    )
    session.flush()


def confirm_flow(
    session: Session, actor: Actor, strategy_id: int, *, at_ms: int, found: Decimal, amount: Decimal | None = None
) -> None:
    """The flow found at at_ms (seen as `found`) is one: as found, or of `amount` (0: none)."""
    _word(session, actor, strategy_id, "confirm", at_ms, found=found, amount=amount)


def mark_not_a_flow(session: Session, actor: Actor, strategy_id: int, *, at_ms: int, found: Decimal) -> None:
    """The change found at at_ms is profit or loss, not money moved in or out."""
    _word(session, actor, strategy_id, "not_a_flow", at_ms, found=found)


def add_manual_flow(session: Session, actor: Actor, strategy_id: int, *, at_ms: int, amount: Decimal) -> None:
    """A deposit (amount > 0) or withdrawal the member adds by hand at a date."""
    if not amount:
        raise InvalidInputError("A flow of $0 is no flow: write the amount that moved.")
    _word(session, actor, strategy_id, "manual", at_ms, amount=amount)


def remove_manual_flow(session: Session, actor: Actor, strategy_id: int, *, at_ms: int, amount: Decimal) -> None:
    """Take back a flow added by hand (the one at at_ms of that amount)."""
    strategy = strategies.own_strategy(session, actor, strategy_id)
    row = session.scalars(
        select(FlowCorrection).where(
            col(FlowCorrection.strategy_id) == id_of(strategy),
            col(FlowCorrection.kind) == "manual",
            col(FlowCorrection.at_ms) == at_ms,
            col(FlowCorrection.amount) == str(amount),
        )
    ).first()
    if row is None:
        raise InvalidInputError("That flow was not added by hand, or is gone already.")
    session.delete(row)
    session.flush()


@dataclass(frozen=True)
class StrategyFigures:
    """What the strategy page shows for a range: the figures net of flows, the flows, and holding the symbol."""

    performance: analytics.Performance | None
    flows: tuple[analytics.CashFlow, ...]
    hold: tuple[analytics.ReturnPoint, ...]


def strategy_figures(
    snapshots: Sequence[Snapshot],
    corrections: Sequence[analytics.FlowCorrection],
    settings: Settings,
    zone: tzinfo | int,
) -> StrategyFigures:
    """The figures of the snapshots a page read for its range (raw, or each roll-up bucket's last)."""
    flows = analytics.cash_flows(snapshots, tolerance(settings), corrections=corrections)
    figures = analytics.performance(analytics.equity_points(snapshots), flows, zone)
    return StrategyFigures(figures, flows, analytics.buy_and_hold(snapshots))
