"""/healthz and /livez over real loopback HTTP, answers parsed as kube-proxy v1.36's; the shared plumbing."""

from __future__ import annotations

import calendar
import http.client
import json
import re
import socket
import time

import pytest

from proxyctl.cluster.objects import Node
from proxyctl.daemon.health import TO_BE_DELETED_TAINT, ManualClock, ProxyHealth
from proxyctl.daemon.healthz_server import HealthzServer, ListenError, parse_bind_address
from proxyctl.daemon.metrics import ProxyMetrics

TIMEOUT = 60.0
GO_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{0,8}[1-9]))?(Z|[+-]\d\d:\d\d)$")


def http_get(port: int, path: str, *, host: str = "127.0.0.1", headers: dict | None = None):
    """(status, headers, body) of one GET; errors are answers too."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def go_time_ns(text: str) -> int:
    """Nanoseconds since the epoch of a time Go's json.Marshal wrote (RFC 3339, trailing zeros trimmed)."""
    m = GO_TIME.match(text)
    assert m, f"{text!r} is not a Go RFC3339Nano time"
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def health(clock) -> ProxyHealth:
    h = ProxyHealth(TIMEOUT, clock=clock)
    h.sync_node(Node("node-1"))
    return h


@pytest.fixture
def metrics() -> ProxyMetrics:
    return ProxyMetrics("iptables", process_metrics=False)


@pytest.fixture
def server(health, metrics):
    s = HealthzServer("127.0.0.1:0", health, metrics=metrics)
    s.start()
    yield s
    s.stop()


def kube_proxy_answer(server, path):
    """The answer, checked against what every kube-proxy health answer has; (status, parsed body)."""
    status, headers, body = http_get(server.port, path)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in headers  # Go sends none
    assert int(headers["Content-Length"]) == len(body)
    assert not body.endswith(b"\n")
    assert b" " not in body  # json.Marshal is compact
    return status, json.loads(body)


def test_healthz_after_a_sync(server, health, clock):
    health.updated("IPv4")
    synced = clock.now()
    clock.advance(5)
    status, body = kube_proxy_answer(server, "/healthz")
    assert status == 200
    assert list(body) == ["lastUpdated", "currentTime", "nodeEligible", "healthy", "status"]
    assert body["nodeEligible"] is True and body["healthy"] is True
    # healthy: lastUpdated is "now", as kube-proxy keeps for compatibility
    assert go_time_ns(body["lastUpdated"]) == go_time_ns(body["currentTime"]) == clock.now().wall_ns
    assert body["status"] == {"IPv4": {"lastUpdated": body["status"]["IPv4"]["lastUpdated"], "healthy": True}}
    assert go_time_ns(body["status"]["IPv4"]["lastUpdated"]) == synced.wall_ns


def test_livez_has_no_node_eligibility(server, health):
    health.updated("IPv4")
    status, body = kube_proxy_answer(server, "/livez")
    assert status == 200
    assert list(body) == ["lastUpdated", "currentTime", "healthy", "status"]


def test_before_any_sync_status_is_left_out(server):
    status, body = kube_proxy_answer(server, "/livez")
    assert status == 200
    assert list(body) == ["lastUpdated", "currentTime", "healthy"]


@pytest.mark.parametrize("path", ["/healthz", "/livez"])
def test_200_turns_503_when_an_update_waits_longer_than_health_timeout(server, health, clock, path):
    health.updated("IPv4")
    synced = clock.now()
    health.updated("IPv6")
    health.queued_update("IPv4")
    clock.advance(TIMEOUT - 1)
    assert kube_proxy_answer(server, path)[0] == 200
    clock.advance(1)
    status, body = kube_proxy_answer(server, path)
    assert status == 503
    assert body["healthy"] is False
    assert body["status"]["IPv4"]["healthy"] is False
    assert body["status"]["IPv6"]["healthy"] is True
    assert go_time_ns(body["lastUpdated"]) == synced.wall_ns  # unhealthy: the real last sync
    assert go_time_ns(body["currentTime"]) == clock.now().wall_ns
    health.updated("IPv4")
    assert kube_proxy_answer(server, path)[0] == 200


@pytest.mark.parametrize("node", [Node("node-1", being_deleted=True), Node("node-1", taints=(TO_BE_DELETED_TAINT,)),
                                  None])
def test_healthz_is_503_for_a_node_being_deleted_while_livez_stays_200(server, health, node):
    health.updated("IPv4")
    health.sync_node(node)
    status, body = kube_proxy_answer(server, "/healthz")
    assert status == 503
    assert body["nodeEligible"] is False
    assert body["healthy"] is True  # the proxy itself is fine
    assert kube_proxy_answer(server, "/livez")[0] == 200


def test_the_zero_time_before_any_sync_is_gos(server, health):
    health.sync_node(None)
    status, body = kube_proxy_answer(server, "/healthz")
    assert status == 503
    assert body["lastUpdated"] == "0001-01-01T00:00:00Z"


def test_answers_are_counted_by_code(server, health, metrics, clock):
    health.updated("IPv4")
    kube_proxy_answer(server, "/healthz")
    kube_proxy_answer(server, "/livez")
    health.queued_update("IPv4")
    clock.advance(TIMEOUT)
    kube_proxy_answer(server, "/healthz")
    assert metrics.proxy_healthz_total.labels("200")._value.get() == 1
    assert metrics.proxy_healthz_total.labels("503")._value.get() == 1
    assert metrics.proxy_livez_total.labels("200")._value.get() == 1


def test_other_paths_get_gos_404(server):
    status, headers, body = http_get(server.port, "/metrics")
    assert (status, body) == (404, b"404 page not found\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_query_string_does_not_change_the_path(server):
    assert kube_proxy_answer(server, "/healthz?verbose=1")[0] == 200


def test_a_port_in_use_names_the_address_the_field_and_the_fix(health):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    address = f"127.0.0.1:{taken.getsockname()[1]}"
    try:
        with pytest.raises(ListenError) as failure:
            HealthzServer(address, health).start()
    finally:
        taken.close()
    message = str(failure.value)
    assert address in message
    assert "healthzBindAddress" in message
    assert "address already in use" in message.lower()
    assert "another process already listens there" in message
    assert "set healthzBindAddress to a free port" in message
    assert failure.value.exit_code == 1


@pytest.mark.parametrize("address", ["10256", "localhost:10256", "0.0.0.0:http", "[::1]10256", "1.2.3.4:70000"])
def test_a_malformed_address_is_a_clear_error(address):
    with pytest.raises(ListenError, match="healthzBindAddress"):
        parse_bind_address(address, field="healthzBindAddress")


@pytest.mark.parametrize(("address", "parsed"), [
    ("0.0.0.0:10256", ("0.0.0.0", 10256)), ("[::]:10256", ("::", 10256)), ("127.0.0.1:10249", ("127.0.0.1", 10249)),
    (":10256", ("", 10256)), ("[::1]:0", ("::1", 0)),
])
def test_bind_addresses_as_kube_proxy_writes_them(address, parsed):
    assert parse_bind_address(address, field="healthzBindAddress") == parsed


def test_a_wildcard_address_listens_on_both_families_like_go(health):
    if not socket.has_ipv6:
        pytest.fail("the test machine has no IPv6 sockets")
    s = HealthzServer("0.0.0.0:0", health)
    s.start()
    try:
        assert http_get(s.port, "/livez", host="127.0.0.1")[0] == 200
        assert http_get(s.port, "/livez", host="::1")[0] == 200
    finally:
        s.stop()


def test_stop_returns_within_a_second_with_a_connection_open_and_frees_the_port(health):
    s = HealthzServer("127.0.0.1:0", health)
    s.start()
    port = s.port
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/livez")
    idle.getresponse().read()  # HTTP/1.1: the connection stays open
    started = time.monotonic()
    s.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(OSError):
        http_get(port, "/livez")
    with pytest.raises((OSError, http.client.HTTPException)):
        idle.request("GET", "/livez")
        idle.getresponse()
    idle.close()
    s.stop()  # idempotent
    again = HealthzServer(f"127.0.0.1:{port}", health)
    again.start()
    again.stop()


def test_a_request_body_is_read_and_the_connection_stays_usable(server, health):
    health.updated("IPv4")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/healthz", body=b"x" * 1000)
        assert conn.getresponse().read().startswith(b'{"lastUpdated"')
        conn.request("GET", "/livez")
        response = conn.getresponse()
        assert response.status == 200 and b'"healthy":true' in response.read()
    finally:
        conn.close()
