"""When to sync: kube-proxy v1.36's runner, as a pure decision plus a thread that follows it.

- A change asks for a sync; it runs no sooner than ``min_sync_period`` after the previous sync
  *finished* (no bursts, however fast changes arrive).
- With no changes a full sync runs every ``full_sync_period`` (1 h).
- ``sync_period`` is the canary-check period (a vanished canary chain means someone flushed the
  tables: full sync) and the retry delay after a failed sync; the retry is full (a new change
  may bring it forward, as a change always may).
- Anything that forces a full sync (start, canary gone, topology labels changed, a failure) makes
  the next sync full.

The clock is injected, and ``decide`` is a pure function of the state and the time, so the tests
step through hours of schedule in microseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FULL_SYNC_PERIOD = 3600.0
log = logging.getLogger("proxyctl.runner")


@dataclass
class Schedule:
    min_sync_period: float
    sync_period: float
    full_sync_period: float = FULL_SYNC_PERIOD
    pending: bool = False  # a change is waiting
    need_full: bool = True  # the first sync is full
    last_finish: float | None = None
    last_full: float | None = None
    last_canary_check: float | None = None
    retry_at: float | None = None  # after a failure

    def decide(self, now: float) -> tuple[str, float]:
        """("sync-full" | "sync-partial" | "canary" | "wait", seconds until it is due)."""
        earliest = (self.last_finish + self.min_sync_period) if self.last_finish is not None else now
        due: list[tuple[float, str]] = []
        if self.retry_at is not None:
            due.append((max(self.retry_at, earliest), "sync"))
        if self.pending or (self.need_full and self.retry_at is None):
            due.append((earliest, "sync"))  # after a failure only a new change comes before the retry
        if self.last_full is not None:
            due.append((max(self.last_full + self.full_sync_period, earliest), "sync-hourly"))
        if self.last_canary_check is not None:
            due.append((self.last_canary_check + self.sync_period, "canary"))
        elif self.last_finish is not None:
            due.append((self.last_finish + self.sync_period, "canary"))
        if not due:
            return "wait", float("inf")
        when, what = min(due, key=lambda d: (d[0], d[1] == "canary"))  # a due sync goes before a check
        if when > now:
            return "wait", when - now
        if what == "canary":
            return "canary", 0.0
        full = self.need_full or what == "sync-hourly" or self.retry_at is not None or (
            self.last_full is not None and now - self.last_full >= self.full_sync_period)
        return ("sync-full" if full else "sync-partial"), 0.0

    def finished(self, now: float, *, full: bool, ok: bool) -> None:
        self.last_finish = now
        self.last_canary_check = now
        if ok:
            self.need_full = False
            self.retry_at = None
            if full:
                self.last_full = now
        else:
            self.need_full = True
            self.retry_at = now + self.sync_period


class SyncRunner:
    """Runs ``sync(full, changed_services) -> ok`` in one thread, as ``Schedule`` decides."""

    def __init__(self, sync: Callable[[bool], bool], canary_ok: Callable[[], bool], schedule: Schedule, *,
                 clock: Callable[[], float] = time.monotonic):
        self._sync = sync
        self._canary_ok = canary_ok
        self.schedule = schedule
        self._clock = clock
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def request(self) -> None:
        """A change arrived: sync when the schedule allows."""
        with self._lock:
            self.schedule.pending = True
        self._wake.set()

    def force_full(self) -> None:
        with self._lock:
            self.schedule.need_full = True
        self._wake.set()

    def step(self) -> str:
        """Do what is due now (at most one sync or check); returns what was done, or "wait"."""
        with self._lock:
            what, _ = self.schedule.decide(self._clock())
            if what.startswith("sync"):
                self.schedule.pending = False
        if what == "canary":
            ok = self._canary_ok()
            with self._lock:
                self.schedule.last_canary_check = self._clock()
                if not ok:
                    self.schedule.need_full = True
            return "canary" if ok else "canary-gone"
        if what.startswith("sync"):
            full = what == "sync-full"
            try:
                ok = bool(self._sync(full))
            except Exception:  # noqa: BLE001 - a failed sync is retried, whatever failed; say what it was
                log.exception("sync raised; it is retried as a full sync after syncPeriod")
                ok = False
            with self._lock:
                self.schedule.finished(self._clock(), full=full, ok=ok)
            return what if ok else what + "-failed"
        return "wait"

    def run(self) -> None:
        while not self._stop.is_set():
            done = self.step()
            if done != "wait":
                continue
            with self._lock:
                _, delay = self.schedule.decide(self._clock())
            self._wake.wait(timeout=min(delay, 3600.0))
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="proxyctl sync runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
