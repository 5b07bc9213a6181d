"""live.Watchers: which tabs a snapshot or a notice is pushed to, and forgetting tabs that are gone."""

from projectalgo.live import GROUP_BOARD, Viewer, Watchers, share_link_topic

ALICE = Viewer.login(7)


class DashboardTab:
    pass


class StrategyTab:
    pass


def test_a_tab_watches_what_its_page_shows_and_nothing_it_showed_before():
    watchers = Watchers()
    watchers.watch("tab-1", DashboardTab, [1, 2], ALICE)
    watchers.watch("tab-2", StrategyTab, [2], ALICE)
    assert watchers.of(2) == [("tab-1", DashboardTab, ALICE), ("tab-2", StrategyTab, ALICE)]
    watchers.watch("tab-1", StrategyTab, [3], ALICE)  # the tab went on to another page
    assert watchers.of(1) == [] and watchers.of(2) == [("tab-2", StrategyTab, ALICE)]
    assert watchers.of(3) == [("tab-1", StrategyTab, ALICE)]


def test_tabs_without_a_connection_are_forgotten_after_the_grace_period_only():
    watchers = Watchers()
    watchers.watch("closed", StrategyTab, [1], ALICE)
    watchers.watch("reconnecting", StrategyTab, [1], ALICE)
    watchers.watch("open", StrategyTab, [1], ALICE)
    assert watchers.prune({"open"}.__contains__, now=0, grace_seconds=60) == 0  # first seen away: the clock starts
    assert watchers.prune({"open", "reconnecting"}.__contains__, now=30, grace_seconds=60) == 0  # back: the clock stops
    assert watchers.prune({"open"}.__contains__, now=59, grace_seconds=60) == 0
    assert watchers.prune({"open"}.__contains__, now=60, grace_seconds=60) == 1  # "closed": away for 60 s
    assert watchers.of(1) == [("reconnecting", StrategyTab, ALICE), ("open", StrategyTab, ALICE)]
    assert watchers.prune({"open"}.__contains__, now=119, grace_seconds=60) == 1  # "reconnecting" away since 59
    assert watchers.of(1) == [("open", StrategyTab, ALICE)]


def test_a_tab_hears_the_topics_of_its_page_and_a_share_links_visitor_is_its_own_viewer():
    watchers = Watchers()
    visitor = Viewer.link(3)
    watchers.watch("board", StrategyTab, [], ALICE, [GROUP_BOARD])
    watchers.watch("shared", DashboardTab, [1, 2], visitor, [share_link_topic(3)])
    assert watchers.on(GROUP_BOARD) == [("board", StrategyTab)]
    assert watchers.on(share_link_topic(3)) == [("shared", DashboardTab)]
    assert watchers.of(2) == [("shared", DashboardTab, visitor)]
    watchers.watch("board", StrategyTab, [2], ALICE)  # the tab went on to a page without topics
    assert watchers.on(GROUP_BOARD) == []
    watchers.forget("shared")
    assert watchers.on(share_link_topic(3)) == [] and watchers.of(2) == [("board", StrategyTab, ALICE)]


def test_a_layout_slot_stays_as_the_tab_goes_from_page_to_page_and_goes_when_the_tab_does():
    watchers = Watchers()
    watchers.watch("tab", DashboardTab, [1], ALICE)
    watchers.watch("tab", StrategyTab, [], ALICE, ["alerts:7"], slot="bell")
    watchers.watch("tab", StrategyTab, [2], ALICE)  # the next page replaces the page's slot only
    assert watchers.of(1) == [] and watchers.of(2) == [("tab", StrategyTab, ALICE)]
    assert watchers.on("alerts:7") == [("tab", StrategyTab)]
    assert watchers.watches("tab") and watchers.watches("tab", "bell")
    watchers.forget("tab")
    assert watchers.on("alerts:7") == [] and watchers.of(2) == [] and not watchers.registered("tab")
