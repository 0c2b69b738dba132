"""A thread-safe circuit breaker shared by every event loop of the process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `reset_s` lets one probe through (half-open).

    A success closes it; a failed probe re-opens it for another `reset_s`.

    Args:
        threshold: Consecutive failures that open the breaker.
        reset_s: Seconds the breaker stays open before a probe is allowed.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(self, threshold: int, reset_s: float, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._probe_started = 0.0
        self.times_opened = 0

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a request be sent now? In half-open state only one caller (the probe) gets True."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            # A probe whose caller vanished (cancelled) must not wedge the breaker: allow another after reset_s.
            stale = self._probing and self._clock() - self._probe_started >= self.reset_s
            if state == "half_open" and (not self._probing or stale):
                self._probing = True
                self._probe_started = self._clock()
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> bool:
        """Count a failure; return True when this failure opened (or re-opened) the breaker."""
        with self._lock:
            self._failures += 1
            reopen = self._probing or (self._opened_at is None and self._failures >= self.threshold)
            self._probing = False
            if reopen:
                self._opened_at = self._clock()
                self.times_opened += 1
            return reopen

    def retry_in(self) -> float:
        """Seconds until a probe is allowed (0 when closed or half-open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.reset_s - (self._clock() - self._opened_at))
