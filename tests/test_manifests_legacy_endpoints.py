"""Legacy v1 Endpoints become the EndpointSlices the mirroring controller would write."""

from __future__ import annotations

import io

import yaml

from proxyctl.cluster.legacy_endpoints import (
    MANAGED_BY_LABEL,
    MIRRORING_CONTROLLER,
    EndpointsAddress,
    EndpointsPort,
    EndpointsSubset,
    mirror,
    mirror_slice_name,
    repack,
)
from proxyctl.cluster.manifests import load_manifests, parse_object
from proxyctl.cluster.objects import SERVICE_NAME_LABEL, Endpoint, EndpointPort

ENDPOINTS = """
apiVersion: v1
kind: Endpoints
metadata:
  name: legacy
  namespace: demo
  labels: {team: a}
subsets:
- addresses:
  - {ip: 10.0.0.1, nodeName: node-a}
  - {ip: "2001:db8::1"}
  notReadyAddresses:
  - {ip: 10.0.0.2, nodeName: node-b}
  ports:
  - {name: http, port: 8080}
  - {name: dns, port: 53, protocol: UDP}
"""


def slices_of(text: str):
    return parse_object(yaml.safe_load(text))


def test_one_slice_per_address_family():
    v4, v6 = slices_of(ENDPOINTS)
    assert (v4.namespace, v4.name, v4.service_name, v4.address_type) == ("demo", "legacy-mirror-1", "legacy", "IPv4")
    assert v4.endpoints == (
        Endpoint(addresses=("10.0.0.1",), ready=True, node_name="node-a"),
        Endpoint(addresses=("10.0.0.2",), ready=False, node_name="node-b"),
    )
    assert v4.endpoints[0].serving is None and v4.endpoints[0].terminating is None
    assert v4.ports == (EndpointPort("http", 8080, "TCP"), EndpointPort("dns", 53, "UDP"))
    assert v4.labels == {"team": "a", SERVICE_NAME_LABEL: "legacy", MANAGED_BY_LABEL: MIRRORING_CONTROLLER}
    assert (v6.name, v6.address_type, v6.ports) == ("legacy-mirror-2", "IPv6", v4.ports)
    assert v6.endpoints == (Endpoint(addresses=("2001:db8::1",), ready=True),)


def test_subsets_with_the_same_ports_share_a_slice():
    text = """
apiVersion: v1
kind: Endpoints
metadata: {name: svc, namespace: ns}
subsets:
- addresses: [{ip: 10.0.0.1}]
  ports: [{port: 80}]
- addresses: [{ip: 10.0.0.2}]
  ports: [{port: 80}]
- addresses: [{ip: 10.0.0.3}]
  ports: [{port: 81}]
"""
    first, second = slices_of(text)
    assert [e.addresses for e in first.endpoints] == [("10.0.0.1",), ("10.0.0.2",)]
    assert first.ports == (EndpointPort("", 80, "TCP"),)
    assert [e.addresses for e in second.endpoints] == [("10.0.0.3",)]
    assert second.ports == (EndpointPort("", 81, "TCP"),)


def test_not_ready_wins_over_ready_for_the_same_address():
    a = EndpointsAddress(ip="10.0.0.1")
    port = EndpointsPort(name="", port=80, protocol="TCP")
    subsets = [EndpointsSubset((a,), (), (port,)), EndpointsSubset((), (a,), (port,))]
    assert repack(subsets) == [EndpointsSubset((), (a,), (port,))]
    (es,) = mirror("ns", "svc", {}, subsets)
    assert es.endpoints == (Endpoint(addresses=("10.0.0.1",), ready=False),)


def test_same_ip_with_different_targets_stays_two_addresses_until_slices_dedupe():
    a1 = EndpointsAddress(ip="10.0.0.1", uid="u1")
    a2 = EndpointsAddress(ip="10.0.0.1", uid="u2")
    port = EndpointsPort(name="", port=80, protocol="TCP")
    assert repack([EndpointsSubset((a1, a2), (), (port,))])[0].addresses == (a1, a2)


def test_a_subset_without_ports_serves_nothing():
    text = ENDPOINTS.replace("""  ports:
  - {name: http, port: 8080}
  - {name: dns, port: 53, protocol: UDP}
""", "")
    assert slices_of(text) == []


def test_skip_mirror_label_and_leader_annotation():
    assert slices_of(ENDPOINTS.replace("{team: a}", '{endpointslice.kubernetes.io/skip-mirror: "true"}')) == []
    leader = ENDPOINTS.replace("  labels: {team: a}",
                               "  annotations: {control-plane.alpha.kubernetes.io/leader: '{}'}")
    assert slices_of(leader) == []
    assert len(slices_of(ENDPOINTS.replace("{team: a}", '{endpointslice.kubernetes.io/skip-mirror: "false"}'))) == 2


def test_at_most_1000_addresses_per_subset():
    addresses = tuple(EndpointsAddress(ip=f"10.0.{i // 256}.{i % 256}") for i in range(1200))
    subsets = [EndpointsSubset(addresses, (), (EndpointsPort("", 80, "TCP"),))]
    (es,) = mirror("ns", "svc", {}, subsets)
    assert len(es.endpoints) == 1000
    assert es.endpoints[-1].addresses == ("10.0.3.231",)


def test_mirrored_slice_names_stay_valid():
    assert mirror_slice_name("web", 1) == "web-mirror-1"
    long = "a" * 250
    assert mirror_slice_name(long, 2) == "a" * 244 + "-mirror-2"
    assert len(mirror_slice_name(long, 2)) == 253
    assert mirror_slice_name("a" * 243 + ".b", 10).endswith("a-mirror-10")


def test_invalid_endpoints_are_problems():
    result = load_manifests(["-"], stdin=io.StringIO(ENDPOINTS.replace("10.0.0.2", "10.0.0.2x")))
    assert result.state.endpoint_slices == ()
    assert [(p.obj, p.field) for p in result.problems] == [
        ("Endpoints demo/legacy", "subsets[0].notReadyAddresses[0].ip")]


def test_mirrored_slices_give_way_to_real_slices_of_the_same_service():
    real = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: legacy-x7k2p, namespace: demo, labels: {kubernetes.io/service-name: legacy}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{name: http, port: 8080}]
"""
    result = load_manifests(["-"], stdin=io.StringIO(ENDPOINTS + "---\n" + real))
    assert [es.name for es in result.state.endpoint_slices] == ["legacy-x7k2p"]
    other = ENDPOINTS.replace("name: legacy", "name: other")
    result = load_manifests(["-"], stdin=io.StringIO(other + "---\n" + real))
    assert [es.name for es in result.state.endpoint_slices] == ["other-mirror-1", "other-mirror-2", "legacy-x7k2p"]
