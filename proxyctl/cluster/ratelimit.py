"""A token bucket: client-go's client-side limit on requests to the API server (``qps``, ``burst``).

The bucket holds at most ``burst`` tokens and refills at ``qps`` per second; each request takes
one, waiting when none is left. As in client-go, every request counts, a watch as much as a list.
``qps <= 0`` means no limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._updated = clock()

    @property
    def unlimited(self) -> bool:
        return self.qps <= 0

    def acquire(self) -> float:
        """Take one token, sleeping until it is available; the seconds waited."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.qps)
            self._updated = now
            self._tokens -= 1  # a reservation: later callers queue behind this one
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
