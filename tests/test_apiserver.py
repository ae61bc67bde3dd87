"""The test API server speaks the Kubernetes protocol: checked with the official client, and raw HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
import urllib3
from kubernetes import watch as k8s_watch
from kubernetes.client import ApiClient, Configuration, CoreV1Api, DiscoveryV1Api, VersionApi
from kubernetes.client.exceptions import ApiException

from tests.apiserver import ApiServer, Fault
from tests.apiserver import objects as o


@pytest.fixture
def server():
    with ApiServer(bookmark_interval=0.1) as s:
        yield s


@pytest.fixture
def client(server):
    configuration = Configuration(host=server.url)
    configuration.retries = False
    with ApiClient(configuration) as c:
        yield c


def raw_get(server, path: str, timeout: float = 5.0, *, body: bool = True) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read() if body else b""
    finally:
        conn.close()


def watch_lines(server, path: str, count: int, timeout: float = 5.0) -> list[dict]:
    """The first ``count`` events of a watch, read from the raw chunked stream."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200 and response.headers["Transfer-Encoding"] == "chunked"
        events = []
        while len(events) < count:
            line = response.fp.readline()  # http.client de-chunks in read(); the raw framing is checked below
            if not line:
                break
            if line.strip().startswith(b"{"):
                events.append(json.loads(line))
        return events
    finally:
        conn.close()


def test_lists_like_the_api_server(server, client):
    server.create(o.service("ns1", "b", "172.30.0.2", labels={"app": "x"}))
    server.create(o.service("ns1", "a", "172.30.0.1"))
    server.create(o.service("ns2", "c", "172.30.0.3", labels={"service.kubernetes.io/headless": ""}))
    api = CoreV1Api(client)
    listed = api.list_service_for_all_namespaces()
    assert [s.metadata.name for s in listed.items] == ["a", "b", "c"]
    assert listed.metadata.resource_version == str(server.resource_version)
    assert listed.items[0].spec.cluster_ip == "172.30.0.1"
    selected = api.list_service_for_all_namespaces(label_selector="!service.kubernetes.io/headless,app in (x,y)")
    assert [s.metadata.name for s in selected.items] == ["b"]
    assert [s.metadata.name for s in api.list_namespaced_service("ns2").items] == ["c"]
    status, _, body = raw_get(server, "/api/v1/services")
    assert status == 200 and "kind" not in json.loads(body)["items"][0]  # as the API server sends list items


def test_field_selector_and_single_objects(server, client):
    server.create(o.node("n1"))
    server.create(o.node("n2"))
    api = CoreV1Api(client)
    assert [n.metadata.name for n in api.list_node(field_selector="metadata.name=n2").items] == ["n2"]
    assert [n.metadata.name for n in api.list_node(field_selector="metadata.name!=n2").items] == ["n1"]
    assert api.read_node("n1").metadata.name == "n1"
    with pytest.raises(ApiException) as e:
        api.read_node("n3")
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        api.list_node(field_selector="spec.unschedulable=true")
    assert e.value.status == 400


def test_paging_over_one_snapshot(server, client):
    for i in range(7):
        server.create(o.endpoint_slice("ns1", f"s{i}", [f"10.0.0.{i + 1}"]))
    api = DiscoveryV1Api(client)
    first = api.list_endpoint_slice_for_all_namespaces(limit=3)
    server.create(o.endpoint_slice("ns1", "s9", ["10.0.0.9"]))  # not part of the snapshot
    second = api.list_endpoint_slice_for_all_namespaces(limit=3, _continue=first.metadata._continue)
    third = api.list_endpoint_slice_for_all_namespaces(limit=3, _continue=second.metadata._continue)
    names = [s.metadata.name for page in (first, second, third) for s in page.items]
    assert names == [f"s{i}-abc12" for i in range(7)]
    assert third.metadata._continue is None
    assert first.metadata.resource_version == third.metadata.resource_version
    server.expire_continue_tokens()
    with pytest.raises(ApiException) as e:
        api.list_endpoint_slice_for_all_namespaces(limit=3, _continue=first.metadata._continue)
    assert e.value.status == 410


def test_official_watch_helper_sees_changes_and_bookmarks(server, client):
    server.create(o.service("ns1", "a", "172.30.0.1"))
    api = CoreV1Api(client)
    rv = api.list_service_for_all_namespaces().metadata.resource_version

    def changes():
        time.sleep(0.1)
        server.create(o.service("ns1", "b", "172.30.0.2"))
        server.update(o.service("ns1", "a", "172.30.0.1", port=81))
        server.delete("Service", "b", "ns1")

    changer = threading.Thread(target=changes)
    changer.start()
    seen = []
    w = k8s_watch.Watch()
    for event in w.stream(api.list_service_for_all_namespaces, resource_version=rv, allow_watch_bookmarks=True,
                          timeout_seconds=30, _request_timeout=(10, 30)):
        # A BOOKMARK's object stays a dict (recent kubernetes clients do not deserialize it): read the
        # resourceVersion from raw_object, which every event has. A bookmark can come before the
        # changes when the thread making them is slow to run.
        seen.append((event["type"], event["object"].metadata.name if event["type"] != "BOOKMARK" else "",
                     event["raw_object"]["metadata"]["resourceVersion"]))
        if len([s for s in seen if s[0] != "BOOKMARK"]) == 3:
            w.stop()
    changer.join(30)
    assert not changer.is_alive(), "the thread making the changes did not end"
    changes_seen = [s[:2] for s in seen if s[0] != "BOOKMARK"]
    assert changes_seen == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    versions = [int(s[2]) for s in seen if s[0] != "BOOKMARK"]
    assert versions == sorted(versions) and versions[0] > int(rv)


def test_watch_without_resource_version_starts_with_current_objects(server):
    server.create(o.service("ns1", "a", "172.30.0.1"))
    server.create(o.service("ns1", "b", "172.30.0.2"))
    events = watch_lines(server, "/api/v1/namespaces/ns1/services?watch=true&timeoutSeconds=2", 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]
    assert events[0]["object"]["kind"] == "Service" and events[0]["object"]["apiVersion"] == "v1"


def test_bookmarks_carry_the_current_resource_version(server):
    server.create(o.config_map("ns1", "cm"))
    rv = server.resource_version
    path = f"/api/v1/services?watch=true&resourceVersion={rv - 1}&allowWatchBookmarks=true&timeoutSeconds=2"
    events = watch_lines(server, path, 1)
    assert events == [{"type": "BOOKMARK", "object": {"kind": "Service", "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": str(rv)}}}]


def test_selector_transitions_are_additions_and_deletions(server):
    server.create(o.service("ns1", "a", "172.30.0.1"))
    rv = server.resource_version
    server.update(o.service("ns1", "a", "172.30.0.1", labels={"service.kubernetes.io/service-proxy-name": "x"}))
    server.update(o.service("ns1", "a", "172.30.0.1"))
    path = (f"/api/v1/services?watch=true&resourceVersion={rv}&timeoutSeconds=2"
            "&labelSelector=%21service.kubernetes.io%2Fservice-proxy-name")
    events = watch_lines(server, path, 2)
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]
    assert events[0]["object"]["metadata"]["resourceVersion"] == str(rv + 1)


def test_too_old_resource_version_is_410(server, client):
    server.store.history_limit = 2
    for i in range(5):
        server.create(o.config_map("ns1", f"cm{i}"))
    events = watch_lines(server, "/api/v1/services?watch=true&resourceVersion=1000", 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    w = k8s_watch.Watch()  # the official helper turns it into an ApiException after one retry
    with pytest.raises(ApiException) as e:
        for _ in w.stream(CoreV1Api(client).list_service_for_all_namespaces, resource_version="1000",
                          _request_timeout=(10, 10)):
            pass
    assert e.value.status == 410


def test_injected_faults(server, client):
    api = CoreV1Api(client)
    server.inject(Fault.SERVER_ERROR)
    server.inject(Fault.GONE)
    with pytest.raises(ApiException) as e:
        api.list_node()
    assert e.value.status == 500 and json.loads(e.value.body)["reason"] == "InternalError"
    with pytest.raises(ApiException) as e:
        api.list_node()
    assert e.value.status == 410
    server.inject(Fault.GARBAGE)
    with pytest.raises(ValueError):
        api.list_node()
    server.inject(Fault.RESET)
    with pytest.raises(urllib3.exceptions.HTTPError):
        api.list_node()
    server.inject(Fault.HANG)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api.list_node(_request_timeout=(10, 0.3))
    assert time.monotonic() - started < 10  # the read timeout, not the server's HANG_LIMIT (60 s)
    server.release_hangs()
    server.inject(Fault.GONE_EVENT, watch=True)
    events = watch_lines(server, "/api/v1/nodes?watch=true&resourceVersion=1000", 1)
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
    assert api.list_node().items == []  # faults are used up


def test_faults_can_target_watches_of_one_resource(server):
    server.inject(Fault.SERVER_ERROR, 2, watch=True, resource="endpointslices")
    assert raw_get(server, "/api/v1/services?watch=true", body=False)[0] == 200
    assert raw_get(server, "/apis/discovery.k8s.io/v1/endpointslices")[0] == 200
    assert raw_get(server, "/apis/discovery.k8s.io/v1/endpointslices?watch=true")[0] == 500
    assert raw_get(server, "/apis/discovery.k8s.io/v1/endpointslices?watch=1")[0] == 500
    assert raw_get(server, "/apis/discovery.k8s.io/v1/endpointslices?watch=true", body=False)[0] == 200


def test_close_watches_cuts_or_ends_streams(server):
    results = {}

    def read(name, path):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        conn.request("GET", path)
        response = conn.getresponse()
        try:
            response.read()
            results[name] = "clean"
        except http.client.IncompleteRead:
            results[name] = "cut"
        conn.close()

    thread = threading.Thread(target=read, args=("a", "/api/v1/services?watch=true"))
    thread.start()
    assert server.wait_until(lambda: server.open_watches() == 1)
    assert server.close_watches() == 1
    thread.join(30)
    assert not thread.is_alive(), "the client of the cut stream is still reading"
    # The client can see the cut before the server's handler forgets the stream: wait for that,
    # or the second close would end the first stream again and leave the second one open.
    assert server.wait_until(lambda: server.open_watches() == 0)
    thread = threading.Thread(target=read, args=("b", "/api/v1/services?watch=true"))
    thread.start()
    assert server.wait_until(lambda: server.open_watches() == 1)
    assert server.close_watches(clean=True) == 1
    thread.join(30)
    assert not thread.is_alive(), "the client of the ended stream is still reading"
    assert results == {"a": "cut", "b": "clean"}


def test_restart_closes_connections_and_serves_on_the_same_port(server, client):
    server.create(o.service("ns1", "a", "172.30.0.1"))
    port = server.port
    outcome = {}

    def watch():
        try:
            raw = http.client.HTTPConnection(server.host, port, timeout=5)
            raw.request("GET", "/api/v1/services?watch=true")
            outcome["body"] = raw.getresponse().read()
        except Exception as e:
            outcome["error"] = e

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert server.wait_until(lambda: server.open_watches() == 1)
    # Down until the test has tried to connect: a fixed sleep could look before the listener
    # closed, or after it opened again, on a busy machine.
    resume = threading.Event()
    down = threading.Thread(target=server.restart, kwargs={"keep_history": False, "resume": resume}, daemon=True)
    down.start()
    try:
        assert server.down.wait(30), "the server did not go down"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((server.host, port), timeout=5).close()
    finally:
        resume.set()
    down.join(30)
    assert not down.is_alive(), "the restart did not finish"
    thread.join(30)
    assert not thread.is_alive(), "the watch was not cut by the restart"
    assert "error" in outcome
    assert server.port == port
    assert [s.metadata.name for s in CoreV1Api(client).list_service_for_all_namespaces().items] == ["a"]
    assert server.store.oldest == server.resource_version  # the history is gone


def test_hooks_run_at_their_moment(server, client):
    api = CoreV1Api(client)
    server.add_hook(lambda r: server.create(o.service("ns1", "late", "172.30.0.9")), phase="listed")
    first = api.list_service_for_all_namespaces()
    assert first.items == [] and int(first.metadata.resource_version) < server.resource_version
    assert [s.metadata.name for s in api.list_service_for_all_namespaces().items] == ["late"]


def test_objects_through_http(server, client):
    api = CoreV1Api(client)
    created = api.create_namespaced_service("ns1", o.service("ns1", "web", "172.30.0.5"))
    assert created.metadata.resource_version == str(server.resource_version) and created.metadata.uid
    body = o.service("ns1", "web", "172.30.0.5", port=8080)
    assert api.replace_namespaced_service("web", "ns1", body).spec.ports[0].port == 8080
    with pytest.raises(ApiException) as e:
        api.create_namespaced_service("ns1", o.service("ns1", "web", "172.30.0.5"))
    assert e.value.status == 409
    api.delete_namespaced_service("web", "ns1")
    assert server.get("Service", "web", "ns1") is None
    assert VersionApi(client).get_code().minor == "36"
    assert server.count(resource="services", method="POST") == 2
