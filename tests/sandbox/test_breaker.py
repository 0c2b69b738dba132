"""The circuit breaker opens after N consecutive failures, lets one probe through after the reset time."""

from m2rl_slime.sandbox.breaker import CircuitBreaker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_opens_after_threshold_and_recovers_through_one_probe():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, reset_s=10, clock=clock)
    assert [breaker.record_failure() for _ in range(3)] == [False, False, True]
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.retry_in() == 10
    clock.now = 10
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.times_opened == 1


def test_failed_probe_reopens():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_s=5, clock=clock)
    assert breaker.record_failure()
    clock.now = 5
    assert breaker.allow()
    assert breaker.record_failure()  # probe failed: open again
    assert breaker.state == "open" and breaker.times_opened == 2
    clock.now = 9
    assert not breaker.allow()


def test_success_resets_the_count():
    breaker = CircuitBreaker(threshold=2, reset_s=5, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    assert not breaker.record_failure()
    assert breaker.state == "closed"


def test_a_vanished_probe_does_not_wedge_the_breaker():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_s=5, clock=clock)
    breaker.record_failure()
    clock.now = 5
    assert breaker.allow()  # the probe's caller is cancelled and never reports
    assert not breaker.allow()
    clock.now = 10
    assert breaker.allow()
