"""kube-proxy's iptables mode on a real kernel: the lab of examples/lab/ on both iptables backends.

One lab per backend for the whole module (module-scoped ``lab`` fixture). Every case sends real
probes (full TCP connections, UDP datagrams) from a pod, a node or an external host, reads which
pod answered and what source it saw, reads conntrack in the node, and runs the static tracer on
the node's live rules (``iptables-save`` there, parsed): the prediction must agree with what was
observed (``report.agrees``: no probe where the prediction never goes, the chi-square test not
rejecting, the masquerade decision the pod saw matching), and the case's own facts must hold.

The lab (examples/lab/cluster.yaml): node-a and node-b; web 10.96.0.10 (web-0, web-1 on node-a,
web-2 on node-b; externalIP 192.0.2.50); local-np (eTP=Local, NodePort 30080, one pod per node);
local-a-only (eTP=Local, NodePort 30081, its pod on node-a); lb (192.0.2.100, source range
198.51.100.0/24, NodePort 30443); dns (UDP 10.96.0.53); web6 (fd00:10:96::10); sticky (ClientIP
affinity); empty (no endpoints). Hosts: ext (203.0.113.10) and ext-allowed (198.51.100.10).
"""

from __future__ import annotations

import pytest

from netns_tests.lab_fixtures import ALPHA, MASQUERADE_ALL, explain, observe, observed, pods_seen
from proxyctl.lab.probe import DROP, REJECT

pytest_plugins = ["netns_tests.conftest_lab"]

WEB = ("10.96.0.10", 80)
WEB_PODS = {"10.244.1.10:8080": "web-0", "10.244.1.11:8080": "web-1", "10.244.2.10:8080": "web-2"}
NODE_A, NODE_B = "172.31.254.10", "172.31.254.11"
EXT, EXT_ALLOWED = "203.0.113.10", "198.51.100.10"


def test_clusterip_from_a_pod_is_balanced(lab):
    """ClusterIP from a pod: balanced across its endpoints (chi-square over 300 connections)"""
    r = observe(lab, "client-node-a", *WEB, count=300)
    assert r.agrees, explain(r)
    assert r.comparison.p_value > ALPHA
    assert r.comparison.total == 300 and set(observed(r)) == set(WEB_PODS), explain(r)
    assert all(c.masqueraded == 0 for c in r.categories), explain(r)  # pod to pod: the source is kept
    assert all(r.conntrack.get(p.index) and r.conntrack[p.index].dnat_target == p.answer.local
               for p in r.probes), "conntrack in the node names the pod that answered"


def test_hairpin_pod_to_its_own_service_is_masqueraded(lab):
    """Hairpin: a pod reaching itself through its Service is masqueraded, reaching others it is not"""
    r = observe(lab, "web-0", *WEB, count=60)
    assert r.agrees, explain(r)
    by_dest = {c.category: c for c in r.categories}
    itself = by_dest["10.244.1.10:8080"]
    assert itself.observed > 0 and itself.masqueraded == itself.observed, explain(r)
    assert itself.peers == ("10.244.1.1",), "masqueraded to the node's bridge address"
    for other in ("10.244.1.11:8080", "10.244.2.10:8080"):
        assert by_dest[other].masqueraded == 0 and by_dest[other].peers == ("10.244.1.10",), explain(r)


def test_nodeport_from_an_external_host_is_masqueraded(lab):
    """NodePort (eTP=Cluster) from an external host: every endpoint, masqueraded"""
    r = observe(lab, "ext", NODE_B, 30443, count=60)
    assert r.agrees, explain(r)
    assert pods_seen(r) == {"lb-0", "lb-1"}, explain(r)
    assert all(c.masqueraded == c.observed for c in r.categories), explain(r)
    assert EXT not in {p for c in r.categories for p in c.peers}


@pytest.mark.parametrize(("node_ip", "pod"), [(NODE_A, "local-np-0"), (NODE_B, "local-np-1")])
def test_nodeport_local_reaches_only_local_endpoints(lab, node_ip, pod):
    """NodePort with eTP=Local: only the node's own endpoints, client source preserved"""
    r = observe(lab, "ext", node_ip, 30080, count=30)
    assert r.agrees, explain(r)
    assert pods_seen(r) == {pod}, explain(r)
    assert [c.peers for c in r.categories if c.observed] == [(EXT,)], "the pod sees the client's own address"


def test_nodeport_local_drops_on_a_node_without_local_endpoints(lab):
    """NodePort with eTP=Local on a node without local endpoints: dropped"""
    r = observe(lab, "ext", NODE_B, 30081, count=3)
    assert r.agrees, explain(r)
    assert observed(r) == {DROP: 3}, explain(r)
    ok = observe(lab, "ext", NODE_A, 30081, count=5)  # the node with the endpoint answers
    assert ok.agrees and pods_seen(ok) == {"local-a-only-0"}, explain(ok)


def test_external_ip(lab):
    """externalIPs: an external host reaches the Service's endpoints, masqueraded"""
    r = observe(lab, "ext", "192.0.2.50", 80, count=60)
    assert r.agrees, explain(r)
    assert set(observed(r)) == set(WEB_PODS), explain(r)
    assert all(c.masqueraded == c.observed for c in r.categories), explain(r)


def test_loadbalancer_source_ranges(lab):
    """LoadBalancer IP with loadBalancerSourceRanges: the allowed source passes, another is dropped"""
    allowed = observe(lab, "ext-allowed", "192.0.2.100", 443, count=40)
    assert allowed.agrees, explain(allowed)
    assert pods_seen(allowed) == {"lb-0", "lb-1"}, explain(allowed)
    denied = observe(lab, "ext", "192.0.2.100", 443, count=3)
    assert denied.agrees, explain(denied)
    assert observed(denied) == {DROP: 3}, explain(denied)


def test_session_affinity_sticks_to_one_endpoint(lab):
    """Session affinity (ClientIP): a client sticks to the endpoint it first reached"""
    r = observe(lab, "client-node-b", "10.96.0.40", 80, count=40)
    assert r.agrees, explain(r)
    assert len(observed(r)) == 1, explain(r)
    assert r.later is not r.first, "the prediction for the later probes knows the client's affinity entry"
    other = observe(lab, "client-node-a", "10.96.0.40", 80, count=20)
    assert other.agrees and len(observed(other)) == 1, explain(other)


def test_service_without_endpoints_is_rejected_at_once(lab):
    """No endpoints: REJECT, the client sees connection refused at once (not a timeout)"""
    r = observe(lab, "client-node-a", "10.96.0.99", 80, count=5, timeout=3.0)
    assert r.agrees, explain(r)
    assert observed(r) == {REJECT: 5}, explain(r)
    # refused, and well before the probe's 3 s timeout (a probe thread can wait for the GIL on a busy machine)
    assert all(p.result == "refused" and p.elapsed < 1.5 for p in r.probes), [(p.result, p.elapsed) for p in r.probes]


def test_udp_clusterip(lab):
    """UDP ClusterIP: datagrams balanced across the endpoints"""
    r = observe(lab, "client-node-b", "10.96.0.53", 53, "udp", count=200)
    assert r.agrees, explain(r)
    assert pods_seen(r) == {"dns-0", "dns-1"}, explain(r)
    assert all(c.masqueraded == 0 for c in r.categories), explain(r)


def test_ipv6_clusterip(lab):
    """IPv6 ClusterIP: balanced across the endpoints, source kept"""
    r = observe(lab, "client-node-a", "fd00:10:96::10", 80, count=100)
    assert r.agrees, explain(r)
    assert pods_seen(r) == {"web6-0", "web6-1"}, explain(r)
    assert [c.peers for c in r.categories] == [("fd00:10:244:1::fe",)] * 2, explain(r)


def test_clusterip_from_the_node_itself(lab):
    """ClusterIP from the node itself: masqueraded (the node is outside the cluster CIDR)"""
    r = observe(lab, "node-a", *WEB, count=60)
    assert r.agrees, explain(r)
    assert set(observed(r)) == set(WEB_PODS), explain(r)
    local = [c for c in r.categories if c.category.startswith("10.244.1.")]
    assert all(c.peers == ("10.244.1.1",) for c in local), explain(r)


def test_nodeport_on_localhost(lab):
    """NodePort on 127.0.0.1 from the node (route_localnet, as kube-proxy sets it)"""
    r = observe(lab, "node-a", "127.0.0.1", 30443, count=30)
    assert r.agrees, explain(r)
    assert pods_seen(r) == {"lb-0", "lb-1"}, explain(r)


def test_raw_probes(lab):
    """Crafted packets (scapy): TCP SYNs placed by conntrack, UDP datagrams answered"""
    syn = observe(lab, "client-node-a", *WEB, count=60, kind="raw")
    assert syn.agrees, explain(syn)
    assert set(observed(syn)) == set(WEB_PODS) and all(p.detail == "syn-ack" for p in syn.probes), explain(syn)
    udp = observe(lab, "client-node-b", "10.96.0.53", 53, "udp", count=40, kind="raw")
    assert udp.agrees and pods_seen(udp) == {"dns-0", "dns-1"}, explain(udp)
    refused = observe(lab, "client-node-a", "10.96.0.99", 80, count=3, kind="raw")
    assert refused.agrees and observed(refused) == {REJECT: 3}, explain(refused)


def test_masquerade_all(lab):
    """masqueradeAll: every Service connection is masqueraded, pod to pod too"""
    try:
        lab.apply(config_path=MASQUERADE_ALL)
        r = observe(lab, "client-node-a", *WEB, count=60)
        assert r.agrees, explain(r)
        assert set(observed(r)) == set(WEB_PODS), explain(r)
        assert all(c.masqueraded == c.observed for c in r.categories), explain(r)
    finally:
        lab.apply()  # back to the lab's own configuration for the cases after this one
    back = observe(lab, "client-node-a", *WEB, count=30)
    assert back.agrees and all(c.masqueraded == 0 for c in back.categories), explain(back)
