"""select_for_proxy: what kube-proxy's informers and change trackers let through."""

from __future__ import annotations

from pathlib import Path

from proxyctl.cluster.manifests import load_manifests
from proxyctl.cluster.objects import (
    HEADLESS_LABEL,
    SERVICE_NAME_LABEL,
    SERVICE_PROXY_NAME_LABEL,
    ClusterState,
    Endpoint,
    EndpointSlice,
    Node,
    Service,
    ServicePortSpec,
)
from proxyctl.cluster.selection import select_for_proxy

PORT = (ServicePortSpec(name="", protocol="TCP", port=80),)


def svc(name, labels=None, **kw):
    kw.setdefault("cluster_ips", ("10.0.0.1",))
    return Service(namespace="ns", name=name, ports=PORT, labels=labels or {}, **kw)


def eps(name, labels=None, service="svc", address_type="IPv4"):
    lab = {SERVICE_NAME_LABEL: service} if service else {}
    lab.update(labels or {})
    return EndpointSlice(namespace="ns", name=name, service_name=service, address_type=address_type,
                         endpoints=(Endpoint(addresses=("10.1.0.1",)),), ports=(), labels=lab)


STATE = ClusterState(
    services=(
        svc("plain"),
        svc("other-proxy", {SERVICE_PROXY_NAME_LABEL: "other"}),
        svc("mine", {SERVICE_PROXY_NAME_LABEL: "mine"}),
        svc("labelled-headless", {HEADLESS_LABEL: ""}),
        svc("headless", cluster_ips=(), headless=True),
        svc("no-ip", cluster_ips=()),
        svc("external", type="ExternalName"),
        svc("mine-headless", {SERVICE_PROXY_NAME_LABEL: "mine"}, cluster_ips=(), headless=True),
    ),
    endpoint_slices=(
        eps("plain-1"),
        eps("other-1", {SERVICE_PROXY_NAME_LABEL: "other"}),
        eps("mine-1", {SERVICE_PROXY_NAME_LABEL: "mine"}),
        eps("headless-1", {HEADLESS_LABEL: ""}),
        eps("fqdn-1", address_type="FQDN"),
        eps("orphan-1", service=""),
        eps("v6-1", address_type="IPv6"),
    ),
    nodes=(Node(name="node-a"), Node(name="node-b", labels={SERVICE_PROXY_NAME_LABEL: "x"})),
)


def names(state):
    return [s.name for s in state.services], [es.name for es in state.endpoint_slices], [n.name for n in state.nodes]


def test_default_proxy():
    assert names(select_for_proxy(STATE)) == (["plain"], ["plain-1", "v6-1"], ["node-a", "node-b"])


def test_named_proxy_takes_only_its_own_objects():
    assert names(select_for_proxy(STATE, "mine")) == (["mine"], ["mine-1"], ["node-a", "node-b"])


def test_unknown_name_selects_nothing():
    assert names(select_for_proxy(STATE, "nobody"))[:2] == ([], [])


def test_real_dump_loses_only_the_headless_service():
    path = Path(__file__).parent / "data" / "manifests" / "real-demo-iptables-nft-objects.yaml"
    state = load_manifests([str(path)]).state
    selected = select_for_proxy(state)
    assert {s.name for s in state.services} - {s.name for s in selected.services} == {"headless"}
    assert selected.endpoint_slices == state.endpoint_slices
    assert selected.nodes == state.nodes
