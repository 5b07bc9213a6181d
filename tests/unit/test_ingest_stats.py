"""IngestStats: accepted and refused snapshots of the last hour, per outcome."""

from projectalgo.ingest_stats import IngestStats


def test_the_last_hour_is_counted_and_older_minutes_are_not():
    now = [0.0]
    stats = IngestStats(clock=lambda: now[0])
    stats.count("accepted")
    stats.count("invalid_token")
    now[0] = 30 * 60
    stats.count("accepted")
    assert stats.last_hour() == {"accepted": 2, "invalid_token": 1}
    now[0] = 60 * 60  # the first minute is an hour old
    stats.count("accepted")
    assert stats.last_hour() == {"accepted": 2}
