"""/group through its event handlers, as a browser's tab sends them, on a real database and snapshot store: what a
member sees of another's strategy on the board (percentages and an alias, nothing else), a board notice reading it
again with the viewer's rights checked, the owner's choices, and a moderator's take-off."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from projectalgo.clock import HOUR_MS, utcnow
from projectalgo.db import session_scope
from projectalgo.live import GROUP_BOARD
from projectalgo.live_push import live_push
from projectalgo.models import AuditEntry, Strategy, User
from projectalgo.pages.group import GroupState
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from tests.factories import grant_membership, make_admin, make_member, make_strategy, store_one
from tests.support.states import browser_view, call, signed_in_state, visit

WALLETS = ("24680.13", "25802.47")  # Ann's wallet balances: found in a tab's state, they would be a leak


@pytest.fixture
def world(app_services):
    engine = app_services
    boss = make_admin(app_services, name="Ada Admin")
    ann = make_member(engine, inviter=boss, name="Ann Archer", email="ann.archer@example.com")
    ben = make_member(engine, inviter=boss, name="Ben Baker")
    for member in (ann, ben):
        grant_membership(engine, member, days=30)
    strategy_id, _ = make_strategy(engine, ann, name="Hidden Trend", account="Ann Secret Account")
    with session_scope(engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    now = epoch_ms(utcnow())
    for at, wallet, realised in ((now - 3 * HOUR_MS, WALLETS[0], "0"), (now - 60_000, WALLETS[1], "1122.34")):
        amount = Decimal(wallet)
        snapshot = Snapshot(
            strategy_id, account_id, at, Decimal(50_000), amount, amount, Decimal(realised), Decimal(0), Decimal(0), "X"
        )
        store_one(services().snapshot_store, snapshot)
    return {"engine": engine, "admin": boss, "ann": ann, "ben": ben, "strategy_id": strategy_id}


def _tab(user, name: str) -> GroupState:
    page = signed_in_state(GroupState, user)
    visit(page, "/group", client_token=name)
    call(page, GroupState.open_group)
    return page


def _notice(page: GroupState) -> None:
    """What the live push does on every tab watching the board when a change is announced."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, page._apply_notice(GROUP_BOARD)).result()


def _names(page: GroupState) -> list[str]:
    return [row.name for row in page.rows]


def test_another_member_sees_the_opted_in_strategy_in_percentages_under_its_alias_and_not_after_it_left(world):
    ann, ben = _tab(world["ann"], "ann-tab"), _tab(world["ben"], "ben-tab")
    assert ben.rows == [] and live_push.watching("ben-tab")  # registered for the board's notices
    assert [(o.name, o.on_board) for o in ann.own] == [("Hidden Trend", False)]

    call(ann, GroupState.join_board, {"strategy_id": str(world["strategy_id"]), "alias": "Quiet Fox"})
    assert ann.error == "" and ann.own[0].on_board and _names(ann) == ["Quiet Fox"]
    _notice(ben)
    (row,) = ben.rows
    assert (row.name, row.rank, row.status, row.account) == ("Quiet Fox", 1, "live", "")
    assert row.shown_return == "+4.55%"  # 1,122.34 realised on 24,680.13
    seen = browser_view(ben)
    for private in (*WALLETS, "1122.34", "1,122.34", "Hidden Trend", "Ann Secret Account", "Ann Archer", "ann.archer"):
        assert private not in seen, private

    call(ann, GroupState.set_alias, {"strategy_id": str(world["strategy_id"]), "alias": ""})
    _notice(ben)
    assert _names(ben) == ["Ann Archer"]  # no alias: the owner's name

    call(ann, GroupState.leave_board, world["strategy_id"])
    assert ann.error == "" and not ann.own[0].on_board
    _notice(ben)
    assert ben.rows == []


def test_a_notice_reads_nothing_for_a_viewer_who_lost_the_right_and_stops_their_tab_hearing(world):
    ann = _tab(world["ann"], "ann-tab")
    call(ann, GroupState.join_board, {"strategy_id": str(world["strategy_id"]), "alias": ""})
    ben = _tab(world["ben"], "ben-tab")
    assert _names(ben) == ["Ann Archer"]
    with session_scope(world["engine"]) as session:  # Ben is disabled while his board is open
        session.get(User, world["ben"].id).disabled_at = utcnow()
    _notice(ben)
    assert ben.rows == [] and ben.own == [] and not live_push.watching("ben-tab")


def test_the_range_ranks_and_the_columns_sort(world):
    ann = _tab(world["ann"], "ann-tab")
    other, _ = make_strategy(world["engine"], world["ben"], name="Flat")
    ben = _tab(world["ben"], "ben-tab")
    call(ben, GroupState.join_board, {"strategy_id": str(other), "alias": "Flat Line"})  # no snapshot: no return
    call(ann, GroupState.join_board, {"strategy_id": str(world["strategy_id"]), "alias": "Quiet Fox"})
    call(ann, GroupState.set_range, "7D")
    assert (ann.range_key, ann.sort_column, ann.sort_descending) == ("7D", "7D", True)
    assert [(r.name, r.rank, r.shown_return) for r in ann.rows] == [("Quiet Fox", 1, "+4.55%"), ("Flat Line", 0, "—")]
    call(ann, GroupState.sort_by, "name")
    assert _names(ann) == ["Flat Line", "Quiet Fox"]
    call(ann, GroupState.sort_by, "name")
    assert _names(ann) == ["Quiet Fox", "Flat Line"]
    call(ann, GroupState.sort_by, "not a column")
    call(ann, GroupState.set_range, {"not": "a range"})
    assert ann.range_key == "24H" and ann.error == ""


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"strategy_id": "STRATEGY", "alias": "Tab\tbed"}, "control or invisible"),
        ({"strategy_id": "STRATEGY", "alias": "x" * 61}, "at most 60 characters"),
        ({"strategy_id": "STRATEGY", "alias": "Ben Baker"}, "another member's name"),
        ({"strategy_id": "STRATEGY", "alias": ["not", "text"]}, "could not be read"),
        ({"strategy_id": "12345678901234", "alias": ""}, "No such strategy"),
        ("not a form", "could not be read"),
    ],
)
def test_bad_input_gets_a_readable_message_and_changes_nothing(world, form, message):
    ann = _tab(world["ann"], "ann-tab")
    if isinstance(form, dict) and form["strategy_id"] == "STRATEGY":
        form = {**form, "strategy_id": str(world["strategy_id"])}
    assert call(ann, GroupState.join_board, form) is None
    assert message in ann.error and ann.rows == [] and not ann.own[0].on_board


def test_a_moderator_takes_a_line_off_and_a_member_calling_it_is_refused_and_audited(world):
    ann = _tab(world["ann"], "ann-tab")
    call(ann, GroupState.join_board, {"strategy_id": str(world["strategy_id"]), "alias": "Rude Alias"})
    form = {"strategy_id": str(world["strategy_id"]), "reason": "offensive alias"}
    redirect = call(_tab(world["ben"], "ben-tab"), GroupState.take_off, form)
    assert "/dashboard" in str(redirect)
    moderator = _tab(world["admin"], "admin-tab")
    assert _names(moderator) == ["Rude Alias"]
    call(moderator, GroupState.take_off, form)
    assert moderator.error == "" and moderator.rows == []
    _notice(ann)
    assert not ann.own[0].on_board  # the owner's own section follows
    with session_scope(world["engine"]) as session:
        audited = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(a.actor_id, a.action, a.outcome) for a in audited[-2:]] == [
        (world["ben"].id, "take off group board", "refused"),
        (world["admin"].id, "take off group board", "done"),
    ]


def test_visitors_without_a_sign_in_or_a_membership_are_sent_away(world):
    nobody = signed_in_state(GroupState, None)
    visit(nobody, "/group")
    assert "/login" in str(call(nobody, GroupState.open_group))
    unpaid = make_member(world["engine"], name="Una Unpaid")
    page = signed_in_state(GroupState, unpaid)
    visit(page, "/group", client_token="unpaid-tab")
    assert "/membership" in str(call(page, GroupState.open_group)) and page.rows == []
    assert not live_push.watching("unpaid-tab")
