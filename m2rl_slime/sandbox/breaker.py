"""A thread-safe circuit breaker shared by every event loop of the process, closed again by probing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open"]


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; while open, one probe is due every `probe_interval_s`.

    The caller that takes a due probe checks the server (the client pings it) and closes the breaker
    on success, so a restarted server is used again within one probe interval; a failed probe keeps it
    open until the next one is due.

    Args:
        threshold: Consecutive failures that open the breaker.
        probe_interval_s: Seconds between probes while open.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(self, threshold: int, probe_interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open = False
        self._last_probe = 0.0
        self._probing = False
        self.times_opened = 0

    @property
    def state(self) -> State:
        with self._lock:
            return "open" if self._open else "closed"

    def allow(self) -> bool:
        """May a request be sent without probing first (the breaker is closed)?"""
        with self._lock:
            return not self._open

    def take_probe(self) -> bool:
        """True for the one caller that should probe now (open, due, and nobody else probing)."""
        with self._lock:
            now = self._clock()
            stale = self._probing and now - self._last_probe >= 10 * self.probe_interval_s  # its caller vanished
            if self._open and (not self._probing or stale) and now - self._last_probe >= self.probe_interval_s:
                self._probing, self._last_probe = True, now
                return True
            return False

    def probe_failed(self) -> None:
        with self._lock:
            self._probing = False
            self._last_probe = self._clock()

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._open = False
            self._probing = False

    def record_failure(self) -> bool:
        """Count a failure; return True when this failure opened the breaker."""
        with self._lock:
            self._failures += 1
            if self._open or self._failures < self.threshold:
                return False
            self._open = True
            self._last_probe = self._clock()
            self.times_opened += 1
            return True

    def retry_in(self) -> float:
        """Seconds until the next probe is due (0 when closed)."""
        with self._lock:
            if not self._open:
                return 0.0
            return max(0.0, self.probe_interval_s - (self._clock() - self._last_probe))
