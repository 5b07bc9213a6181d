"""Alert evaluation (issue 17): members' rules as snapshots are stored and by the periodic sweep, and the admins'
system alerts. No Reflex.

Every condition fires once when it starts and re-arms when it clears: where a rule stands for a strategy is its
models.AlertState row (`firing`), flipped by one conditional write (INSERT ... ON CONFLICT DO UPDATE ... WHERE NOT
firing, or UPDATE ... WHERE firing), and a firing is stored only by the transaction whose write flipped it: two
workers seeing the same condition at once make one firing.

- **At ingestion** (`on_stored`, one call per batch): one indexed query finds the rules of the batch's strategies
  and their owners' all-strategies rules (paused ones left out) with their states, and one the batch's flow
  points when a drawdown or daily-loss rule needs them: the cost follows the batch's rules, never all rules. A
  state is written only when it changes: a new peak, a flow, a new day, a condition starting or clearing. A
  snapshot older than its strategy's newest (a backfill) changes nothing but a silent bot's recovery.
  - drawdown: the equity (margin balance) below its peak beyond X %; the peak moves with cash flows (a deposit
    raises it by its amount, a withdrawal lowers it: the flow points ingestion keeps). An all-strategies rule
    watches each strategy apart.
  - balance: one strategy's wallet below $Y; for an all-strategies rule, the combined equity (each brokerage
    account's newest wallet counted once; the wallets are kept in the state, read from the store once).
  - daily_loss: the equity's fall since the UTC day opened (the last snapshot before midnight), net of flows,
    beyond $Z; the next day starts afresh. Each strategy apart, as drawdown.
  - silence: a silent bot's next snapshot clears it and says "back online" if the rule asks.
- **The sweep** (`sweep_silence`, `sweep_system`), by the one worker holding the lease (sweeper.py): one query over
  silence rules x strategies x states finds the bots silent past their rule's minutes.
- **System alerts** go to every admin. A condition is a set of things wrong, each by a stable key (a silent bot's
  strategy, "down" for an outage): it fires when a key appears that was not reported yet, and re-arms a key when it
  goes. Where each admin stands is kept as an AlertState of a hidden rule per admin and condition (kind "system",
  the condition's name as its threshold; alerts.py never lists or changes those): the alerts' own tables, foreign
  keys kept, no new table, and a new admin gets their own state (the conditions holding then reach them too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, String, and_, bindparam, case, cast, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo.alerts import (
    BALANCE,
    DAILY_LOSS,
    DRAWDOWN,
    KINDS,
    SILENCE,
    SYSTEM,
    fire,
    threshold_text,
)
from projectalgo.charts import money
from projectalgo.clock import DAY_MS
from projectalgo.models import AlertRule, AlertState, FlowPoint, Strategy, User, id_of, table_of
from projectalgo.settings import Settings
from projectalgo.snapshots import Snapshot, SnapshotStore

BACK_ONLINE = "back_online"
SILENT_BOTS, INGEST_ERRORS, STRIPE_WEBHOOK, SNAPSHOT_STORE, REDIS = (
    "silent_bots",
    "ingest_errors",
    "stripe_webhook",
    "snapshot_store",
    "redis",
)
LINES_SHOWN = 10  # a system firing lists this many new things wrong, then "and N more"


def _when(at: datetime | int) -> str:
    moment = datetime.fromtimestamp(at / 1000, tz=UTC) if isinstance(at, int) else _aware(at)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ms(at: datetime) -> int:
    return int(_aware(at).timestamp() * 1000)


def _changed(result: object) -> bool:
    return isinstance(result, CursorResult) and result.rowcount > 0


# Where a rule stands: the conditional writes


def _set_firing(session: Session, rule_id: int, strategy_id: int, data: Mapping[str, str], now: datetime) -> bool:
    """The condition starts: True only when this write flipped the state (it was not firing, or had no row)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = table_of(AlertState)
    values = {"firing": True, "changed_at": now, "data": dict(data)}
    flipped = session.execute(
        insert(table)
        .values(rule_id=rule_id, strategy_id=strategy_id, **values)
        .on_conflict_do_update(index_elements=["rule_id", "strategy_id"], set_=values, where=table.c.firing.is_(False))
        .returning(table.c.rule_id)  # psycopg counts no rows for an upsert: the row returned says
    ).first()
    return flipped is not None


def _clear(session: Session, rule_id: int, strategy_id: int, data: Mapping[str, str], now: datetime) -> bool:
    """The condition clears (re-armed): True only when this write flipped the state."""
    return _changed(
        session.execute(
            update(AlertState)
            .where(
                col(AlertState.rule_id) == rule_id, col(AlertState.strategy_id) == strategy_id, col(AlertState.firing)
            )
            .values(firing=False, changed_at=now, data=dict(data))
        )
    )


def _save(session: Session, rule_id: int, strategy_id: int, data: Mapping[str, str], now: datetime) -> None:
    """What the condition carries (a peak, the day's opening), its firing left as it is."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(table_of(AlertState))
        .values(rule_id=rule_id, strategy_id=strategy_id, firing=False, changed_at=now, data=dict(data))
        .on_conflict_do_update(index_elements=["rule_id", "strategy_id"], set_={"data": dict(data)})
    )


# At ingestion

_RULE_COLUMNS: tuple[Any, ...] = (
    col(AlertRule.id),
    col(AlertRule.owner_id),
    col(AlertRule.strategy_id).label("rule_strategy_id"),
    col(AlertRule.kind),
    col(AlertRule.threshold),
    col(AlertRule.notify_recovery),
    col(Strategy.id).label("strategy_id"),
    col(Strategy.name),
    col(Strategy.last_snapshot_at),
    col(AlertState.firing),
    col(AlertState.data),
)
# Built once (the ingestion path): the rules on the batch's strategies and their owners' all-strategies rules, each
# with its state for the strategy (an all-strategies balance: its combined state, strategy 0).
_BATCH_RULES = union_all(
    select(*_RULE_COLUMNS)
    .join(Strategy, col(Strategy.id) == col(AlertRule.strategy_id))
    .outerjoin(
        AlertState, and_(col(AlertState.rule_id) == col(AlertRule.id), col(AlertState.strategy_id) == col(Strategy.id))
    )
    .where(col(AlertRule.strategy_id).in_(bindparam("ids", expanding=True)), ~col(AlertRule.paused)),
    select(*_RULE_COLUMNS)
    .select_from(Strategy)
    .join(AlertRule, and_(col(AlertRule.owner_id) == col(Strategy.owner_id), col(AlertRule.strategy_id).is_(None)))
    .outerjoin(
        AlertState,
        and_(
            col(AlertState.rule_id) == col(AlertRule.id),
            col(AlertState.strategy_id) == case((col(AlertRule.kind) == BALANCE, 0), else_=col(Strategy.id)),
        ),
    )
    .where(
        col(Strategy.id).in_(bindparam("all_ids", expanding=True)),
        col(AlertRule.kind).in_(KINDS),
        ~col(AlertRule.paused),
    ),
)
_BATCH_FLOWS = (
    select(col(FlowPoint.strategy_id), col(FlowPoint.at_ms), col(FlowPoint.amount))
    .where(
        col(FlowPoint.strategy_id).in_(bindparam("ids", expanding=True)),
        col(FlowPoint.at_ms) > bindparam("since"),
        col(FlowPoint.at_ms) <= bindparam("until"),
    )
    .order_by(col(FlowPoint.at_ms))
)


@dataclass(frozen=True)
class _Step:
    """What a rule's evaluation over a batch comes to: the state's data after it, whether the condition holds at
    the newest snapshot (None: unknown, leave it), and what a firing says."""

    data: dict[str, str]
    holds: bool | None
    title: str = ""
    body: str = ""
    rearm: bool = False  # a new day: the condition starts afresh, whatever it was


@dataclass(frozen=True)
class _Batch:
    session: Session
    store: SnapshotStore
    now: datetime
    flows: Mapping[int, Sequence[tuple[int, Decimal]]]  # strategy id -> (at_ms, amount), oldest first

    def flow_between(self, strategy_id: int, after_ms: int, to_ms: int) -> Decimal:
        return sum((amount for at, amount in self.flows.get(strategy_id, ()) if after_ms < at <= to_ms), Decimal(0))


def on_stored(
    session: Session, store: SnapshotStore, stored: Sequence[Snapshot], settings: Settings, now: datetime
) -> int:
    """Evaluate the value rules (and silent bots' recovery) of a batch's stored snapshots, once they and their flow
    points are stored. Returns the firings made."""
    by_strategy: dict[int, list[Snapshot]] = {}
    for snapshot in sorted(stored, key=lambda s: s.at_ms):
        by_strategy.setdefault(snapshot.strategy_id, []).append(snapshot)
    if not by_strategy:
        return 0
    ids = list(by_strategy)
    rows = session.execute(_BATCH_RULES, {"ids": ids, "all_ids": ids}).all()
    if not rows:
        return 0
    states = {(row.id, _state_strategy(row)): (row.firing, dict(row.data or {})) for row in rows}
    batch = _Batch(session, store, now, _flow_points(session, rows, states, by_strategy))
    combined: dict[tuple[int, int], list[Row[tuple[object, ...]]]] = {}
    fired = 0
    for row in rows:
        if row.kind == BALANCE and row.rule_strategy_id is None:
            combined.setdefault((row.id, row.owner_id), []).append(row)
            continue
        firing, data = states.get((row.id, row.strategy_id), (None, {}))
        snapshots = by_strategy[row.strategy_id]
        if row.kind == SILENCE:
            fired += _recovered(session, row, firing, snapshots[-1], settings, now)
            continue
        newest_ms = _ms(row.last_snapshot_at) if row.last_snapshot_at else 0
        fresh = [snapshot for snapshot in snapshots if snapshot.at_ms >= newest_ms]
        if not fresh:
            continue  # a backfill: what stands now is the newest snapshot's
        evaluate = {DRAWDOWN: _drawdown, BALANCE: _balance, DAILY_LOSS: _daily_loss}[row.kind]
        step = evaluate(batch, row, data, fresh)
        fired += _apply(session, row, row.strategy_id, bool(firing), data, step, settings, now)
    for (rule_id, owner_id), rule_rows in combined.items():
        firing, data = states.get((rule_id, 0), (None, {}))
        step = _combined_balance(batch, rule_rows, data, by_strategy, owner_id)
        fired += _apply(session, rule_rows[0], 0, bool(firing), data, step, settings, now)
    return fired


def _state_strategy(row: Row[tuple[object, ...]]) -> int:
    """Where a rule's state is kept for the row's strategy: 0 for an all-strategies balance (the combined equity)."""
    if row.kind == BALANCE and row.rule_strategy_id is None:
        return 0
    strategy_id: int = row.strategy_id
    return strategy_id


def _flow_points(
    session: Session,
    rows: Sequence[Row[tuple[object, ...]]],
    states: Mapping[tuple[int, int], tuple[bool, dict[str, str]]],
    by_strategy: Mapping[int, Sequence[Snapshot]],
) -> dict[int, list[tuple[int, Decimal]]]:
    """The flow points the batch's drawdown and daily-loss rules need: since each state's last look. One query."""
    since: dict[int, int] = {}
    for row in rows:
        if row.kind not in (DRAWDOWN, DAILY_LOSS):
            continue
        data = states.get((row.id, row.strategy_id), (False, {}))[1]
        first = by_strategy[row.strategy_id][0].at_ms
        start = int(data["as_of"]) if "as_of" in data else first - first % DAY_MS
        since[row.strategy_id] = min(start, since.get(row.strategy_id, start))
    if not since:
        return {}
    until = max(snapshots[-1].at_ms for snapshots in by_strategy.values())
    found: dict[int, list[tuple[int, Decimal]]] = {}
    for strategy_id, at_ms, amount in session.execute(
        _BATCH_FLOWS, {"ids": list(since), "since": min(since.values()), "until": until}
    ):
        if at_ms > since[strategy_id]:
            found.setdefault(strategy_id, []).append((at_ms, Decimal(amount)))
    return found


def _apply(
    session: Session,
    row: Row[tuple[object, ...]],
    strategy_id: int,
    firing: bool,
    data: Mapping[str, str],
    step: _Step,
    settings: Settings,
    now: datetime,
) -> int:
    """Write what changed of a rule's state, and fire when this write started its condition."""
    rule_id: int = row.id
    if step.rearm and firing:
        _clear(session, rule_id, strategy_id, step.data, now)
        firing = False
    if step.holds and not firing:
        if _set_firing(session, rule_id, strategy_id, step.data, now):
            fire(
                session,
                user_id=row.owner_id,
                kind=row.kind,
                title=step.title,
                body=step.body,
                now=now,
                settings=settings,
                rule_id=rule_id,
                strategy_id=strategy_id or None,
            )
            return 1
    elif step.holds is False and firing:
        _clear(session, rule_id, strategy_id, step.data, now)
    elif step.data != data:
        _save(session, rule_id, strategy_id, step.data, now)
    return 0


def _drawdown(batch: _Batch, row: Row[tuple[object, ...]], data: Mapping[str, str], fresh: Sequence[Snapshot]) -> _Step:
    peak = Decimal(data["peak"]) if "peak" in data else None
    as_of = int(data.get("as_of", fresh[0].at_ms))
    for snapshot in fresh:
        if snapshot.at_ms <= as_of and peak is not None:
            continue
        flow = batch.flow_between(row.strategy_id, as_of, snapshot.at_ms)
        peak = max(snapshot.margin_balance, (peak + flow) if peak is not None else snapshot.margin_balance)
        as_of = snapshot.at_ms
    assert peak is not None  # fresh holds a snapshot
    equity = fresh[-1].margin_balance
    depth = (peak - equity) / peak * 100 if peak > 0 else Decimal(0)
    # Written only when the peak moved (a new high, or a flow): otherwise the flows since the last write are none.
    kept = {"peak": str(peak), "as_of": str(as_of)} if str(peak) != data.get("peak") else dict(data)
    threshold = Decimal(row.threshold)
    return _Step(
        kept,
        depth > threshold,
        f"{row.name} is {depth:.1f}% below its peak",
        f"{row.name}'s equity is {money(equity)}, {depth:.2f}% below its peak of {money(peak)} (net of deposits and "
        f"withdrawals); your alert is set at {threshold_text(DRAWDOWN, row.threshold)}.",
    )


def _balance(batch: _Batch, row: Row[tuple[object, ...]], data: Mapping[str, str], fresh: Sequence[Snapshot]) -> _Step:
    wallet = fresh[-1].wallet_balance
    limit = threshold_text(BALANCE, row.threshold)
    return _Step(
        dict(data),
        wallet < Decimal(row.threshold),
        f"{row.name}'s wallet is below {limit}",
        f"{row.name}'s wallet balance is {money(wallet)}, below your alert's {limit}.",
    )


def _daily_loss(
    batch: _Batch, row: Row[tuple[object, ...]], data: Mapping[str, str], fresh: Sequence[Snapshot]
) -> _Step:
    day, rearm = int(data.get("day", -1)), False
    opening, flows, as_of = Decimal(data.get("open", 0)), Decimal(data.get("flows", 0)), int(data.get("as_of", 0))
    for snapshot in fresh:
        if snapshot.at_ms <= as_of:
            continue
        if snapshot.at_ms // DAY_MS != day:  # a new UTC day opens at the last snapshot before its midnight
            day, rearm = snapshot.at_ms // DAY_MS, True
            before = batch.store.recent(row.strategy_id, day * DAY_MS, limit=1)
            opening = before[0].margin_balance if before else snapshot.margin_balance
            flows, as_of = Decimal(0), day * DAY_MS
        flows += batch.flow_between(row.strategy_id, as_of, snapshot.at_ms)
        as_of = snapshot.at_ms
    equity = fresh[-1].margin_balance
    loss = opening + flows - equity
    # Written at a new day and when a flow came: otherwise the flows since the last write are none.
    moved = rearm or str(flows) != data.get("flows")
    kept = {"day": str(day), "open": str(opening), "flows": str(flows), "as_of": str(as_of)} if moved else dict(data)
    limit = threshold_text(DAILY_LOSS, row.threshold)
    return _Step(
        kept,
        loss > Decimal(row.threshold),
        f"{row.name} lost {money(loss)} today",
        f"Since 00:00 UTC {row.name}'s equity went from {money(opening)} to {money(equity)}: a loss of "
        f"{money(loss)} net of deposits and withdrawals, beyond your alert's {limit}.",
        rearm,
    )


def _combined_balance(
    batch: _Batch,
    rows: Sequence[Row[tuple[object, ...]]],
    data: Mapping[str, str],
    by_strategy: Mapping[int, Sequence[Snapshot]],
    owner_id: int,
) -> _Step:
    """Each account's newest wallet (by account id), read from the store the first time; a snapshot older than its
    strategy's newest (a backfill) changes nothing. Written only when a wallet changed."""
    wallets = dict(data)
    if not wallets:
        owned = batch.session.scalars(
            select(col(Strategy.id)).where(col(Strategy.owner_id) == owner_id, col(Strategy.archived_at).is_(None))
        )
        newest = [latest for sid in owned if sid is not None and (latest := batch.store.latest(sid)) is not None]
        wallets = {str(s.account_id): str(s.wallet_balance) for s in sorted(newest, key=lambda s: s.at_ms)}
    fresh = [
        snapshot
        for row in rows
        for snapshot in by_strategy[row.strategy_id]
        if snapshot.at_ms >= (_ms(row.last_snapshot_at) if row.last_snapshot_at else 0)
    ]
    for snapshot in sorted(fresh, key=lambda s: s.at_ms):
        wallets[str(snapshot.account_id)] = str(snapshot.wallet_balance)
    total = sum((Decimal(wallet) for wallet in wallets.values()), Decimal(0))
    limit = threshold_text(BALANCE, rows[0].threshold)
    return _Step(
        wallets,
        total < Decimal(rows[0].threshold),
        f"Your combined equity is below {limit}",
        f"Your accounts' wallets add up to {money(total)}, below your alert's {limit}.",
    )


def _recovered(
    session: Session,
    row: Row[tuple[object, ...]],
    firing: bool | None,
    snapshot: Snapshot,
    settings: Settings,
    now: datetime,
) -> int:
    """A silent bot posted again: its silence rule re-arms, and says so if the rule asks."""
    if not firing or not _clear(session, row.id, row.strategy_id, {}, now):
        return 0
    if not row.notify_recovery:
        return 0
    fire(
        session,
        user_id=row.owner_id,
        kind=BACK_ONLINE,
        title=f"{row.name} is back online",
        body=f"{row.name} sent a snapshot again ({_when(snapshot.at_ms)}).",
        now=now,
        settings=settings,
        rule_id=row.id,
        strategy_id=row.strategy_id,
    )
    return 1


# The sweep

_SILENCE_COLUMNS: tuple[Any, ...] = (
    col(AlertRule.id),
    col(AlertRule.owner_id),
    col(AlertRule.threshold),
    col(Strategy.id).label("strategy_id"),
    col(Strategy.name),
    col(Strategy.last_snapshot_at),
)


def _silence_candidates(on_rule: ColumnElement[bool], cutoff: datetime) -> Select[Any]:
    state = and_(col(AlertState.rule_id) == col(AlertRule.id), col(AlertState.strategy_id) == col(Strategy.id))
    return (
        select(*_SILENCE_COLUMNS)
        .select_from(AlertRule)
        .join(Strategy, on_rule)
        .join(User, col(User.id) == col(Strategy.owner_id))
        .outerjoin(AlertState, state)
        .where(
            col(AlertRule.kind) == SILENCE,
            ~col(AlertRule.paused),
            col(Strategy.archived_at).is_(None),
            col(Strategy.last_snapshot_at) < cutoff,
            col(User.disabled_at).is_(None),
            or_(col(AlertState.firing).is_(None), ~col(AlertState.firing)),
        )
    )


def sweep_silence(session: Session, settings: Settings, now: datetime) -> int:
    """Fire each silence rule whose strategy (not archived, with a snapshot before) has sent nothing for its
    minutes, once: one query over rules x strategies x states. Returns the firings made."""
    cutoff = now - timedelta(minutes=1)  # the shortest silence a rule may ask for
    query = union_all(
        _silence_candidates(col(Strategy.id) == col(AlertRule.strategy_id), cutoff),
        _silence_candidates(
            and_(col(AlertRule.strategy_id).is_(None), col(Strategy.owner_id) == col(AlertRule.owner_id)), cutoff
        ),
    )
    fired = 0
    for rule_id, owner_id, threshold, strategy_id, name, last_at in session.execute(query):
        last = _aware(last_at)
        if now - last < timedelta(minutes=int(threshold)):
            continue
        if _set_firing(session, rule_id, strategy_id, {"last": last.isoformat()}, now):
            fire(
                session,
                user_id=owner_id,
                kind=SILENCE,
                title=f"{name} has sent nothing for {threshold_text(SILENCE, threshold)}",
                body=f"The last snapshot from {name} arrived at {_when(last)}; your alert is set at "
                f"{threshold_text(SILENCE, threshold)}. You will hear when it is back online if you asked to.",
                now=now,
                settings=settings,
                rule_id=rule_id,
                strategy_id=strategy_id,
            )
            fired += 1
    return fired


# System alerts to the admins


@dataclass(frozen=True)
class Condition:
    """A system condition as the sweep sees it now: each thing wrong by a stable key, with its line of text (none:
    all is well). `title` heads a firing; `{count}` in it is the number of new things wrong."""

    name: str
    title: str
    wrong: Mapping[str, str]


def silent_bots(session: Session, settings: Settings, now: datetime) -> Condition:
    """Strategies of any member offline (no snapshot for settings.offline_after_minutes), not archived, with an
    enabled owner."""
    cutoff = now - timedelta(minutes=settings.offline_after_minutes)
    rows = session.execute(
        select(col(Strategy.id), col(Strategy.name), col(User.name), col(Strategy.last_snapshot_at))
        .join(User, col(User.id) == col(Strategy.owner_id))
        .where(
            col(Strategy.archived_at).is_(None),
            col(User.disabled_at).is_(None),
            col(Strategy.last_snapshot_at) < cutoff,
        )
        .order_by(col(Strategy.last_snapshot_at).desc())
    )
    return Condition(
        SILENT_BOTS,
        "{count} bot(s) of the group went silent",
        {
            str(strategy_id): f"{owner}'s {name}: nothing since {_when(last or now)}"
            for strategy_id, name, owner, last in rows
        },
    )


def outage(name: str, what: str, check: Callable[[], object]) -> Condition:
    """A dependency's outage: `check` raises when it does not answer."""
    try:
        check()
    except Exception as error:  # noqa: BLE001 - any failure is the outage; its type says which
        return Condition(name, f"{what} is down", {"down": f"{what} did not answer ({type(error).__name__})."})
    return Condition(name, f"{what} is down", {})


ERRORS_MIN = 10  # server errors in the last hour before they count as rising
ERRORS_SHARE = Decimal("0.01")  # ... and at least this share of the hour's posts
SERVER_ERRORS = ("error", "store_unavailable")  # the outcomes that are the server's fault, not the bots'


def ingest_errors(last_hour: Mapping[str, int]) -> Condition:
    """Ingestion errors rising: the ingestion figures' server errors over the last hour (ingest_stats.py)."""
    errors = sum(last_hour.get(outcome, 0) for outcome in SERVER_ERRORS)
    posts = sum(last_hour.values())
    rising = errors >= ERRORS_MIN and errors >= ERRORS_SHARE * posts
    line = f"{errors} of the last hour's {posts} posts failed on the server's side (see the log)."
    return Condition(INGEST_ERRORS, "Ingestion errors are rising", {"rising": line} if rising else {})


WEBHOOK_FAILURES_MIN = 3  # Stripe webhooks failed in the last hour before admins are told


def stripe_webhook_failures(last_hour: Mapping[str, int]) -> Condition:
    """Stripe's events not recorded: this server could not store them (Stripe retries, but payments wait), or none
    verified while some were refused (a wrong STRIPE_WEBHOOK_SECRET; a stranger's posts alone, among events that
    verify, are not an alert)."""
    unavailable, refused = last_hour.get("unavailable", 0), last_hour.get("refused", 0)
    wrong: dict[str, str] = {}
    if unavailable >= WEBHOOK_FAILURES_MIN:
        wrong["unavailable"] = f"{unavailable} Stripe events in the last hour could not be stored (see the log)."
    if refused >= WEBHOOK_FAILURES_MIN and not last_hour.get("recorded", 0):
        wrong["refused"] = (
            f"{refused} Stripe events in the last hour were refused and none accepted: is STRIPE_WEBHOOK_SECRET "
            "the endpoint's signing secret?"
        )
    return Condition(STRIPE_WEBHOOK, "Stripe webhooks are failing", wrong)


def _admins(session: Session) -> list[int]:
    """Enabled admins (roles are a JSON list: matched as its text, then checked)."""
    rows = session.execute(
        select(col(User.id), col(User.roles)).where(
            col(User.disabled_at).is_(None), cast(col(User.roles), String).like('%"admin"%')
        )
    )
    return [user_id for user_id, roles in rows if user_id is not None and "admin" in roles]


def sweep_system(session: Session, settings: Settings, now: datetime, conditions: Sequence[Condition]) -> int:
    """Tell every admin of what went wrong since they were last told (see the module's doc). Only the lease's
    holder calls it: its states are read and written without conditional writes. Returns the firings made."""
    admins = _admins(session)
    if not admins:
        return 0
    rules = {
        (rule.owner_id, rule.threshold): rule
        for rule in session.scalars(
            select(AlertRule).where(col(AlertRule.kind) == SYSTEM, col(AlertRule.owner_id).in_(admins))
        )
    }
    for admin in admins:
        for condition in conditions:
            if (admin, condition.name) not in rules:
                rule = AlertRule(owner_id=admin, kind=SYSTEM, threshold=condition.name, created_at=now, updated_at=now)
                session.add(rule)
                rules[(admin, condition.name)] = rule
    session.flush()
    states = {
        state.rule_id: state
        for state in session.scalars(
            select(AlertState).where(col(AlertState.rule_id).in_([id_of(rule) for rule in rules.values()]))
        )
    }
    fired = 0
    for (admin, name), rule in rules.items():
        holding = next((c for c in conditions if c.name == name), None)
        if holding is None:
            continue
        state = states.get(id_of(rule)) or AlertState(rule_id=id_of(rule), strategy_id=0, changed_at=now, data={})
        told = set(state.data)
        new = [key for key in holding.wrong if key not in told]
        if new:
            lines = [holding.wrong[key] for key in new[:LINES_SHOWN]]
            if len(new) > LINES_SHOWN:
                lines.append(f"... and {len(new) - LINES_SHOWN} more.")
            fire(
                session,
                user_id=admin,
                kind=f"system.{name}",
                title=holding.title.format(count=len(new)),
                body="\n".join(lines),
                now=now,
                settings=settings,
                rule_id=id_of(rule),
            )
            fired += 1
        kept = {key: now.isoformat() if key in new else state.data[key] for key in holding.wrong}
        if kept != state.data:
            if bool(kept) != state.firing:
                state.firing, state.changed_at = bool(kept), now
            state.data = kept
            session.add(state)
    session.flush()
    return fired
