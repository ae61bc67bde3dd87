"""Per-Service health-check node ports (externalTrafficPolicy=Local LoadBalancers), over loopback HTTP."""

from __future__ import annotations

import json
import socket

import pytest

from proxyctl.daemon.health import ManualClock, ProxyHealth
from proxyctl.daemon.healthz_server import ListenError
from proxyctl.daemon.service_health import NamespacedName, ServiceHealthServer, service_health_body
from tests.test_daemon_health_server import http_get

SVC = NamespacedName("ns1", "svc1")
OTHER = NamespacedName("ns2", "svc2")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def health(clock) -> ProxyHealth:
    h = ProxyHealth(60.0, clock=clock)
    h.updated("IPv4")
    return h


@pytest.fixture
def checks(health):
    server = ServiceHealthServer(health, addresses=("127.0.0.1",))
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(checks: ServiceHealthServer, service: NamespacedName, path: str = "/"):
    (port,) = checks.ports()[service]
    status, headers, body = http_get(port, path)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    return status, int(headers["X-Load-Balancing-Endpoint-Weight"]), body


def test_the_body_is_kube_proxys_dedented_template_with_tabs():
    assert service_health_body(SVC, 2, True) == (
        b'{\n\t"service": {\n\t\t"namespace": "ns1",\n\t\t"name": "svc1"\n\t},\n'
        b'\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}')


def test_200_with_local_endpoints_and_a_healthy_proxy(checks):
    assert checks.sync_services({SVC: free_port()}) == []
    checks.sync_endpoints({SVC: 3})
    status, weight, body = probe(checks, SVC)
    assert (status, weight) == (200, 3)
    assert json.loads(body) == {"service": {"namespace": "ns1", "name": "svc1"}, "localEndpoints": 3,
                                "serviceProxyHealthy": True}
    assert body == service_health_body(SVC, 3, True)


def test_503_without_local_endpoints(checks):
    checks.sync_services({SVC: free_port()})
    status, weight, body = probe(checks, SVC)
    assert (status, weight) == (503, 0)
    assert json.loads(body)["localEndpoints"] == 0


def test_503_when_the_proxy_is_unhealthy_even_with_endpoints(checks, health, clock):
    checks.sync_services({SVC: free_port()})
    checks.sync_endpoints({SVC: 2})
    health.queued_update("IPv4")
    clock.advance(60)
    status, weight, body = probe(checks, SVC)
    assert (status, weight) == (503, 2)
    assert json.loads(body)["serviceProxyHealthy"] is False


def test_node_eligibility_does_not_matter_here(checks, health):
    health.sync_node(None)  # /healthz would be 503
    checks.sync_services({SVC: free_port()})
    checks.sync_endpoints({SVC: 1})
    assert probe(checks, SVC)[0] == 200


def test_every_path_is_answered(checks):
    checks.sync_services({SVC: free_port()})
    checks.sync_endpoints({SVC: 1})
    assert probe(checks, SVC, "/healthz")[0] == 200
    assert probe(checks, SVC, "/anything/else?x=1")[0] == 200


def test_endpoints_left_out_of_a_sync_count_zero_and_unknown_services_are_ignored(checks):
    checks.sync_services({SVC: free_port(), OTHER: free_port()})
    checks.sync_endpoints({SVC: 1, OTHER: 4, NamespacedName("ns3", "not-a-check"): 9})
    assert probe(checks, OTHER)[:2] == (200, 4)
    checks.sync_endpoints({SVC: 1})
    assert probe(checks, OTHER)[:2] == (503, 0)
    assert probe(checks, SVC)[:2] == (200, 1)


def test_listeners_open_close_and_move_with_the_services(checks):
    first, second = free_port(), free_port()
    checks.sync_services({SVC: first, ("ns2", "svc2"): free_port()})  # plain tuples work too
    assert set(checks.ports()) == {SVC, OTHER}
    checks.sync_endpoints({SVC: 1})
    checks.sync_services({SVC: second})
    assert checks.ports() == {SVC: [second]}
    with pytest.raises(OSError):
        http_get(first, "/")
    assert probe(checks, SVC)[:2] == (503, 0)  # a new listener starts with no endpoints, as kube-proxy's
    checks.sync_services({})
    assert checks.ports() == {}
    with pytest.raises(OSError):
        http_get(second, "/")


def test_an_unchanged_service_keeps_its_listener_and_its_count(checks):
    port = free_port()
    checks.sync_services({SVC: port})
    checks.sync_endpoints({SVC: 2})
    checks.sync_services({SVC: port, OTHER: free_port()})
    assert probe(checks, SVC)[:2] == (200, 2)


def test_a_port_that_cannot_be_opened_is_reported_and_retried(checks):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    failures = checks.sync_services({SVC: port, OTHER: free_port()})
    assert len(failures) == 1 and isinstance(failures[0], ListenError)
    assert f"127.0.0.1:{port}" in str(failures[0]) and "ns1/svc1" in str(failures[0])
    assert set(checks.ports()) == {OTHER}  # the others still open
    taken.close()
    assert checks.sync_services({SVC: port, OTHER: checks.ports()[OTHER][0]}) == []
    assert set(checks.ports()) == {SVC, OTHER}


def test_one_listener_per_address(health):
    server = ServiceHealthServer(health, addresses=("127.0.0.1", "::1"))
    try:
        port = free_port()
        assert server.sync_services({SVC: port}) == []
        server.sync_endpoints({SVC: 1})
        assert server.ports() == {SVC: [port, port]}
        assert http_get(port, "/", host="127.0.0.1")[0] == 200
        assert http_get(port, "/", host="::1")[0] == 200
    finally:
        server.stop()
    with pytest.raises(OSError):
        http_get(port, "/")
