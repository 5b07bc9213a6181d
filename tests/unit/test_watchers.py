"""live.Watchers: which tabs a snapshot is pushed to, and forgetting tabs that are gone."""

from projectalgo.live import Watchers


class DashboardTab:
    pass


class StrategyTab:
    pass


def test_a_tab_watches_what_its_page_shows_and_nothing_it_showed_before():
    watchers = Watchers()
    watchers.watch("tab-1", DashboardTab, [1, 2], 7)
    watchers.watch("tab-2", StrategyTab, [2], 7)
    assert watchers.of(2) == [("tab-1", DashboardTab, 7), ("tab-2", StrategyTab, 7)]
    watchers.watch("tab-1", StrategyTab, [3], 7)  # the tab went on to another page
    assert watchers.of(1) == [] and watchers.of(2) == [("tab-2", StrategyTab, 7)]
    assert watchers.of(3) == [("tab-1", StrategyTab, 7)]


def test_tabs_without_a_connection_are_forgotten_after_the_grace_period_only():
    watchers = Watchers()
    watchers.watch("closed", StrategyTab, [1], 7)
    watchers.watch("reconnecting", StrategyTab, [1], 7)
    watchers.watch("open", StrategyTab, [1], 7)
    assert watchers.prune({"open"}.__contains__, now=0, grace_seconds=60) == 0  # first seen away: the clock starts
    assert watchers.prune({"open", "reconnecting"}.__contains__, now=30, grace_seconds=60) == 0  # back: the clock stops
    assert watchers.prune({"open"}.__contains__, now=59, grace_seconds=60) == 0
    assert watchers.prune({"open"}.__contains__, now=60, grace_seconds=60) == 1  # "closed": away for 60 s
    assert watchers.of(1) == [("reconnecting", StrategyTab, 7), ("open", StrategyTab, 7)]
    assert watchers.prune({"open"}.__contains__, now=119, grace_seconds=60) == 1  # "reconnecting" away since 59
    assert watchers.of(1) == [("open", StrategyTab, 7)]
