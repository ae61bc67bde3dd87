"""The daemon's HTTP servers opened inside a network namespace answer there, and only there.

``proxyctl run --netns NAME`` serves healthz and metrics inside the lab node's namespace, so
several lab nodes can each serve :10256. The socket is made by a thread that entered the
namespace; these tests check it really lives there: a client inside gets kube-proxy's answer, the
test's own namespace has nothing on that port.
"""

from __future__ import annotations

import json
import socket
import sys

import pytest

from proxyctl.cluster.objects import Node
from proxyctl.daemon.health import ProxyHealth
from proxyctl.daemon.healthz_server import HealthzServer, ListenError
from proxyctl.daemon.service_health import NamespacedName, ServiceHealthServer

CLIENT = """
import http.client, json, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
conn.request("GET", sys.argv[3])
r = conn.getresponse()
print(json.dumps({"status": r.status, "headers": dict(r.getheaders()), "body": r.read().decode()}))
"""


def get_inside(netns_exec, ns: str, host: str, port: int, path: str) -> dict:
    return json.loads(netns_exec(ns, sys.executable, "-c", CLIENT, host, str(port), path))


@pytest.fixture
def node_ns(netns_factory, netns_exec):
    def make(label: str = "node") -> str:
        ns = netns_factory(label)
        netns_exec(ns, "ip", "link", "set", "lo", "up")
        return ns

    return make


@pytest.fixture
def health() -> ProxyHealth:
    h = ProxyHealth(60.0)
    h.sync_node(Node("lab-node"))
    h.updated("IPv4")
    return h


def refused_here(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_healthz_opened_in_a_namespace_answers_there_and_not_here(node_ns, netns_exec, health):
    ns = node_ns()
    server = HealthzServer("127.0.0.1:0", health, netns=ns)
    server.start()
    try:
        answer = get_inside(netns_exec, ns, "127.0.0.1", server.port, "/healthz")
        assert answer["status"] == 200
        assert answer["headers"]["Content-Type"] == "application/json"
        assert json.loads(answer["body"])["nodeEligible"] is True
        assert refused_here(server.port)
        with socket.socket() as here:  # the port is free in the test's namespace
            here.bind(("127.0.0.1", server.port))
    finally:
        server.stop()


def test_two_lab_nodes_each_serve_10256(node_ns, netns_exec, health):
    namespaces = [node_ns("node-a"), node_ns("node-b")]
    servers = [HealthzServer("0.0.0.0:10256", health, netns=ns) for ns in namespaces]
    try:
        for server in servers:
            server.start()
        for ns in namespaces:
            assert get_inside(netns_exec, ns, "127.0.0.1", 10256, "/livez")["status"] == 200
            assert get_inside(netns_exec, ns, "::1", 10256, "/livez")["status"] == 200  # Go's dual-stack wildcard
    finally:
        for server in servers:
            server.stop()


def test_a_taken_port_in_the_namespace_names_it(node_ns, health):
    ns = node_ns()
    first = HealthzServer("127.0.0.1:0", health, netns=ns)
    first.start()
    try:
        with pytest.raises(ListenError, match=f"in network namespace {ns}.*healthzBindAddress"):
            HealthzServer(f"127.0.0.1:{first.port}", health, netns=ns).start()
    finally:
        first.stop()


def test_service_health_checks_listen_in_the_namespace(node_ns, netns_exec, health):
    ns = node_ns()
    checks = ServiceHealthServer(health, addresses=("127.0.0.1",), netns=ns)
    service = NamespacedName("ns1", "lb")
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        assert checks.sync_services({service: port}) == []
        checks.sync_endpoints({service: 2})
        answer = get_inside(netns_exec, ns, "127.0.0.1", port, "/")
        assert answer["status"] == 200
        assert answer["headers"]["X-Load-Balancing-Endpoint-Weight"] == "2"
        assert refused_here(port)
    finally:
        checks.stop()
