"""Capped exponential backoff with jitter, for reconnecting to the API server.

The n-th consecutive failure waits ``initial * factor**(n-1)`` seconds, capped at ``cap``, less a
random part of up to ``jitter`` of it, so that many proxies restarted together by one API
server restart do not come back in step. A success resets the count.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, initial: float = 0.5, cap: float = 30.0, *, factor: float = 2.0, jitter: float = 0.5,
                 rand: Callable[[], float] = random.random):
        if initial <= 0 or cap < initial or factor < 1 or not 0 <= jitter < 1:
            raise ValueError(f"bad backoff: initial={initial} cap={cap} factor={factor} jitter={jitter}")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rand = rand
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure; the seconds to wait before the next attempt."""
        self.failures += 1
        delay = min(self.cap, self.initial * self.factor ** min(self.failures - 1, 64))
        return delay * (1 - self.jitter * self._rand())

    def reset(self) -> None:
        self.failures = 0
