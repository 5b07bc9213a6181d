"""Share links' rules (projectalgo/sharing.py) on a real SQLite database: who may make, list and revoke them, what
a token resolves to, when a link stops showing a strategy, and the per-client limit on a shared page's loads."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from projectalgo import sharing, strategies
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.errors import InvalidInputError, NotFoundError, RateLimitedError
from projectalgo.models import AuditEntry, ShareLink, User
from tests.factories import actor_of, make_admin, make_member, make_strategy


@pytest.fixture
def world(engine):
    admin = make_admin(engine)
    alice = make_member(engine, inviter=admin, name="Alice")
    bob = make_member(engine, inviter=admin, name="Bob")
    trend, _ = make_strategy(engine, alice, name="Trend")
    carry, _ = make_strategy(engine, alice, name="Carry", account="Side")
    bobs, _ = make_strategy(engine, bob, name="Bob's")
    return {"engine": engine, "admin": admin, "alice": alice, "bob": bob, "trend": trend, "carry": carry, "bobs": bobs}


def _make(world, who="alice", strategy="trend", **options):
    now = options.pop("now", utcnow())
    arguments = {"label": "For recruits", "days": 30, "show_amounts": False} | options
    with session_scope(world["engine"]) as session:
        return sharing.create_link(
            session, actor_of(world[who]), strategy_id=world[strategy] if strategy else None, now=now, **arguments
        )


def _resolve(world, token, now=None):
    with session_scope(world["engine"]) as session:
        return sharing.resolve(session, token, now=now or utcnow())


def test_a_link_is_shown_once_kept_as_a_hash_and_resolves_to_its_strategy_only(world):
    view, token = _make(world)
    assert token.startswith(sharing.TOKEN_PREFIX) and view.prefix == token[: sharing.PREFIX_LENGTH]
    assert (view.status, view.show_amounts, view.label) == ("active", False, "For recruits")
    with session_scope(world["engine"]) as session:
        stored = session.get(ShareLink, view.id)
        assert token not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64
    resolved = _resolve(world, token)
    assert resolved.status == "active" and not resolved.shown.portfolio
    with session_scope(world["engine"]) as session:
        account = strategies.own_strategy(session, actor_of(world["alice"]), world["trend"]).account_id
    assert resolved.shown.strategy_accounts == ((world["trend"], account),)
    assert _resolve(world, token + "x") is None and _resolve(world, "not a token") is None


def test_a_portfolio_link_shows_the_owners_strategies_not_archived_and_nobody_elses(world):
    _, token = _make(world, strategy=None, show_amounts=True)
    shown = _resolve(world, token).shown
    assert shown.portfolio and shown.show_amounts
    assert [sid for sid, _ in shown.strategy_accounts] == [world["trend"], world["carry"]]
    with session_scope(world["engine"]) as session:
        strategies.set_strategy_archived(session, actor_of(world["alice"]), world["carry"], archived=True)
    assert [sid for sid, _ in _resolve(world, token).shown.strategy_accounts] == [world["trend"]]


def test_only_the_owner_makes_links_within_a_year_and_a_bounded_number(world):
    with pytest.raises(NotFoundError):
        _make(world, who="bob", strategy="trend")
    with pytest.raises(NotFoundError):
        _make(world, who="admin", strategy="trend")  # admins see strategies, but only owners share them
    for days in (0, 366, -1):
        with pytest.raises(InvalidInputError, match="1 to 365 days"):
            _make(world, days=days)
    with pytest.raises(InvalidInputError, match="at most"):
        _make(world, label="x" * (sharing.LABEL_MAX_LENGTH + 1))
    now = utcnow()
    assert _make(world, days=365, now=now)[0].expires_at == now + timedelta(days=365)
    made = [_make(world)[0] for _ in range(sharing.MAX_LIVE_LINKS - 1)]
    with pytest.raises(InvalidInputError, match="revoke one first"):
        _make(world)
    with session_scope(world["engine"]) as session:
        sharing.revoke(session, actor_of(world["alice"]), made[0].id, now=utcnow())
    assert _make(world)[0].status == "active"  # a revoked link no longer counts


def test_expired_and_revoked_links_resolve_to_why_and_show_nothing(world):
    made_at = utcnow() - timedelta(days=2)
    _, expired = _make(world, days=1, now=made_at)
    assert (_resolve(world, expired).status, _resolve(world, expired).shown) == ("expired", None)
    view, token = _make(world)
    with session_scope(world["engine"]) as session:
        assert sharing.revoke(session, actor_of(world["alice"]), view.id, now=utcnow()) == view.id
    assert (_resolve(world, token).status, _resolve(world, token).shown) == ("revoked", None)


def test_a_disabled_owners_links_stop(world):
    view, token = _make(world)
    with session_scope(world["engine"]) as session:
        session.get(User, world["alice"].id).disabled_at = utcnow()
    assert _resolve(world, token).status == "disabled"
    with session_scope(world["engine"]) as session:
        assert sharing.links_showing(session, world["trend"], [view.id], now=utcnow()) == set()


def test_which_links_still_show_a_strategy(world):
    strategy_link, _ = _make(world)
    portfolio, _ = _make(world, strategy=None)
    carry_link, _ = _make(world, strategy="carry")
    bobs_portfolio, _ = _make(world, who="bob", strategy=None)
    ids = [strategy_link.id, portfolio.id, carry_link.id, bobs_portfolio.id]
    with session_scope(world["engine"]) as session:
        assert sharing.links_showing(session, world["trend"], ids, now=utcnow()) == {strategy_link.id, portfolio.id}
        assert sharing.links_showing(session, world["trend"], ids, now=utcnow() + timedelta(days=31)) == set()
        strategies.set_strategy_archived(session, actor_of(world["alice"]), world["trend"], archived=True)
    with session_scope(world["engine"]) as session:  # an archived strategy leaves the portfolio, not its own link
        assert sharing.links_showing(session, world["trend"], ids, now=utcnow()) == {strategy_link.id}


def test_owners_list_their_own_links_and_admins_all_of_them(world):
    _make(world, label="first")
    _make(world, label="second")
    _make(world, strategy=None, label="whole")
    _make(world, who="bob", strategy="bobs", label="bob's")
    now = utcnow()
    with session_scope(world["engine"]) as session:
        alice, bob = actor_of(world["alice"]), actor_of(world["bob"])
        assert [v.label for v in sharing.owner_links(session, alice, world["trend"], now=now)] == ["second", "first"]
        assert [v.label for v in sharing.owner_links(session, alice, None, now=now)] == ["whole"]
        assert [v.label for v in sharing.owner_links(session, bob, None, now=now)] == []
        with pytest.raises(NotFoundError):
            sharing.owner_links(session, bob, world["trend"], now=now)
        with pytest.raises(InvalidInputError):
            sharing.all_links(session, alice, now=now)
        everything = sharing.all_links(session, actor_of(world["admin"]), now=now)
    assert [(a.link.label, a.owner_email, a.shows) for a in everything][-2:] == [
        ("second", world["alice"].email, f"strategy Trend (#{world['trend']})"),
        ("first", world["alice"].email, f"strategy Trend (#{world['trend']})"),
    ]
    assert everything[0].shows == f"strategy Bob's (#{world['bobs']})" and everything[1].shows == "portfolio"


def test_the_owner_or_an_admin_revokes_and_only_the_admins_revocation_is_audited(world):
    own, _ = _make(world)
    theirs, _ = _make(world, label="another")
    with session_scope(world["engine"]) as session:
        with pytest.raises(NotFoundError):
            sharing.revoke(session, actor_of(world["bob"]), own.id, now=utcnow(), as_admin=True)
        with pytest.raises(NotFoundError):
            sharing.revoke(session, actor_of(world["alice"]), "7; drop", now=utcnow())
        sharing.revoke(session, actor_of(world["alice"]), own.id, now=utcnow())
        with pytest.raises(NotFoundError):  # outside /admin, an admin is as anyone else
            sharing.revoke(session, actor_of(world["admin"]), theirs.id, now=utcnow())
        sharing.revoke(session, actor_of(world["admin"]), theirs.id, now=utcnow(), as_admin=True)
        sharing.revoke(session, actor_of(world["admin"]), theirs.id, now=utcnow(), as_admin=True)  # once is enough
    with session_scope(world["engine"]) as session:
        audited = session.scalars(select(AuditEntry)).all()
        assert [(a.actor_id, a.action, a.target_user_id, a.target) for a in audited] == [
            (world["admin"].id, "revoke share link", world["alice"].id, f"link {theirs.prefix}")
        ]
        assert all(session.get(ShareLink, i).revoked_at for i in (own.id, theirs.id))


def test_last_viewed_is_written_at_most_every_few_minutes(world):
    view, _ = _make(world)
    now = utcnow()
    for at in (now, now + timedelta(minutes=1), now + sharing.LAST_VIEWED_EVERY + timedelta(seconds=1)):
        with session_scope(world["engine"]) as session:
            sharing.record_view(session, view.id, now=at)
    with session_scope(world["engine"]) as session:
        assert session.get(ShareLink, view.id).last_viewed_at == now + sharing.LAST_VIEWED_EVERY + timedelta(seconds=1)


def test_a_clients_loads_are_limited_and_others_are_not(world):
    now = utcnow()
    with session_scope(world["engine"]) as session:
        for _ in range(sharing.VIEWS_PER_WINDOW):
            sharing.take_view(session, "198.51.100.7", now=now)
        with pytest.raises(RateLimitedError, match="Try again in"):
            sharing.take_view(session, "198.51.100.7", now=now)
        sharing.take_view(session, "198.51.100.8", now=now)
        # A window later the client may load again, and its old loads are gone.
        sharing.take_view(session, "198.51.100.7", now=now + sharing.VIEW_WINDOW + timedelta(seconds=1))
        kept = session.scalars(select(sharing.Attempt).where(sharing.Attempt.key == "198.51.100.7")).all()
        assert len(kept) == 1
