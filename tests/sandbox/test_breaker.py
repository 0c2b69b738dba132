"""The circuit breaker opens after N consecutive failures; while open, one probe per interval may close it."""

from m2rl_slime.sandbox.breaker import CircuitBreaker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_opens_after_threshold_and_a_probe_closes_it():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, probe_interval_s=0.5, clock=clock)
    assert [breaker.record_failure() for _ in range(3)] == [False, False, True]
    assert breaker.state == "open" and not breaker.allow()
    assert not breaker.take_probe() and breaker.retry_in() == 0.5  # not due yet
    clock.now = 0.5
    assert breaker.take_probe() and not breaker.take_probe()  # exactly one prober
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.times_opened == 1


def test_a_failed_probe_waits_for_the_next_interval():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, probe_interval_s=0.5, clock=clock)
    assert breaker.record_failure()
    clock.now = 0.5
    assert breaker.take_probe()
    breaker.probe_failed()
    clock.now = 0.9
    assert not breaker.take_probe()
    clock.now = 1.0
    assert breaker.take_probe()
    assert breaker.times_opened == 1  # still the same opening


def test_success_resets_the_count():
    breaker = CircuitBreaker(threshold=2, probe_interval_s=5, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    assert not breaker.record_failure()
    assert breaker.state == "closed"


def test_a_vanished_prober_does_not_wedge_the_breaker():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, probe_interval_s=0.5, clock=clock)
    breaker.record_failure()
    clock.now = 0.5
    assert breaker.take_probe()  # its caller is cancelled and never reports
    clock.now = 1.0
    assert not breaker.take_probe()
    clock.now = 5.5
    assert breaker.take_probe()
