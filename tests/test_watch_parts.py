"""The watch's pure parts: backoff, token bucket, store, change events, selectors."""

from __future__ import annotations

import pytest

from proxyctl.cluster.backoff import Backoff
from proxyctl.cluster.changes import ADDED, DELETED, MODIFIED, ChangeEvent, is_node_terminating
from proxyctl.cluster.objects import Node
from proxyctl.cluster.ratelimit import TokenBucket
from proxyctl.cluster.store import ObjectStore
from proxyctl.cluster.watch import label_selector
from tests.builders import make_service, make_slice


def test_backoff_doubles_to_the_cap_and_resets():
    backoff = Backoff(0.5, 30.0, jitter=0.5, rand=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_jitter_takes_off_at_most_its_share():
    backoff = Backoff(0.5, 30.0, jitter=0.5, rand=lambda: 0.999999)
    delays = [backoff.next_delay() for _ in range(8)]
    assert all(d == pytest.approx(n / 2, rel=1e-5) for d, n in zip(delays, [0.5, 1, 2, 4, 8, 16, 30, 30], strict=True))
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5)


def test_backoff_survives_many_failures():
    backoff = Backoff(0.5, 30.0, rand=lambda: 0.0)
    for _ in range(10_000):
        delay = backoff.next_delay()
    assert delay == 30.0


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_allows_a_burst_then_qps():
    t = FakeTime()
    bucket = TokenBucket(5.0, 3, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.2, 0.2, 0.2])
    t.now += 10  # refills, but never above the burst
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 0.2])


def test_token_bucket_without_qps_never_waits():
    t = FakeTime()
    bucket = TokenBucket(0, 0, clock=t.clock, sleep=t.sleep)
    assert all(bucket.acquire() == 0 for _ in range(100)) and t.slept == []


def test_label_selector_as_kube_proxy_builds_it():
    assert label_selector() == "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"
    assert label_selector("") == label_selector(None)
    assert label_selector("custom") == "!service.kubernetes.io/headless,service.kubernetes.io/service-proxy-name=custom"


def test_store_put_delete_and_duplicates():
    store = ObjectStore()
    svc = make_service("ns", "a")
    event = store.put("Service", "ns/a", "5", svc, at=1.5)
    assert (event.action, event.old, event.new, event.at, event.relist) == (ADDED, None, svc, 1.5, False)
    assert store.put("Service", "ns/a", "5", svc) is None  # the same version again: nothing changed
    changed = make_service("ns", "a", port=81)
    assert store.put("Service", "ns/a", "6", changed).action == MODIFIED
    assert store.snapshot().services == (changed,)
    assert store.delete("Service", "ns/a").old == changed
    assert store.delete("Service", "ns/a") is None
    assert store.snapshot().services == ()


def test_store_replace_reports_only_differences():
    store = ObjectStore()
    a, b, c = make_service("ns", "a"), make_service("ns", "b"), make_service("ns", "c")
    store.replace("Service", {"ns/a": ("1", a), "ns/b": ("2", b)})
    snapshot = store.snapshot()
    assert store.snapshot() is snapshot  # cached until something changes
    b2 = make_service("ns", "b", port=90)
    events = store.replace("Service", {"ns/b": ("3", b2), "ns/c": ("4", c)})
    assert [(e.action, e.key, e.relist) for e in events] == [
        (DELETED, "ns/a", True), (MODIFIED, "ns/b", True), (ADDED, "ns/c", True)]
    assert store.replace("Service", {"ns/b": ("3", b2), "ns/c": ("4", c)}) == []
    assert store.snapshot().services == (b2, c)
    assert store.snapshot() is not snapshot


def test_snapshot_orders_by_key_whatever_the_arrival():
    store = ObjectStore()
    for name in ("z", "a", "m"):
        store.put("Service", f"ns/{name}", "1", make_service("ns", name))
    assert [s.name for s in store.snapshot().services] == ["a", "m", "z"]


def test_change_event_services():
    svc = ChangeEvent("Service", ADDED, "ns/a", None, make_service("ns", "a"))
    assert svc.services == frozenset({"ns/a"})
    moved = ChangeEvent("EndpointSlice", MODIFIED, "ns/s1", make_slice("ns", "old", ["10.0.0.1"], name="s1"),
                        make_slice("ns", "new", ["10.0.0.1"], name="s1"))
    assert moved.services == frozenset({"ns/old", "ns/new"})
    orphan = ChangeEvent("EndpointSlice", DELETED, "ns/s2", make_slice("ns", "", ["10.0.0.1"], name="s2"), None)
    assert orphan.services == frozenset()
    assert ChangeEvent("Node", ADDED, "n", None, Node("n")).services == frozenset()


def test_change_event_node_topology_and_termination():
    zone = {"topology.kubernetes.io/zone": "z1"}
    same = ChangeEvent("Node", MODIFIED, "n", Node("n", labels=zone), Node("n", labels={**zone, "x": "y"}))
    assert not same.topology_changed and not same.node_terminating
    moved = ChangeEvent("Node", MODIFIED, "n", Node("n", labels=zone),
                        Node("n", labels={"topology.kubernetes.io/zone": "z2"}))
    assert moved.topology_changed
    assert ChangeEvent("Node", ADDED, "n", None, Node("n", labels=zone)).topology_changed
    assert ChangeEvent("Node", DELETED, "n", Node("n"), None).node_terminating
    assert is_node_terminating(Node("n", being_deleted=True))
    assert is_node_terminating(Node("n", taints=("ToBeDeletedByClusterAutoscaler",)))
    assert not is_node_terminating(Node("n", taints=("other",)))
    assert not ChangeEvent("Service", DELETED, "ns/a", make_service("ns", "a"), None).node_terminating
