"""The owner's share links section (strategy page and dashboard) through its event handlers: a link is shown once
and listed, revoking it stops its open page, and nobody but the owner sees or changes the strategy's links."""

import asyncio

import pytest

from projectalgo.db import session_scope
from projectalgo.live_push import live_push
from projectalgo.models import ShareLink
from projectalgo.pages.share_links_section import ShareLinksState
from projectalgo.pages.shared import SharedLiveState, SharedPageState
from tests.factories import grant_membership, strategy_world
from tests.support.states import browser_view, call, same_tab, signed_in_state, visit


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    for who in ("alice", "bob"):
        grant_membership(app_services, world[who], days=30)
    return world


def _section(world, who, path):
    section = signed_in_state(ShareLinksState, world[who])
    visit(section, path)
    call(section, ShareLinksState.open_links)
    return section


def _visit_link(url):
    page = signed_in_state(SharedPageState, None)
    visit(page, url.split("127.0.0.1:3999", 1)[1], client_token="visitor", client_ip="198.51.100.20")
    call(page, SharedPageState.open_share)
    return page


def test_the_owner_makes_a_link_sees_it_once_lists_and_revokes_it(world):
    section = _section(world, "alice", f"/strategies/{world['strategy_id']}")
    assert section.mine and section.links == []
    call(section, ShareLinksState.create_link, {"label": "Recruits", "days": "14", "amounts": "on"})
    assert section.error == "" and section.new_link.startswith("http://127.0.0.1:3999/share/sh_")
    url = section.new_link
    (row,) = section.links
    assert (row.label, row.amounts, row.status, row.last_viewed_at) == ("Recruits", "shown", "active", "")
    assert url.rsplit("/", 1)[-1].startswith(row.prefix)
    call(section, ShareLinksState.dismiss_link)
    assert section.new_link == "" and url.rsplit("/", 1)[-1] not in browser_view(section)

    visitor = _visit_link(url)
    assert visitor.shown and live_push.watching("visitor")
    call(section, ShareLinksState.revoke_link, row.id)  # announced: the visitor's open page hears it
    assert section.notice.startswith("Link revoked") and section.links[0].status == "revoked"
    asyncio.run(same_tab(visitor, SharedLiveState)._apply_notice(f"share-link:{row.id}"))
    assert visitor.gone == "This link was revoked." and not live_push.watching("visitor")


def test_the_dashboards_section_makes_portfolio_links(world):
    section = _section(world, "alice", "/dashboard")
    call(section, ShareLinksState.create_link, {"label": "", "days": "365"})
    assert section.error == "" and [r.amounts for r in section.links] == ["hidden"]
    with session_scope(world["engine"]) as session:
        assert session.query(ShareLink).one().strategy_id is None


def test_bad_input_gets_a_message(world):
    section = _section(world, "alice", f"/strategies/{world['strategy_id']}")
    call(section, ShareLinksState.create_link, {"label": "x", "days": "366"})
    assert section.error == "A link lasts 1 to 365 days." and section.new_link == ""
    call(section, ShareLinksState.create_link, {"label": "x", "days": "soon"})
    assert section.error != "" and section.links == []
    call(section, ShareLinksState.revoke_link, "not an id")
    assert section.error != ""


def test_nobody_else_sees_or_changes_a_strategys_links(world):
    owners = _section(world, "alice", f"/strategies/{world['strategy_id']}")
    call(owners, ShareLinksState.create_link, {"label": "Alice's", "days": "7"})
    link_id = owners.links[0].id
    for who in ("bob", "admin"):
        section = _section(world, who, f"/strategies/{world['strategy_id']}")
        assert not section.mine and section.links == [] and "Alice's" not in browser_view(section)
        call(section, ShareLinksState.create_link, {"label": "Sneaky", "days": "7"})
        assert section.error == "No such strategy." and section.new_link == ""
        call(section, ShareLinksState.revoke_link, link_id)
        assert section.error.startswith("No such")  # an admin revokes on /admin, audited
    with session_scope(world["engine"]) as session:
        assert [(link.label, link.revoked_at) for link in session.query(ShareLink)] == [("Alice's", None)]
