"""ClusterWatch against the test API server over real HTTP: sync, selectors, continuity, faults."""

from __future__ import annotations

import threading
import time

import pytest

from proxyctl.cluster.changes import ADDED, DELETED, MODIFIED, NODE, SERVICE
from proxyctl.cluster.objects import HEADLESS_LABEL, SERVICE_PROXY_NAME_LABEL, Node
from tests.apiserver import Fault
from tests.apiserver import objects as o
from tests.apiserver.harness import FAST, Harness, Recorder, eventually, keys
from tests.apiserver.harness import NODE as NODE_NAME


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def populate(server, count: int = 3) -> None:
    for i in range(count):
        server.create(o.service("ns1", f"svc{i}", f"172.30.0.{10 + i}"))
        server.create(o.endpoint_slice("ns1", f"svc{i}", [f"10.180.0.{10 + i}"]))
    server.create(o.node(NODE_NAME, labels={"topology.kubernetes.io/zone": "z1"}))


def services(watch) -> list[str]:
    return keys(watch.snapshot())[0]


def slices(watch) -> list[str]:
    return keys(watch.snapshot())[1]


# -- initial sync -------------------------------------------------------------------------------------


def test_initial_lists_then_watch_events(h):
    populate(h.server)
    watch, rec = h.watch()
    assert watch.wait_synced(5)
    assert keys(watch.snapshot())[:2] == (["ns1/svc0", "ns1/svc1", "ns1/svc2"],
                                          ["ns1/svc0-abc12", "ns1/svc1-abc12", "ns1/svc2-abc12"])
    eventually(lambda: watch.node() is not None)
    assert keys(watch.snapshot())[2] == [NODE_NAME]
    assert watch.node().zone == "z1"
    assert all(action == ADDED for action, _, _ in rec.changes(relist=True))

    h.server.create(o.service("ns2", "new", "172.30.1.1"))
    h.server.update(o.service("ns1", "svc0", "172.30.0.10", port=8080))
    h.server.delete("EndpointSlice", "svc1-abc12", "ns1")
    eventually(lambda: len(rec.changes(relist=False)) == 3)
    assert set(rec.changes(relist=False)) == {(ADDED, SERVICE, "ns2/new"), (MODIFIED, SERVICE, "ns1/svc0"),
                                              (DELETED, "EndpointSlice", "ns1/svc1-abc12")}
    state = watch.snapshot()
    assert [p.port for p in state.services[0].ports] == [8080]
    assert "ns1/svc1-abc12" not in keys(state)[1]
    with rec.lock:
        slice_event = next(e for e in rec.events if e.kind == "EndpointSlice" and not e.relist)
    assert slice_event.services == frozenset({"ns1/svc1"}) and slice_event.new is None
    assert watch.stats()[SERVICE].lists == 1


def test_not_synced_until_both_lists_arrive(h):
    populate(h.server)
    h.server.inject(Fault.HANG, 1, watch=False, resource="endpointslices")
    # Only release_hangs() ends the hung list: with FAST's list_timeout (2 s) the client would
    # give up by itself and sync before the checks below on a slow machine.
    watch, _ = h.watch(settings=_settings(list_timeout=30.0))
    eventually(lambda: watch.stats()[SERVICE].lists == 1)
    assert not watch.synced
    assert not watch.wait_synced(0.3)
    h.server.release_hangs()  # the hung list ends without an answer: a failure, then a retry
    assert watch.wait_synced(5)
    assert len(slices(watch)) == 3


def test_a_list_is_applied_at_once(h):
    """Large paged lists: no reader ever sees part of one, and a snapshot right after sync holds all."""
    for i in range(120):
        h.server.create(o.service("ns1", f"s{i:03}", f"172.30.{i // 200}.{i % 200 + 1}"))
        h.server.create(o.endpoint_slice("ns1", f"s{i:03}", [f"10.180.0.{i % 200 + 1}"]))
    seen: list[int] = []
    holder = {}

    class Checking(Recorder):
        def on_change(self, event):
            seen.append(len(holder["watch"].snapshot().services))
            super().on_change(event)

    watch, _ = h.watch(start=False, settings=_settings(page_size=25), recorder=Checking())
    holder["watch"] = watch
    watch.start()
    assert watch.wait_synced(5)
    state = watch.snapshot()
    assert len(state.services) == 120 and len(state.endpoint_slices) == 120
    assert set(seen) <= {0, 120}  # inside the callbacks: before the Service list, or all of it
    assert h.server.count(resource="services", watch=False) == 5  # 120 in pages of 25


def test_expired_continue_token_restarts_the_list(h):
    for i in range(12):
        h.server.create(o.service("ns1", f"s{i:02}", f"172.30.0.{i + 1}"))
    h.server.add_hook(lambda r: h.server.expire_continue_tokens(),
                      when=lambda r: r.resource == "services" and "continue" in r.query)
    watch, _ = h.watch(settings=_settings(page_size=5))
    assert watch.wait_synced(5)
    assert len(services(watch)) == 12
    service_lists = [r for r in h.server.requests if r.resource == "services" and not r.watch]
    assert "limit" not in service_lists[-1].query  # started over, unpaged


# -- selectors -------------------------------------------------------------------------------------


def test_default_label_selectors(h):
    h.server.create(o.service("ns1", "plain", "172.30.0.1"))
    h.server.create(o.service("ns1", "other-proxy", "172.30.0.2", labels={SERVICE_PROXY_NAME_LABEL: "x"}))
    h.server.create(o.service("ns1", "headless", "172.30.0.3", labels={HEADLESS_LABEL: ""}))
    h.server.create(o.endpoint_slice("ns1", "plain", ["10.180.0.1"]))
    h.server.create(o.endpoint_slice("ns1", "headless", ["10.180.0.3"], labels={HEADLESS_LABEL: ""}))
    h.server.create(o.endpoint_slice("ns1", "other-proxy", ["10.180.0.2"], labels={SERVICE_PROXY_NAME_LABEL: "x"}))
    watch, rec = h.watch()
    assert watch.wait_synced(5)
    assert keys(watch.snapshot())[:2] == (["ns1/plain"], ["ns1/plain-abc12"])
    request = next(r for r in h.server.requests if r.resource == "services")
    assert request.query["labelSelector"] == f"!{HEADLESS_LABEL},!{SERVICE_PROXY_NAME_LABEL}"

    # a label that moves an object out of the selection is a deletion; back in, an addition
    h.server.update(o.service("ns1", "plain", "172.30.0.1", labels={SERVICE_PROXY_NAME_LABEL: "x"}))
    eventually(lambda: services(watch) == [])
    h.server.update(o.service("ns1", "other-proxy", "172.30.0.2"))
    eventually(lambda: services(watch) == ["ns1/other-proxy"])
    assert rec.changes(relist=False) == [(DELETED, SERVICE, "ns1/plain"), (ADDED, SERVICE, "ns1/other-proxy")]
    assert all(key not in ("ns1/headless", "ns1/headless-abc12") for _, _, key in rec.changes())


def test_service_proxy_name_selects_only_its_objects(h):
    h.server.create(o.service("ns1", "plain", "172.30.0.1"))
    h.server.create(o.service("ns1", "mine", "172.30.0.2", labels={SERVICE_PROXY_NAME_LABEL: "custom"}))
    h.server.create(o.service("ns1", "theirs", "172.30.0.3", labels={SERVICE_PROXY_NAME_LABEL: "other"}))
    h.server.create(o.endpoint_slice("ns1", "mine", ["10.180.0.2"], labels={SERVICE_PROXY_NAME_LABEL: "custom"}))
    h.server.create(o.endpoint_slice("ns1", "plain", ["10.180.0.1"]))
    watch, _ = h.watch(service_proxy_name="custom")
    assert watch.wait_synced(5)
    assert keys(watch.snapshot())[:2] == (["ns1/mine"], ["ns1/mine-abc12"])


def test_node_field_selector_and_node_changes(h):
    h.server.create(o.node("other-node"))
    h.server.create(o.node(NODE_NAME, labels={"topology.kubernetes.io/zone": "z1"}))
    watch, rec = h.watch()
    eventually(lambda: watch.node_synced and watch.node() is not None)
    assert keys(watch.snapshot())[2] == [NODE_NAME]
    request = next(r for r in h.server.requests if r.resource == "nodes")
    assert request.query["fieldSelector"] == f"metadata.name={NODE_NAME}"

    h.server.update(o.node("other-node", labels={"topology.kubernetes.io/zone": "z9"}))
    h.server.update(o.node(NODE_NAME, labels={"topology.kubernetes.io/zone": "z1", "team": "a"}))
    h.server.update(o.node(NODE_NAME, labels={"topology.kubernetes.io/zone": "z2", "team": "a"}))
    h.server.update(o.node(NODE_NAME, labels={"topology.kubernetes.io/zone": "z2"},
                           taints=["ToBeDeletedByClusterAutoscaler"]))
    h.server.delete("Node", NODE_NAME, "")
    eventually(lambda: len([e for e in rec.events if not e.relist]) == 4)
    node_events = [e for e in rec.events if not e.relist]
    assert all(e.kind == NODE and e.key == NODE_NAME for e in node_events)
    assert [e.topology_changed for e in node_events] == [False, True, False, True]
    assert [e.node_terminating for e in node_events] == [False, False, True, True]
    assert watch.node() is None


# -- continuity ------------------------------------------------------------------------------------


def test_no_event_is_lost_between_list_and_watch(h):
    populate(h.server, 1)
    # created after the list's snapshot was taken (before the list is even sent) ...
    h.server.add_hook(lambda r: h.server.create(o.service("ns1", "late", "172.30.5.1")), phase="listed",
                      when=lambda r: r.resource == "services")
    # ... and when the first watch arrives, before the server looks at it
    h.server.add_hook(lambda r: h.server.create(o.service("ns1", "later", "172.30.5.2")),
                      when=lambda r: r.resource == "services" and r.watch)
    watch, rec = h.watch()
    assert watch.wait_synced(5)
    assert [key for _, kind, key in rec.changes(relist=True) if kind == SERVICE] == ["ns1/svc0"]  # the list
    eventually(lambda: services(watch) == ["ns1/late", "ns1/later", "ns1/svc0"])
    assert h.server.count(resource="services", watch=False) == 1  # the watch resumed: no relist
    first_watch = next(r for r in h.server.requests if r.resource == "services" and r.watch)
    list_rv = int(first_watch.query["resourceVersion"])
    assert list_rv < int(h.server.get("Service", "late", "ns1")["metadata"]["resourceVersion"])
    assert first_watch.query["allowWatchBookmarks"] == "true"


@pytest.mark.parametrize("bookmarks", [True, False])
def test_bookmarks_move_the_resource_version_on(h, bookmarks):
    """A quiet resource's watch survives the history moving on only thanks to bookmarks."""
    h.server.store.history_limit = 5
    h.server.bookmark_interval = 0.1 if bookmarks else 3600
    populate(h.server, 1)
    watch, _ = h.watch(settings=_settings(watch_read_timeout=5.0))
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches("services") == 1)
    listed_rv = int(watch.stats()[SERVICE].resource_version)
    for i in range(20):  # other kinds move the global resourceVersion past the history
        h.server.create(o.config_map("ns1", f"cm{i}"))
    assert h.server.store.oldest > listed_rv
    if bookmarks:
        eventually(lambda: int(watch.stats()[SERVICE].resource_version) == h.server.resource_version)
        assert watch.stats()[SERVICE].bookmarks > 0
    h.server.close_watches(clean=True, resource="services")
    h.server.create(o.service("ns1", "after", "172.30.9.9"))
    eventually(lambda: "ns1/after" in services(watch))
    assert h.server.count(resource="services", watch=False) == (1 if bookmarks else 2)
    assert watch.stats()[SERVICE].relists_on_gone == (0 if bookmarks else 1)


# -- faults ----------------------------------------------------------------------------------------


def test_server_restart_keeping_history_resumes_without_relist(h):
    populate(h.server)
    watch, _ = h.watch()
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches() == 3)

    def changes_while_down():
        time.sleep(0.1)
        h.server.create(o.service("ns1", "while-down", "172.30.7.1"))
        h.server.delete("Service", "svc2", "ns1")

    changer = threading.Thread(target=changes_while_down)
    changer.start()
    h.server.restart(keep_history=True, down_for=0.3)
    changer.join()
    eventually(lambda: services(watch) == ["ns1/svc0", "ns1/svc1", "ns1/while-down"])
    assert h.server.count(resource="services", watch=False) == 1


def test_server_restart_losing_history_relists_and_converges(h):
    populate(h.server)
    watch, rec = h.watch()
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches() == 3)
    before = len(rec.changes(relist=True))
    h.server.stop()
    h.server.create(o.service("ns1", "while-down", "172.30.7.1"))
    h.server.delete("Service", "svc2", "ns1")
    h.server.update(o.endpoint_slice("ns1", "svc0", ["10.180.0.99"]))
    h.server.store.forget_history()  # the restarted server's watch cache starts after these changes
    h.server.start()
    eventually(lambda: services(watch) == ["ns1/svc0", "ns1/svc1", "ns1/while-down"])
    eventually(lambda: watch.snapshot().endpoint_slices[0].endpoints[0].addresses == ("10.180.0.99",))
    stats = watch.stats()
    assert stats[SERVICE].relists_on_gone == 1 and stats["EndpointSlice"].relists_on_gone == 1
    eventually(lambda: watch.stats()[NODE].relists_on_gone == 1)
    # what changed, and nothing else: unchanged objects cause no event on a relist
    assert sorted(rec.changes(relist=True)[before:]) == [
        (ADDED, SERVICE, "ns1/while-down"), (DELETED, SERVICE, "ns1/svc2"),
        (MODIFIED, "EndpointSlice", "ns1/svc0-abc12")]


def test_stream_cut_mid_way_resumes_from_the_last_event(h):
    populate(h.server)
    watch, rec = h.watch()
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches() == 3)
    h.server.create(o.service("ns1", "a", "172.30.8.1"))
    eventually(lambda: "ns1/a" in services(watch))
    assert h.server.close_watches() == 3
    h.server.create(o.service("ns1", "b", "172.30.8.2"))
    eventually(lambda: "ns1/b" in services(watch))
    assert h.server.count(resource="services", watch=False) == 1
    assert watch.stats()[SERVICE].failures >= 1
    assert rec.changes(relist=False).count((ADDED, SERVICE, "ns1/b")) == 1


@pytest.mark.parametrize("fault", [Fault.GONE, Fault.GONE_EVENT])
def test_410_relists(h, fault):
    populate(h.server)
    watch, rec = h.watch()
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches("services") == 1)
    h.server.inject(fault, 1, watch=True, resource="services")
    h.server.close_watches(clean=True, resource="services")
    h.server.create(o.service("ns1", "new", "172.30.8.3"))
    eventually(lambda: "ns1/new" in services(watch))
    assert watch.stats()[SERVICE].relists_on_gone == 1
    assert h.server.count(resource="services", watch=False) == 2
    assert not [c for c in rec.changes() if c[0] == DELETED]  # a relist never drops what still exists


def test_errors_and_garbage_back_off_then_recover(h):
    populate(h.server)
    h.server.inject(Fault.SERVER_ERROR, 4, resource="services")
    h.server.inject(Fault.GARBAGE, 2, watch=False, resource="services")
    h.server.inject(Fault.GARBAGE, 2, watch=True, resource="services")
    h.server.inject(Fault.RESET, 1, resource="services")
    settings = _settings(backoff_initial=0.02, backoff_max=0.1)
    watch, _ = h.watch(settings=settings)
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches("services") == 1)
    h.server.create(o.service("ns1", "after", "172.30.8.4"))
    eventually(lambda: "ns1/after" in services(watch))
    assert watch.stats()[SERVICE].failures == 9
    times = [r.at for r in h.server.requests if r.resource == "services"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # requests 0-6 failed (500 x4, garbage lists x2, reset), 7 listed, 8-9 watches got garbage
    for failures, index in enumerate([0, 1, 2, 3, 4, 5, 6, 8, 9], start=1):
        nominal = min(settings.backoff_max, settings.backoff_initial * 2 ** (failures - 1))
        assert nominal / 2 - 0.005 <= gaps[index] <= nominal + 0.25, (failures, gaps)
    assert gaps[7] < 0.1  # a successful list is followed by its watch at once


def test_hung_watch_times_out_and_reconnects(h):
    populate(h.server)
    watch, _ = h.watch(settings=_settings(watch_read_timeout=0.5))
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches("services") == 1)
    h.server.inject(Fault.HANG, 1, watch=True, resource="services")
    started = time.monotonic()  # before the hung watch can be sent: it is sent after close_watches()
    h.server.close_watches(clean=True, resource="services")
    h.server.create(o.service("ns1", "after-hang", "172.30.8.5"))
    eventually(lambda: "ns1/after-hang" in services(watch))
    assert time.monotonic() - started >= 0.4  # waited for the read timeout
    assert "timed out" in watch.stats()[SERVICE].last_error.lower()
    h.server.release_hangs()


def test_invalid_objects_are_reported_and_skipped(h):
    bad = o.service("ns1", "bad", "172.30.0.5", port=70000)
    h.server.create(bad)
    h.server.create(o.service("ns1", "good", "172.30.0.6"))
    watch, rec = h.watch()
    assert watch.wait_synced(5)
    assert services(watch) == ["ns1/good"]
    assert rec.invalid[0][:2] == (SERVICE, "ns1/bad") and "70000" in rec.invalid[0][2]
    h.server.update(o.service("ns1", "bad", "172.30.0.5"))
    eventually(lambda: services(watch) == ["ns1/bad", "ns1/good"])
    h.server.update(bad)  # turns invalid again: dropped as if deleted
    eventually(lambda: services(watch) == ["ns1/good"])
    assert rec.changes(relist=False)[-1] == (DELETED, SERVICE, "ns1/bad")
    h.server.create(o.service("ns1", "later", "172.30.0.7"))  # and the watch goes on
    eventually(lambda: "ns1/later" in services(watch))


def test_stop_is_prompt_and_final(h):
    populate(h.server)
    watch, rec = h.watch(settings=_settings(watch_read_timeout=30.0))
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches() == 3)
    started = time.monotonic()
    assert watch.stop() is True
    assert time.monotonic() - started < 1.0
    count = len(rec.events)
    h.server.create(o.service("ns1", "after-stop", "172.30.8.6"))
    time.sleep(0.2)
    assert len(rec.events) == count
    assert isinstance(watch.node(), Node)


def test_stop_while_a_request_hangs(h):
    h.server.inject(Fault.HANG, 1, watch=False, resource="services")
    watch, rec = h.watch(settings=_settings(list_timeout=30.0))
    eventually(lambda: h.server.count(resource="services") == 1)
    started = time.monotonic()
    watch.stop(timeout=0.5)
    assert time.monotonic() - started < 1.0
    h.server.release_hangs()
    time.sleep(0.1)
    assert rec.changes() == [] or all(kind != SERVICE for _, kind, _ in rec.changes())


def _settings(**changes):
    from dataclasses import replace
    return replace(FAST, **changes)


def test_a_relist_parses_only_what_changed(h, monkeypatch):
    import proxyctl.cluster.watch as watch_module

    parsed: list[str] = []
    real_parse = watch_module.parse_object

    def counting_parse(obj, **kwargs):
        parsed.append(obj["metadata"]["name"])
        return real_parse(obj, **kwargs)

    monkeypatch.setattr(watch_module, "parse_object", counting_parse)
    populate(h.server)
    watch, _ = h.watch()
    assert watch.wait_synced(5)
    eventually(lambda: h.server.open_watches() == 3)
    h.server.stop()
    h.server.update(o.service("ns1", "svc1", "172.30.0.11", port=81))
    h.server.store.forget_history()
    parsed.clear()
    h.server.start()
    eventually(lambda: watch.stats()[SERVICE].relists_on_gone == 1 and watch.snapshot().services[1].ports[0].port == 81)
    eventually(lambda: watch.stats()["EndpointSlice"].relists_on_gone == 1 and watch.stats()[NODE].relists_on_gone == 1)
    assert parsed == ["svc1"]
