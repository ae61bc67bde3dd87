"""Test builders in kube-proxy's style (makeTestService(ns, name, mutator)), written once here.

Address plan shared by every test (as kube-proxy's proxier_test.go fixes one):
    node "test-node" 192.168.0.2 (eth0) and 2001:db8::1; other nodes node1, node2
    pods 10.180.0.0/16 (cluster CIDR 10.0.0.0/8), fd00:10:180::/48
    cluster IPs 172.30.0.0/16, fd00:172:30::/64; external IPs 192.168.99.0/24; LB IPs 1.2.3.0/24
"""

from __future__ import annotations

from dataclasses import replace

from proxyctl.backends.iptables.options import IptablesOptions, LocalDetector
from proxyctl.brain.build import build_views
from proxyctl.cluster.objects import (
    ClusterState,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    LoadBalancerIngress,
    Service,
    ServicePortSpec,
)
from proxyctl.node.facts import NodeFacts

NODE = "test-node"
NODE_FACTS = NodeFacts(
    name=NODE,
    node_ips={"IPv4": "192.168.0.2", "IPv6": "2001:db8::1"},
    addresses={"lo": ("127.0.0.1/8", "::1/128"), "eth0": ("192.168.0.2/24", "2001:db8::1/64")},
    nfacct=("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"),
)


def make_service(ns: str, name: str, cluster_ip: str = "172.30.0.41", *, port: int = 80, protocol: str = "TCP",
                 port_name: str = "p80", node_port: int = 0, **changes) -> Service:
    svc = Service(ns, name, (cluster_ip,), (ServicePortSpec(port_name, protocol, port, node_port),))
    if "load_balancer_ingress" in changes:
        ingress = changes["load_balancer_ingress"]
        changes["load_balancer_ingress"] = tuple(i if isinstance(i, LoadBalancerIngress) else LoadBalancerIngress(i)
                                                 for i in ingress)
    return replace(svc, **changes)


def make_endpoint(ip: str, node: str = "", *, ready=None, serving=None, terminating=None,
                  zones: tuple[str, ...] = (), nodes: tuple[str, ...] = ()) -> Endpoint:
    return Endpoint((ip,), ready, serving, terminating, node, hints_for_zones=zones, hints_for_nodes=nodes)


def make_slice(ns: str, service: str, endpoints, *, port: int = 80, protocol: str = "TCP", port_name: str = "p80",
               name: str | None = None, address_type: str = "IPv4") -> EndpointSlice:
    eps = tuple(e if isinstance(e, Endpoint) else make_endpoint(e) for e in endpoints)
    return EndpointSlice(ns, name or f"{service}-1", service, address_type, eps,
                         (EndpointPort(port_name, port, protocol),))


def options(**changes) -> IptablesOptions:
    """kube-proxy's test proxier: mark 0x4000, ClusterCIDR detector 10.0.0.0/8, both nfacct counters."""
    base = IptablesOptions(masquerade_mark="0x4000", detector=LocalDetector.by_cidr("10.0.0.0/8"),
                           node_ip="192.168.0.2", nfacct=frozenset(NODE_FACTS.nfacct))
    return replace(base, **changes)


def views(services, slices=(), family: str = "IPv4", node: str = NODE, zone: str = ""):
    return build_views(ClusterState(tuple(services), tuple(slices)), family, node, zone)
