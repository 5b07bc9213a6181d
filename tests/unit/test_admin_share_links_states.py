"""/admin's share links tab through its event handlers: an admin lists every member's links and revokes one
(audited); anyone else is refused, the refusal audited, and sees none of them."""

import pytest
from sqlalchemy import select

from projectalgo import sharing
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import AuditEntry, ShareLink
from projectalgo.pages.admin.share_links import AdminShareLinksState
from tests.factories import actor_of, grant_membership, strategy_world
from tests.support.states import browser_view, call, signed_in_state, visit


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    grant_membership(app_services, world["bob"], days=30)
    with session_scope(app_services) as session:
        view, token = sharing.create_link(
            session,
            actor_of(world["alice"]),
            strategy_id=world["strategy_id"],
            label="For recruits",
            days=7,
            show_amounts=False,
            now=utcnow(),
        )
    world["link_id"], world["share_token"] = view.id, token
    return world


def _tab(world, who):
    state = signed_in_state(AdminShareLinksState, world[who] if who else None)
    visit(state, "/admin")
    return state


def test_an_admin_sees_every_link_and_revokes_one_audited(world):
    tab = _tab(world, "admin")
    assert call(tab, AdminShareLinksState.open_links) is None
    (row,) = tab.links
    assert (row.owner, row.shows, row.label, row.status) == (
        world["alice"].email,
        f"strategy Trend (#{world['strategy_id']})",
        "For recruits",
        "active",
    )
    assert world["share_token"] not in browser_view(tab)
    call(tab, AdminShareLinksState.revoke_link, world["link_id"])
    assert tab.notice.startswith("Link revoked") and tab.links[0].status == "revoked"
    with session_scope(world["engine"]) as session:
        audited = session.scalars(select(AuditEntry)).all()
        assert [(a.actor_id, a.action, a.outcome) for a in audited][-1] == (
            world["admin"].id,
            "revoke share link",
            "done",
        )
    call(tab, AdminShareLinksState.revoke_link, "nonsense")
    assert tab.error != ""


@pytest.mark.parametrize("who", ["bob", "alice", None])
def test_anyone_else_is_refused_and_audited(world, who):
    tab = _tab(world, who)
    for handler, args in (
        (AdminShareLinksState.open_links, ()),
        (AdminShareLinksState.revoke_link, (world["link_id"],)),
    ):
        sent = call(tab, handler, *args)
        assert sent is not None and tab.links == []  # a redirect away
    with session_scope(world["engine"]) as session:
        assert session.get(ShareLink, world["link_id"]).revoked_at is None
        refused = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "refused")).all()
        assert [a.action for a in refused] == ["list share links", "revoke share link"]
    assert "For recruits" not in browser_view(tab)
