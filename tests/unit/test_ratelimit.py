from projectalgo.ratelimit import RateLimiter


def test_a_burst_then_the_steady_rate_per_key():
    now = [0.0]
    limiter = RateLimiter(rate_per_second=10, burst=50, clock=lambda: now[0])
    assert all(limiter.acquire("a") == 0 for _ in range(50))
    assert limiter.acquire("a") == 0.1
    assert limiter.acquire("b") == 0  # another key has its own bucket
    now[0] += 0.1
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") > 0
    now[0] += 60
    assert all(limiter.acquire("a") == 0 for _ in range(50))  # refills up to the burst, not beyond
    assert limiter.acquire("a") > 0
