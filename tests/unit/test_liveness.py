from projectalgo import liveness
from projectalgo.settings import load_settings

MINUTE = 60_000
NOW = 10**12


def test_a_bot_is_live_then_stale_then_offline_as_its_last_snapshot_ages():
    settings = load_settings({"STALE_AFTER_MINUTES": "10", "OFFLINE_AFTER_MINUTES": "60"})
    assert liveness.status(None, NOW, settings) == "never"
    assert liveness.status(NOW - 10 * MINUTE, NOW, settings) == "live"
    assert liveness.status(NOW - 10 * MINUTE - 1, NOW, settings) == "stale"
    assert liveness.status(NOW - 60 * MINUTE, NOW, settings) == "stale"
    assert liveness.status(NOW - 60 * MINUTE - 1, NOW, settings) == "offline"


def test_with_stale_and_offline_alike_a_bot_goes_from_live_straight_to_offline():
    settings = load_settings({"STALE_AFTER_MINUTES": "120", "OFFLINE_AFTER_MINUTES": "120"})
    assert liveness.status(NOW - 120 * MINUTE, NOW, settings) == "live"
    assert liveness.status(NOW - 120 * MINUTE - 1, NOW, settings) == "offline"
