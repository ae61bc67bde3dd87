"""The lab's pure parts: topology from cluster objects, the comparison statistics, the servers' line.

No kernel here; these live next to the lab tests because they describe the same lab.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter

import pytest

from netns_tests.lab_fixtures import CLUSTER, CONFIG, ROOT
from proxyctl.errors import InputError
from proxyctl.inputs import gather
from proxyctl.lab.compare import chi2_sf, compare, gammaincc
from proxyctl.lab.servers import parse_who, who_line
from proxyctl.lab.topology import from_cluster, topology_from_dict, topology_to_dict

pytest_plugins = ["netns_tests.conftest_lab"]


def topology_of(*paths: str, config: str | None = None):
    inputs = gather(list(paths), config_path=config, discover=None)
    return from_cluster(inputs.state, inputs.config.cluster_cidrs)


def test_example_topology():
    """Topology of examples/lab: a pod per endpoint address, nodes, podCIDRs, clients, hosts, routes"""
    t = topology_of(CLUSTER, config=CONFIG)
    assert [n.name for n in t.nodes] == ["node-a", "node-b"]
    assert t.node("node-a").pod_cidrs == ("10.244.1.0/24", "fd00:10:244:1::/64")
    assert t.node("node-a").gateways == ("10.244.1.1/24", "fd00:10:244:1::1/64")
    pods = {p.name: p for p in t.pods}
    assert pods["web-2"].node == "node-b" and pods["web-2"].ips == ("10.244.2.10",)
    assert [str(x) for x in pods["dns-0"].ports] == ["udp/5353"]
    assert pods["client-node-b"].client and pods["client-node-b"].ips == ("10.244.2.254", "fd00:10:244:2::fe")
    assert len([p for p in t.pods if not p.client]) == 15
    assert {h.name: h.ips for h in t.hosts} == {"ext": ("203.0.113.10", "fd00:ee::10"),
                                                "ext-allowed": ("198.51.100.10",)}
    assert t.network.routes == (("192.0.2.50", "node-a"), ("192.0.2.100", "node-a"))
    assert t.node("node-b").ips == ("172.31.254.11", "fd00:1ab::b")
    assert topology_from_dict(topology_to_dict(t)) == t


def test_demo_topology_groups_pods_by_subnet():
    """Topology of examples/demo: nodes from nodeName, pod CIDRs from the pods' /24s"""
    demo = ROOT / "examples" / "demo"
    t = topology_of(str(demo / "cluster.yaml"), config=str(demo / "kube-proxy-config.yaml"))
    assert [n.name for n in t.nodes] == ["anchor-node", "other-node"]
    assert t.node("anchor-node").pod_cidrs[0] == "10.244.0.0/24"
    assert "10.244.7.0/24" in t.node("other-node").pod_cidrs
    assert t.routed_to("192.0.2.200").name == "anchor-node"
    assert t.find("ext-allowed").ips == ("198.51.100.10",)


def test_shared_subnet_needs_node_objects(tmp_path):
    """Pods of two nodes in one /24: an error that says how to fix it, fixed by Nodes with podCIDRs"""
    slice_ = textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata: {name: s, namespace: d}
        spec: {clusterIP: 10.96.0.1, ports: [{port: 80, protocol: TCP}]}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: s-1, namespace: d, labels: {kubernetes.io/service-name: s}}
        addressType: IPv4
        ports: [{port: 80, protocol: TCP}, {name: x, port: 9, protocol: SCTP}]
        endpoints:
        - {addresses: [10.1.0.10], nodeName: a}
        - {addresses: [10.1.0.200], nodeName: b}
        """)
    path = tmp_path / "c.yaml"
    path.write_text(slice_)
    with pytest.raises(InputError, match="share 10.1.0.0/24.*spec.podCIDRs"):
        topology_of(str(path))
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Node
        metadata: {name: a}
        spec: {podCIDR: 10.1.0.0/25}
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: b}
        spec: {podCIDR: 10.1.0.128/25}
        """))
    t = topology_of(str(path), str(nodes))
    assert t.node("b").pod_cidrs[0] == "10.1.0.128/25" and t.node("b").gateways[0] == "10.1.0.129/25"
    assert any("sctp/9" in n and "no SCTP" in n for n in t.notes)


def test_chi_square_p_values():
    """Chi-square p-values: the incomplete gamma function against closed forms"""
    for x in (0.1, 1.0, 3.0, 10.0, 50.0):
        assert math.isclose(gammaincc(1.0, x / 2), math.exp(-x / 2), rel_tol=1e-12)  # 2 degrees of freedom
        assert math.isclose(gammaincc(0.5, x / 2), math.erfc(math.sqrt(x / 2)), rel_tol=1e-10)  # 1
        assert math.isclose(chi2_sf(x, 2), math.exp(-x / 2), rel_tol=1e-9)
    k = 4  # 4 degrees of freedom: Q = e^(-x/2) (1 + x/2)
    assert math.isclose(gammaincc(k / 2, 7.0 / 2), math.exp(-3.5) * 4.5, rel_tol=1e-12)
    try:
        from scipy.stats import chi2
    except ImportError:  # the closed forms above are the check then
        return
    for x, dof in ((0.5, 1), (7.8, 3), (30.0, 5), (100.0, 3), (50.0, 40), (1e-3, 4)):
        assert math.isclose(chi2_sf(x, dof), chi2.sf(x, dof), rel_tol=1e-9, abs_tol=1e-300)


def test_compare_verdicts():
    """Agreement: fits pass, impossible destinations and skewed counts do not"""
    third = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    assert compare(third, Counter(a=100, b=110, c=90)).agrees
    skewed = compare(third, Counter(a=200, b=50, c=50))
    assert not skewed.agrees and skewed.p_value < 1e-20 and not skewed.unexpected
    stray = compare({"a": 0.5, "b": 0.5}, Counter(a=5, b=4, DROP=1))
    assert not stray.agrees and stray.unexpected == ("DROP",)
    assert compare({"REJECT": 1.0}, Counter(REJECT=5)).p_value == 1.0
    assert compare({"REJECT": 1.0}, Counter(REJECT=4, DROP=1)).p_value == 0.0


def test_who_am_i_line():
    """The servers' who-am-I line, IPv4, IPv6 and IPv4-mapped"""
    line = who_line("web-0", ("::ffff:10.0.0.1", 4000, 0, 0), ("fd00::1", 8080, 0, 0))
    assert line == "pod=web-0 peer=10.0.0.1:4000 local=[fd00::1]:8080"
    assert parse_who(line + "\n") == {"pod": "web-0", "peer": "10.0.0.1:4000", "local": "[fd00::1]:8080"}
    assert parse_who("HTTP/1.0 200 OK") == {}
