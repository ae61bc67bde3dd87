"""The proxy's health, as kube-proxy v1.36's ProxyHealthServer keeps it (no HTTP here).

Per IP family the sync loop reports two events: ``queued_update(family)`` when a Service or
EndpointSlice change reaches the proxier (kube-proxy's ``Sync()``), ``updated(family)`` when a sync
of that family succeeded. A family is unhealthy once its *oldest* pending update has waited
``health_timeout`` (kube-proxy: 2 × syncPeriod) without an ``updated``. Only families that have
synced at least once are judged, so a proxy is healthy while it starts up, before its first sync
succeeds: kube-proxy's rule, kept as it is.

``/healthz`` also needs the node to be eligible: a Node object has been seen, it is not being
deleted and it does not carry the cluster autoscaler's ``ToBeDeletedByClusterAutoscaler`` taint
(v1.28+). Until ``sync_node`` sees the Node, v1.36 reports the node as not eligible. ``/livez`` and
the per-Service health checks ignore eligibility.

Times are ``Instant``s from an injected clock: a wall reading for what the JSON shows and a
monotonic one for ages, the two readings Go's ``time.Time`` carries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from proxyctl.cluster.objects import Node

IPV4 = "IPv4"
IPV6 = "IPv6"
FAMILIES = (IPV4, IPV6)
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"  # the cluster autoscaler's taint before it deletes a node
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # how Go's zero time.Time marshals to JSON


@dataclass(frozen=True)
class Instant:
    """One reading of a clock: nanoseconds since the Unix epoch, and a monotonic reading."""

    wall_ns: int
    mono_ns: int

    def seconds_since(self, earlier: Instant) -> float:
        return (self.mono_ns - earlier.mono_ns) / 1e9

    def rfc3339nano(self) -> str:
        """Go's ``time.Time`` as JSON shows it (RFC 3339, nanoseconds without trailing zeros, local zone)."""
        return rfc3339nano(self.wall_ns)


def rfc3339nano(wall_ns: int) -> str:
    """Go's ``time.RFC3339Nano`` layout in the local zone: ``2026-07-21T16:52:14.1234Z``."""
    seconds, nanos = divmod(wall_ns, 1_000_000_000)
    local = time.localtime(seconds)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    offset = local.tm_gmtoff // 60
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + fraction + zone


class Clock(Protocol):
    def now(self) -> Instant: ...


class SystemClock:
    def now(self) -> Instant:
        return Instant(time.time_ns(), time.monotonic_ns())


class ManualClock:
    """A clock that moves only when told to: for tests of anything that ages."""

    def __init__(self, wall_ns: int = 1_796_003_319_281_030_000, mono_ns: int = 1_000_000_000):
        self._wall_ns = wall_ns
        self._mono_ns = mono_ns
        self._lock = threading.Lock()

    def now(self) -> Instant:
        with self._lock:
            return Instant(self._wall_ns, self._mono_ns)

    def advance(self, seconds: float) -> None:
        step = round(seconds * 1e9)
        with self._lock:
            self._wall_ns += step
            self._mono_ns += step


SYSTEM_CLOCK = SystemClock()


def health_timeout(sync_period: float) -> float:
    """kube-proxy's healthTimeout: twice the (active mode's) syncPeriod, in seconds."""
    return 2 * sync_period


def node_eligible(node: Node | None) -> bool:
    """Whether ``/healthz`` may answer 200 for this node (kube-proxy v1.36's NodeEligible)."""
    if node is None or node.being_deleted:
        return False
    return TO_BE_DELETED_TAINT not in node.taints


@dataclass(frozen=True)
class FamilyHealth:
    last_updated: Instant
    healthy: bool


@dataclass(frozen=True)
class HealthReport:
    """One look at the health (kube-proxy's ProxyHealth, without node eligibility).

    ``last_updated`` is the latest successful sync of any family, None before the first one (Go's
    zero time); ``status`` has an entry per family that has synced at least once.
    """

    healthy: bool
    last_updated: Instant | None
    current_time: Instant
    status: dict[str, FamilyHealth]


class ProxyHealth:
    """The health state the sync loop updates and the health servers read; thread-safe."""

    def __init__(self, health_timeout: float, *, clock: Clock = SYSTEM_CLOCK):
        if health_timeout <= 0:
            raise ValueError(f"health_timeout must be positive, got {health_timeout}")
        self.health_timeout = health_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._last_updated: dict[str, Instant] = {}
        self._oldest_pending: dict[str, Instant] = {}
        self._node: Node | None = None

    @classmethod
    def for_sync_period(cls, sync_period: float, *, clock: Clock = SYSTEM_CLOCK) -> ProxyHealth:
        return cls(health_timeout(sync_period), clock=clock)

    def queued_update(self, family: str) -> None:
        """A change for ``family`` is waiting for a sync; only the oldest waiting one is remembered."""
        _check_family(family)
        now = self.clock.now()
        with self._lock:
            self._oldest_pending.setdefault(family, now)

    def updated(self, family: str) -> None:
        """A sync of ``family`` succeeded: nothing is pending any more."""
        _check_family(family)
        now = self.clock.now()
        with self._lock:
            self._oldest_pending.pop(family, None)
            self._last_updated[family] = now

    def sync_node(self, node: Node | None) -> None:
        """The latest state of this node's Node object; None when there is none (deleted, not found)."""
        with self._lock:
            self._node = node

    def node_eligible(self) -> bool:
        with self._lock:
            return node_eligible(self._node)

    def health(self) -> HealthReport:
        with self._lock:
            last_updated = dict(self._last_updated)
            pending = dict(self._oldest_pending)
        now = self.clock.now()
        status = {}
        for family, updated_at in last_updated.items():
            queued_at = pending.get(family)
            late = queued_at is not None and now.seconds_since(queued_at) >= self.health_timeout
            status[family] = FamilyHealth(updated_at, healthy=not late)
        latest = max(last_updated.values(), key=lambda i: i.mono_ns, default=None)
        return HealthReport(all(s.healthy for s in status.values()), latest, now, status)

    def is_healthy(self) -> bool:
        """The proxy's health alone, as the per-Service health checks read it."""
        return self.health().healthy


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"IP family must be one of {', '.join(FAMILIES)}, got {family!r}")
