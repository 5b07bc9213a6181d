"""A strategy's flow corrections kept in the database (projectalgo.flows): only the owner changes them, a new word
on a flow replaces the last, and the figures follow them."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from projectalgo import flows
from projectalgo.analytics import ConfirmFlow, ManualFlow
from projectalgo.db import session_scope
from projectalgo.errors import InvalidInputError, NotFoundError
from projectalgo.models import FlowCorrection
from projectalgo.settings import load_settings
from projectalgo.snapshots import Snapshot
from tests.factories import actor_of, strategy_world

D = Decimal
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
T1 = T0 + 3_600_000


@pytest.fixture
def world(engine):
    return strategy_world(engine)


def snap(strategy_id, at_ms, wallet, realised="0"):
    return Snapshot(strategy_id, 1, at_ms, D(100), D(wallet), D(wallet), D(realised), D(0), D(0), "XBTUSD")


def corrections(world):
    with session_scope(world["engine"]) as session:
        return flows.corrections_of(session, world["strategy_id"])


CHANGES = {
    "confirm": lambda s, a, sid: flows.confirm_flow(s, a, sid, at_ms=T1, found=D(5000), amount=D(4000)),
    "not_a_flow": lambda s, a, sid: flows.mark_not_a_flow(s, a, sid, at_ms=T1, found=D(5000)),
    "manual": lambda s, a, sid: flows.add_manual_flow(s, a, sid, at_ms=T1, amount=D(10)),
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("intruder", ["bob", "admin"])
def test_nobody_but_the_owner_corrects_a_strategys_flows(world, change, intruder):
    with pytest.raises(NotFoundError), session_scope(world["engine"]) as session:
        CHANGES[change](session, actor_of(world[intruder]), world["strategy_id"])
    assert corrections(world) == []


def test_a_new_word_on_a_flow_replaces_the_last_and_manual_flows_add_up(world):
    alice, sid = actor_of(world["alice"]), world["strategy_id"]
    with session_scope(world["engine"]) as session:
        flows.mark_not_a_flow(session, alice, sid, at_ms=T1, found=D(5000))
        flows.confirm_flow(session, alice, sid, at_ms=T1, found=D(5000), amount=D("4000.50"))
        flows.add_manual_flow(session, alice, sid, at_ms=T1, amount=D(10))
        flows.add_manual_flow(session, alice, sid, at_ms=T1, amount=D(-3))
    assert corrections(world) == [ConfirmFlow(T1, D(5000), D("4000.50")), ManualFlow(T1, D(10)), ManualFlow(T1, D(-3))]
    with session_scope(world["engine"]) as session:
        flows.remove_manual_flow(session, alice, sid, at_ms=T1, amount=D(10))
        with pytest.raises(InvalidInputError):
            flows.remove_manual_flow(session, alice, sid, at_ms=T1, amount=D(10))
    assert corrections(world) == [ConfirmFlow(T1, D(5000), D("4000.50")), ManualFlow(T1, D(-3))]


def test_the_figures_follow_the_owners_corrections(world):
    alice, sid = actor_of(world["alice"]), world["strategy_id"]
    snaps = [snap(sid, T0, "10000"), snap(sid, T1, "15000")]
    settings = load_settings({"APP_ENV": "test", "SECRET_KEY_BASE": "x" * 40})
    found = flows.strategy_figures(snaps, corrections(world), settings, 0)
    assert [f.amount for f in found.flows] == [D(5000)] and found.performance.profit == D(0)
    with session_scope(world["engine"]) as session:
        flows.mark_not_a_flow(session, alice, sid, at_ms=T1, found=D(5000))
    after = flows.strategy_figures(snaps, corrections(world), settings, 0)
    assert after.flows == () and after.performance.profit == D(5000)


@pytest.mark.parametrize(
    ("typed", "amount"), [("5000", D(5000)), (" -1,250.50 ", D("-1250.50")), ("$300", D(300)), ("+7", D(7))]
)
def test_amounts_as_members_type_them(typed, amount):
    assert flows.parse_amount(typed) == amount


@pytest.mark.parametrize("typed", ["", "five", "NaN", "Infinity", "1e20", "0", "0.000000001"])
def test_what_is_not_an_amount_gets_a_readable_message(typed):
    with pytest.raises(InvalidInputError) as refused:
        flows.parse_amount(typed)
    assert str(refused.value)


def test_a_date_out_of_range_is_refused_and_nothing_is_written(world):
    with pytest.raises(InvalidInputError), session_scope(world["engine"]) as session:
        flows.add_manual_flow(session, actor_of(world["alice"]), world["strategy_id"], at_ms=0, amount=D(5))
    with session_scope(world["engine"]) as session:
        assert session.scalar(select(func.count()).select_from(FlowCorrection)) == 0


def test_a_strategy_keeps_a_bounded_number_of_corrections(world, monkeypatch):
    monkeypatch.setattr(flows, "MAX_CORRECTIONS", 2)
    alice, sid = actor_of(world["alice"]), world["strategy_id"]
    with session_scope(world["engine"]) as session:
        flows.add_manual_flow(session, alice, sid, at_ms=T1, amount=D(1))
        flows.add_manual_flow(session, alice, sid, at_ms=T1, amount=D(2))
    with pytest.raises(InvalidInputError, match="at most 2"), session_scope(world["engine"]) as session:
        flows.add_manual_flow(session, alice, sid, at_ms=T1, amount=D(3))
    assert len(corrections(world)) == 2
