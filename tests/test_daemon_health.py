"""The proxy health state (kube-proxy v1.36's ProxyHealthServer, without HTTP), with a manual clock."""

from __future__ import annotations

import time

import pytest

from proxyctl.cluster.objects import Node
from proxyctl.config import default_config
from proxyctl.daemon.health import (
    TO_BE_DELETED_TAINT,
    Instant,
    ManualClock,
    ProxyHealth,
    health_timeout,
    node_eligible,
    rfc3339nano,
)

SYNC_PERIOD = 30.0
TIMEOUT = 2 * SYNC_PERIOD


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def health(clock: ManualClock) -> ProxyHealth:
    return ProxyHealth.for_sync_period(SYNC_PERIOD, clock=clock)


def test_health_timeout_is_twice_the_sync_period_of_the_config():
    cfg = default_config()
    assert health_timeout(cfg.sync_period) == 60.0
    assert ProxyHealth.for_sync_period(cfg.sync_period).health_timeout == 60.0


def test_a_proxy_that_never_synced_is_healthy_even_with_old_queued_updates(health, clock):
    # kube-proxy judges only families that have synced once: "healthy while it's starting up".
    health.queued_update("IPv4")
    clock.advance(10 * TIMEOUT)
    report = health.health()
    assert report.healthy
    assert report.last_updated is None
    assert report.status == {}


def test_a_queued_update_turns_unhealthy_only_once_it_is_health_timeout_old(health, clock):
    health.updated("IPv4")
    health.queued_update("IPv4")
    clock.advance(TIMEOUT - 0.001)
    assert health.is_healthy()
    clock.advance(0.001)
    report = health.health()
    assert not report.healthy
    assert not report.status["IPv4"].healthy


def test_the_oldest_queued_update_counts_not_the_latest(health, clock):
    health.updated("IPv4")
    health.queued_update("IPv4")
    clock.advance(TIMEOUT / 2)
    health.queued_update("IPv4")  # does not restart the wait
    clock.advance(TIMEOUT / 2)
    assert not health.is_healthy()


def test_a_successful_sync_clears_what_was_pending(health, clock):
    health.updated("IPv4")
    health.queued_update("IPv4")
    clock.advance(TIMEOUT + 1)
    assert not health.is_healthy()
    health.updated("IPv4")
    assert health.is_healthy()
    health.queued_update("IPv4")
    clock.advance(TIMEOUT - 1)
    assert health.is_healthy()


def test_families_are_judged_apart_and_one_late_family_makes_the_proxy_unhealthy(health, clock):
    health.updated("IPv4")
    clock.advance(1)
    health.updated("IPv6")
    ipv6_synced = clock.now()
    health.queued_update("IPv4")
    clock.advance(TIMEOUT)
    report = health.health()
    assert not report.healthy
    assert not report.status["IPv4"].healthy
    assert report.status["IPv6"].healthy
    assert report.last_updated == ipv6_synced  # the latest sync of any family
    assert report.current_time == clock.now()


def test_unknown_families_are_refused(health):
    with pytest.raises(ValueError, match="IPv4, IPv6"):
        health.queued_update("ipv4")


@pytest.mark.parametrize(("node", "eligible"), [
    (None, False),  # v1.36: no Node seen yet (or deleted) is not eligible
    (Node("n1"), True),
    (Node("n1", being_deleted=True), False),
    (Node("n1", taints=(TO_BE_DELETED_TAINT,)), False),
    (Node("n1", taints=("node.kubernetes.io/unschedulable",)), True),
])
def test_node_eligibility(node, eligible, health):
    assert node_eligible(node) is eligible
    health.sync_node(node)
    assert health.node_eligible() is eligible


def test_node_eligibility_does_not_change_the_proxy_health(health):
    health.sync_node(Node("n1", being_deleted=True))
    assert health.is_healthy()


@pytest.fixture
def timezone(monkeypatch):
    def use(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(("tz", "wall_ns", "text"), [
    ("UTC", 1_796_003_319_281_030_000, "2026-11-30T01:48:39.28103Z"),
    ("UTC", 1_796_003_319_000_000_000, "2026-11-30T01:48:39Z"),  # no fraction when it is zero
    ("UTC", 1_796_003_319_000_000_001, "2026-11-30T01:48:39.000000001Z"),
    ("EST+5", 1_796_003_319_500_000_000, "2026-11-29T20:48:39.5-05:00"),
    ("IST-5:30", 1_796_003_319_500_000_000, "2026-11-30T07:18:39.5+05:30"),
])
def test_times_are_written_as_go_marshals_time_in_the_local_zone(timezone, tz, wall_ns, text):
    timezone(tz)
    assert rfc3339nano(wall_ns) == text
    assert Instant(wall_ns, 0).rfc3339nano() == text
