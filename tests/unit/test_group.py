"""The group board's rules (group.py) on a real database and the embedded snapshot store: who may put what on it,
what an alias may be, who is shown, in which order, and that a line holds ratios only."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from projectalgo import admin, dashboard, group, members, strategies
from projectalgo.clock import HOUR_MS, utcnow
from projectalgo.db import session_scope
from projectalgo.errors import NotAllowedError, NotFoundError
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import AuditEntry, BoardEntry, LoginSession, Strategy, User
from projectalgo.settings import load_settings
from projectalgo.snapshots import Snapshot, epoch_ms
from tests.factories import actor_of, grant_membership, make_admin, make_member, make_strategy, store_one


@pytest.fixture
def people(engine):
    boss = make_admin(engine, name="Ada Admin")
    ann = make_member(engine, inviter=boss, name="Ann Archer")
    ben = make_member(engine, inviter=boss, name="Ben Baker")
    for member in (ann, ben):
        grant_membership(engine, member, days=30)
    return {"engine": engine, "admin": boss, "ann": ann, "ben": ben}


def _strategy(people, who: str, name: str) -> int:
    strategy_id, _token = make_strategy(people["engine"], people[who], name=name, account=f"{who} account")
    return strategy_id


def _do(people, who: str, work):
    with session_scope(people["engine"]) as session:
        return work(session, actor_of(people[who]))


def _join(people, who: str, strategy_id: int, alias: str = "") -> None:
    _do(people, who, lambda session, actor: group.join(session, actor, strategy_id, alias=alias))


def _shown(engine) -> list[tuple[int, str]]:
    with session_scope(engine) as session:
        return [(e.strategy_id, e.shown_as) for e in group.entrants(session)]


def test_only_the_owner_puts_a_strategy_on_the_board_and_takes_it_off(people):
    mine = _strategy(people, "ann", "Trend")
    for intruder in ("ben", "admin"):
        with pytest.raises(NotFoundError, match="No such strategy"):
            _join(people, intruder, mine)
    _join(people, "ann", mine, alias="  The   Archer ")
    assert _shown(people["engine"]) == [(mine, "The Archer")]  # trimmed, inner spaces collapsed
    for intruder in ("ben", "admin"):
        with pytest.raises(NotFoundError):
            _do(people, intruder, lambda s, a: group.leave(s, a, mine))
        with pytest.raises(NotFoundError):
            _do(people, intruder, lambda s, a: group.set_alias(s, a, mine, alias="Stolen"))
    with pytest.raises(group.BoardError, match="already on the board"):
        _join(people, "ann", mine)
    assert _do(people, "ann", lambda s, a: group.leave(s, a, mine)) is True
    assert _shown(people["engine"]) == []
    assert _do(people, "ann", lambda s, a: group.leave(s, a, mine)) is False  # not on it: nothing to do


@pytest.mark.parametrize(
    ("alias", "problem"),
    [
        ("x" * (group.ALIAS_MAX_LENGTH + 1), "at most 60 characters"),
        ("Bell\x07", "control or invisible"),
        ("Ann\nArcher", "control or invisible"),
        ("Zero\u200bwidth", "control or invisible"),
        ("\u202eevil", "control or invisible"),  # a right-to-left override turns the text round
        ("ben baker", "another member's name"),  # nobody passes for another member, whatever the case
        ("ADA ADMIN", "another member's name"),
    ],
)
def test_an_alias_is_refused_with_a_readable_message(people, alias, problem):
    mine = _strategy(people, "ann", "Trend")
    with pytest.raises(group.BoardError, match=problem):
        _join(people, "ann", mine, alias=alias)
    assert _shown(people["engine"]) == []


def test_an_alias_reads_apart_from_the_other_lines_and_may_be_the_owners_own_name(people):
    ann_first, ann_second = _strategy(people, "ann", "Trend"), _strategy(people, "ann", "Carry")
    bens = _strategy(people, "ben", "Grid")
    _join(people, "ann", ann_first, alias="Night Owl")
    with pytest.raises(group.BoardError, match="already called 'night owl'"):
        _join(people, "ben", bens, alias="night owl")
    _join(people, "ben", bens, alias="Early Bird")
    _join(people, "ann", ann_second, alias="Ann Archer")  # her own name
    _do(people, "ann", lambda s, a: group.set_alias(s, a, ann_first, alias="NIGHT OWL"))  # its own alias, recased
    with pytest.raises(group.BoardError, match="not on the board"):
        _do(people, "ben", lambda s, a: group.set_alias(s, a, _strategy(people, "ben", "Other"), alias="x"))
    assert _shown(people["engine"]) == [(ann_first, "NIGHT OWL"), (bens, "Early Bird"), (ann_second, "Ann Archer")]


def test_an_owners_lines_without_an_alias_are_numbered_after_the_first(people):
    first, second, third = (_strategy(people, "ann", name) for name in ("A", "B", "C"))
    for strategy_id in (first, second, third):
        _join(people, "ann", strategy_id)
    _do(people, "ann", lambda s, a: group.set_alias(s, a, second, alias="Bravo"))
    assert _shown(people["engine"]) == [(first, "Ann Archer"), (second, "Bravo"), (third, "Ann Archer (2)")]


def test_the_board_shows_only_enabled_members_strategies_that_are_not_archived(people):
    engine = people["engine"]
    anns, bens, admins = (
        _strategy(people, "ann", "Trend"),
        _strategy(people, "ben", "Grid"),
        _strategy(people, "admin", "Ops"),
    )
    for who, strategy_id in (("ann", anns), ("ben", bens), ("admin", admins)):
        _join(people, who, strategy_id)
    assert [sid for sid, _ in _shown(engine)] == [anns, bens, admins]  # the admin is exempt from paying

    # Ben's membership ends: he left the group, and his line the board (its entry stays for when he renews).
    later = utcnow() + timedelta(days=31)
    with session_scope(engine) as session:
        assert [e.strategy_id for e in group.entrants(session, later)] == [admins]
    # Ann is disabled: her line goes at once.
    with session_scope(engine) as session:
        admin.set_disabled(session, actor_of(people["admin"]), user_id=people["ann"].id, disabled=True)
    assert [sid for sid, _ in _shown(engine)] == [bens, admins]
    # Archiving takes a strategy off the board for good: restoring it does not show it again unasked.
    _do(people, "ben", lambda s, a: strategies.set_strategy_archived(s, a, bens, archived=True))
    _do(people, "ben", lambda s, a: strategies.set_strategy_archived(s, a, bens, archived=False))
    assert [sid for sid, _ in _shown(engine)] == [admins]
    with pytest.raises(group.BoardError, match="archived"):
        archived = _strategy(people, "ben", "Shelved")
        _do(people, "ben", lambda s, a: strategies.set_strategy_archived(s, a, archived, archived=True))
        _join(people, "ben", archived)


def test_the_board_is_bounded(people, monkeypatch):
    monkeypatch.setattr(group, "MAX_ENTRIES", 2)
    ids = [_strategy(people, "ann", name) for name in ("A", "B", "C")]
    _join(people, "ann", ids[0])
    _join(people, "ann", ids[1])
    with pytest.raises(group.BoardError, match="The board is full"):
        _join(people, "ann", ids[2])


def test_a_moderator_takes_a_line_off_audited_and_a_member_may_not(people):
    engine = people["engine"]
    with session_scope(engine) as session:
        members.change_role(session, user=session.get(User, people["ben"].id), role="moderator", grant=True)
        people["ben"] = session.get(User, people["ben"].id)
    mine = _strategy(people, "ann", "Trend")
    _join(people, "ann", mine, alias="Rude Words")
    with pytest.raises(NotAllowedError):
        _do(people, "ann", lambda s, a: group.take_off(s, a, mine, reason="mine"))
    _do(people, "ben", lambda s, a: group.take_off(s, a, mine, reason="an offensive alias"))
    assert _shown(engine) == []
    with session_scope(engine) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == group.TAKE_OFF_ACTION)).one()
        assert (entry.actor_id, entry.target_user_id, entry.reason, entry.outcome) == (
            people["ben"].id,
            people["ann"].id,
            "an offensive alias",
            "done",
        )
        assert entry.target == f"strategy {mine} (Rude Words)"
    with pytest.raises(NotFoundError, match="No such strategy on the board"):
        _do(people, "ben", lambda s, a: group.take_off(s, a, mine))


def _line(strategy_id: int, name: str, returns: dict) -> group.BoardLine:
    return group.BoardLine(strategy_id, name, "live", 1, dashboard.Comparison(returns, None))


def test_lines_are_ranked_by_the_ranges_return_best_first_those_without_one_last():
    lines = [
        _line(1, "Ann", {"24H": Decimal("0.01"), "7D": Decimal("0.30")}),
        _line(2, "Ben", {"24H": Decimal("0.05"), "7D": None}),
        _line(3, "Cid", {"24H": None, "7D": Decimal("-0.10")}),
        _line(4, "Dot", {"24H": Decimal("-0.02"), "7D": Decimal("0.30")}),
    ]
    assert [line.shown_as for line in group.ranked(lines, "24H")] == ["Ben", "Ann", "Dot", "Cid"]
    assert group.ranks(lines, "24H") == {2: 1, 1: 2, 4: 3}
    assert [line.shown_as for line in group.ranked(lines, "7D")] == ["Ann", "Dot", "Cid", "Ben"]  # a tie by name
    assert group.ranks(lines, "not a range") == group.ranks(lines, "24H")


WALLETS = ("12345.67", "13579.11", "14142.13")  # distinctive amounts: found in a line, they would be a leak


def _snapshot(strategy_id: int, account_id: int, at_ms: int, wallet: str, realised: str = "0") -> Snapshot:
    amount = Decimal(wallet)
    return Snapshot(
        strategy_id, account_id, at_ms, Decimal(50_000), amount, amount, Decimal(realised), Decimal(0), Decimal(0), "X"
    )


def test_a_line_holds_ratios_and_a_status_never_an_amount_and_is_read_again_once_old(people):
    engine = people["engine"]
    store, settings = SqlSnapshotStore(engine), load_settings({"DATABASE_URL": str(engine.url)})
    mine = _strategy(people, "ann", "Secret Strategy Name")
    with session_scope(engine) as session:
        account_id = session.get(Strategy, mine).account_id
    now = epoch_ms(utcnow())
    store_one(store, _snapshot(mine, account_id, now - 3 * HOUR_MS, WALLETS[0]))
    store_one(store, _snapshot(mine, account_id, now - 2 * HOUR_MS, WALLETS[1], realised="1233.44"))
    _join(people, "ann", mine)
    figures = group.BoardFigures(max_age_ms=30_000)

    def lines(at_ms: int) -> list[group.BoardLine]:
        with session_scope(engine) as session:
            shown = group.entrants(session)
            stale = figures.stale([e.strategy_id for e in shown], at_ms)
            rules = dashboard.FlowRules(corrections={sid: [] for sid in stale})
        return figures.lines(store, shown, rules, at_ms, settings)

    (line,) = lines(now)
    assert (line.strategy_id, line.shown_as, line.status, line.last_snapshot_ms) == (
        mine,
        "Ann Archer",
        "offline",  # silent for two hours
        now - 2 * HOUR_MS,
    )
    earned = Decimal("1233.44") / Decimal(WALLETS[0])  # the realised PnL: no flow
    assert abs(line.compared.returns["24H"] - earned) < Decimal("1e-20")
    text = repr(line)
    assert not any(wallet in text for wallet in WALLETS) and "1233.44" not in text and "Secret" not in text

    store_one(store, _snapshot(mine, account_id, now - HOUR_MS, WALLETS[2], realised="1795.46"))
    assert lines(now + 29_999) == [line]  # held: every open board reads the same figures within their age
    (again,) = lines(now + 30_000)
    assert again.last_snapshot_ms == now - HOUR_MS and again.compared != line.compared
    assert figures.stale([mine], now + 30_000) == []


def test_a_sign_in_sees_the_board_while_it_lasts_and_its_user_is_a_member(people):
    engine = people["engine"]
    idle = timedelta(hours=1)
    with session_scope(engine) as session:
        ann = session.get(User, people["ann"].id)
        members.start_session(session, user=ann, days=1)
        login_id = _newest_sign_in(session, ann.id)
        assert group.may_see_board(session, login_id, idle=idle)
        admin.set_disabled(session, actor_of(people["admin"]), user_id=ann.id, disabled=True)
        assert not group.may_see_board(session, login_id, idle=idle)
    with session_scope(engine) as session:
        unpaid = make_member(engine, name="Una Unpaid")
        members.start_session(session, user=session.get(User, unpaid.id), days=1)
        assert not group.may_see_board(session, _newest_sign_in(session, unpaid.id), idle=idle)


def _newest_sign_in(session, user_id: int) -> int:
    return session.scalar(select(func.max(LoginSession.id)).where(LoginSession.user_id == user_id))


def test_leaving_deletes_the_entry(people):
    mine = _strategy(people, "ann", "Trend")
    _join(people, "ann", mine, alias="Gone Soon")
    _do(people, "ann", lambda s, a: group.leave(s, a, mine))
    with session_scope(people["engine"]) as session:
        assert session.get(BoardEntry, mine) is None
