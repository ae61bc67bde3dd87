"""Loading Services, EndpointSlices and Nodes from files, directories, stdin, Lists and JSON."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from proxyctl.cluster.manifests import LoadResult, load_manifests, parse_object
from proxyctl.cluster.objects import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    LoadBalancerIngress,
    Node,
    Service,
    ServicePortSpec,
)
from proxyctl.errors import ManifestError, Problem

DATA = Path(__file__).parent / "data" / "manifests"
FIXTURES = sorted(DATA.glob("*.yaml"))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"  # shared/ stands beside the checkout


def load_text(text: str, **kwargs) -> LoadResult:
    return load_manifests(["-"], stdin=io.StringIO(text), **kwargs)


def sport(name, protocol, port, node_port=0, target_port=""):
    return ServicePortSpec(name=name, protocol=protocol, port=port, node_port=node_port, target_port=target_port)


def only(result: LoadResult):
    assert result.problems == ()
    objects = [*result.state.services, *result.state.endpoint_slices, *result.state.nodes]
    assert len(objects) == 1, objects
    return objects[0]


SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80}]
"""


# -- the reference fixtures --------------------------------------------------------------------

def test_fixture_copies_exist():
    assert len(FIXTURES) >= 9


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_every_fixture_loads_without_problems(path):
    result = load_manifests([str(path)], strict=True)
    assert result.problems == ()


def test_fixture_copies_match_the_shared_originals():
    originals = sorted(SHARED.glob("kube-proxy/**/input.yaml"))
    assert originals
    for original in originals:
        name = "__".join(original.parent.relative_to(SHARED / "kube-proxy").parts) + ".yaml"
        assert (DATA / name).read_text() == original.read_text(), name
    real = SHARED / "real-kube-proxy/demo-iptables-nft/objects.yaml"
    assert (DATA / "real-demo-iptables-nft-objects.yaml").read_text() == real.read_text()


def test_overall_rules_fixture_is_read_without_api_defaults():
    state = load_manifests([str(DATA / "overall_iptables_rules.yaml")]).state
    assert [s.key for s in state.services] == [f"ns{i}/svc{i}" for i in range(1, 7)]
    svc1, svc2, svc3, svc4, svc5, svc6 = state.services
    assert svc1 == Service(namespace="ns1", name="svc1", cluster_ips=("172.30.0.41",),
                           ports=(sport("p80", "TCP", 80),))
    assert svc1.type == svc1.external_traffic_policy == svc1.internal_traffic_policy == ""
    assert svc1.session_affinity == ""
    assert svc2.type == "LoadBalancer" and svc2.external_traffic_policy == "Local"
    assert svc2.health_check_node_port == 30000
    assert svc2.external_ips == ("192.168.99.22",)
    assert svc2.load_balancer_ingress == (LoadBalancerIngress(ip="1.2.3.4"),)
    assert svc3.ports[0].node_port == 3003  # below the default node port range: kept
    assert svc4.type == "NodePort" and svc4.ports[0].node_port == 0 and svc4.ports[0].target_port == "80"
    assert svc5.load_balancer_source_ranges == (" 203.0.113.0/25",)  # as written
    assert svc5.session_affinity == "ClientIP" and svc5.session_affinity_timeout == 10800
    assert svc6.type == "ClusterIP"
    es4 = state.endpoint_slices[3]
    assert es4.service_name == "svc4" and es4.address_type == "IPv4"
    assert es4.endpoints == (
        Endpoint(addresses=("10.180.0.4",)),
        Endpoint(addresses=("10.180.0.5",), node_name="test-node"),
    )
    assert es4.endpoints[0].ready is None and es4.endpoints[0].serving is None
    assert es4.ports == (EndpointPort(name="p80", port=80, protocol="TCP"),)


def test_ipv6_fixture():
    state = load_manifests([str(DATA / "node_ports__case5_ipv6_localhost-nodeports-enabled.yaml")]).state
    assert state.services[0].cluster_ips == ("fd00:172:30::41",)
    es = state.endpoint_slices[0]
    assert es.address_type == "IPv6"
    assert [e.addresses for e in es.endpoints] == [("fd00:10:180::1",), ("fd00:10:180::2:1",)]


def test_unnamed_port_fixture():
    state = load_manifests([str(DATA / "internal_traffic_policy__case2_local_one_local.yaml")]).state
    assert state.services[0].ports[0].name == ""
    assert state.services[0].internal_traffic_policy == "Local"
    assert state.endpoint_slices[0].ports[0].name == ""
    assert [e.ready for e in state.endpoint_slices[0].endpoints] == [True, True, True]


def test_comment_only_fixture_is_empty():
    result = load_manifests([str(DATA / "masquerade_rule.yaml")])
    assert result.state.services == result.state.endpoint_slices == result.state.nodes == ()


def test_real_cluster_dump():
    state = load_manifests([str(DATA / "real-demo-iptables-nft-objects.yaml")]).state
    assert len(state.services) == 11 and len(state.endpoint_slices) == 9
    assert state.nodes == (Node(name="anchor-node", labels={}, internal_ips=("192.0.2.10",),
                                pod_cidrs=("10.244.0.0/24",), taints=("node.kubernetes.io/not-ready",)),)
    assert state.nodes[0].zone == "zone-a"
    by_name = {s.name: s for s in state.services}
    assert by_name["headless"].headless and by_name["headless"].cluster_ips == ()
    assert by_name["sticky"].session_affinity_timeout == 600
    assert by_name["lb"].load_balancer_ingress == (LoadBalancerIngress(ip="203.0.113.30", ip_mode="VIP"),)
    assert by_name["lb"].load_balancer_source_ranges == ("198.51.100.0/24",)
    assert by_name["etp-local"].health_check_node_port == 32050
    assert by_name["kubernetes"].labels == {"component": "apiserver", "provider": "kubernetes"}
    term = next(es for es in state.endpoint_slices if es.name == "terminating-1").endpoints[0]
    assert (term.ready, term.serving, term.terminating) == (False, True, True)


# -- inputs: files, directories, stdin, JSON, Lists ---------------------------------------------

def test_multi_document_yaml_and_empty_documents():
    result = load_text("---\n" + SERVICE + "---\n---\n" + SERVICE.replace("web", "api") + "---\n")
    assert [s.name for s in result.state.services] == ["web", "api"]


def test_directory_is_read_recursively_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.yml").write_text(SERVICE.replace("web", "two"))
    (tmp_path / "a.yaml").write_text(SERVICE.replace("web", "one"))
    (tmp_path / "c.json").write_text(json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}))
    (tmp_path / "notes.txt").write_text("not a manifest: {{{")
    result = load_manifests([str(tmp_path)])
    assert [s.name for s in result.state.services] == ["one", "two"]
    assert [n.name for n in result.state.nodes] == ["n1"]


def test_json_file(tmp_path):
    path = tmp_path / "svc.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 53, "protocol": "UDP"}]}}))
    svc = only(load_manifests([str(path)]))
    assert svc.namespace == "default"  # where kubectl would put it
    assert svc.ports[0].protocol == "UDP"


def test_json_on_stdin():
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}]})
    assert only(load_text(text)).name == "n1"


def test_stdin_defaults_to_sys_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SERVICE))
    assert only(load_manifests(["-"])).name == "web"


def test_problems_from_stdin_name_it_dash():
    result = load_text(SERVICE.replace("port: 80", "port: 0"))
    assert [str(p) for p in result.problems] == [
        "-[doc 0]: Service demo/web: spec.ports[0].port: port 0 is out of range 1..65535"]


def test_typed_list_as_kubectl_prints_it():
    text = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: demo}
  spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  endpoints: [{addresses: [10.1.0.1]}]
  ports: [{port: 8080}]
- apiVersion: v1
  kind: Pod
  metadata: {name: ignored}
"""
    state = load_text(text, strict=True).state
    assert [s.name for s in state.services] == ["web"]
    assert [es.name for es in state.endpoint_slices] == ["web-1"]


def test_kind_specific_list_items_inherit_kind_and_api_version():
    text = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSliceList
items:
- metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  endpoints: [{addresses: [10.1.0.1]}]
  ports: [{port: 8080}]
"""
    es = only(load_text(text))
    assert isinstance(es, EndpointSlice) and es.service_name == "web"


def test_service_list_items_without_kind():
    text = """
apiVersion: v1
kind: ServiceList
items:
- metadata: {name: a}
  spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}
- metadata: {name: b}
  spec: {clusterIP: 10.0.0.2, ports: [{port: 80}]}
"""
    assert [s.name for s in load_text(text).state.services] == ["a", "b"]


def test_problem_in_a_list_item_names_the_item():
    text = """
apiVersion: v1
kind: ServiceList
items:
- metadata: {name: a}
  spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}
- metadata: {name: b}
  spec: {clusterIP: 10.0.0.2, ports: [{port: 99999}]}
"""
    result = load_text(text)
    assert [s.name for s in result.state.services] == ["a"]
    assert result.problems == (Problem("port 99999 is out of range 1..65535", source="-", document=0,
                                       obj="Service default/b", field="items[1].spec.ports[0].port"),)


def test_unknown_kinds_are_ignored_silently():
    text = """
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: "not checked"}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: Not_A_Core_Service}
"""
    result = load_text(text, strict=True)
    assert result.state.services == () and result.problems == ()


def test_missing_file_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="no such file or directory"):
        load_manifests([str(tmp_path / "nope.yaml")])


def test_not_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x\n")
    with pytest.raises(ManifestError) as info:
        load_manifests([str(path)])
    assert str(info.value).startswith(f"{path}: line 4, column 1: not valid YAML")
    assert info.value.exit_code == 2


def test_document_that_is_not_a_mapping():
    with pytest.raises(ManifestError, match=r"-: document 1 is a string, not a mapping"):
        load_text(SERVICE + "---\njust text\n")


def test_strict_mode_raises_with_every_problem():
    text = SERVICE.replace("port: 80", "port: 70000") + "---\n" + SERVICE.replace("10.96.0.10", "10.96.0.300")
    with pytest.raises(ManifestError) as info:
        load_text(text, strict=True)
    assert info.value.lines() == [
        "-[doc 0]: Service demo/web: spec.ports[0].port: port 70000 is out of range 1..65535",
        "-[doc 1]: Service demo/web: spec.clusterIP: '10.96.0.300' is not a valid IP address "
        "(e.g. 10.9.8.7 or 2001:db8::1)",
    ]
    assert str(info.value) == "strict mode: 2 problems in the input"


def test_non_strict_mode_skips_only_the_bad_object():
    text = SERVICE.replace("port: 80", "port: 70000") + "---\n" + SERVICE.replace("web", "api")
    result = load_text(text)
    assert [s.name for s in result.state.services] == ["api"]
    assert len(result.problems) == 1


def test_a_later_definition_replaces_an_earlier_one():
    text = SERVICE + "---\n" + SERVICE.replace("10.96.0.10", "10.96.0.11")
    result = load_text(text)
    assert [s.cluster_ips for s in result.state.services] == [("10.96.0.11",)]
    assert [str(p) for p in result.problems] == [
        "-[doc 0]: Service demo/web: replaced by a later definition at -[doc 1]"]


# -- Service fields --------------------------------------------------------------------------------

def test_service_defaults_only_protocol_and_affinity_timeout():
    svc = only(load_text(SERVICE))
    assert svc == Service(namespace="demo", name="web", cluster_ips=("10.96.0.10",),
                          ports=(sport("http", "TCP", 80),))
    sticky = only(load_text(SERVICE + "  sessionAffinity: ClientIP\n"))
    assert sticky.session_affinity_timeout == 10800
    none = only(load_text(SERVICE + "  sessionAffinity: None\n"))
    assert none.session_affinity == "None" and none.session_affinity_timeout == 0


def test_cluster_ips_are_canonical():
    svc = only(load_text(SERVICE.replace("10.96.0.10", "010.096.000.010")))
    assert svc.cluster_ips == ("10.96.0.10",)
    svc = only(load_text(SERVICE.replace("clusterIP: 10.96.0.10",
                                         "clusterIPs: [10.96.0.10, 'FD00:0:0::0A']")))
    assert svc.cluster_ips == ("10.96.0.10", "fd00::a")


def test_cluster_ip_must_match_first_cluster_ips_entry():
    result = load_text(SERVICE.replace("clusterIP: 10.96.0.10",
                                       "clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.11]"))
    assert [p.field for p in result.problems] == ["spec.clusterIP"]


@pytest.mark.parametrize("spec", ["clusterIP: None", "clusterIPs: [None]", "type: ExternalName"])
def test_headless_services_are_kept(spec):
    svc = only(load_text(SERVICE.replace("clusterIP: 10.96.0.10", spec)))
    assert svc.headless and svc.cluster_ips == ()


def test_load_balancer_ingress_hostnames_are_dropped():
    text = SERVICE + """status:
  loadBalancer:
    ingress:
    - hostname: lb.example.com
    - ip: 203.0.113.7
      ipMode: Proxy
"""
    assert only(load_text(text)).load_balancer_ingress == (LoadBalancerIngress(ip="203.0.113.7", ip_mode="Proxy"),)


def test_service_fields_kube_proxy_reads():
    text = SERVICE + """  type: LoadBalancer
  externalTrafficPolicy: Local
  internalTrafficPolicy: Cluster
  healthCheckNodePort: 31000
  trafficDistribution: PreferClose
  externalIPs: [192.0.2.1]
  loadBalancerSourceRanges: [10.0.0.0/8, "2001:db8::/32"]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
"""
    svc = only(load_text(text.replace("ports: [{name: http, port: 80}]",
                                      "ports: [{name: http, port: 80, nodePort: 30080, targetPort: web}]")))
    assert (svc.type, svc.external_traffic_policy, svc.internal_traffic_policy) == ("LoadBalancer", "Local", "Cluster")
    assert svc.health_check_node_port == 31000 and svc.traffic_distribution == "PreferClose"
    assert svc.external_ips == ("192.0.2.1",)
    assert svc.load_balancer_source_ranges == ("10.0.0.0/8", "2001:db8::/32")
    assert svc.session_affinity_timeout == 60
    assert svc.ports == (sport("http", "TCP", 80, 30080, "web"),)


def test_labels_are_kept():
    svc = only(load_text(SERVICE.replace("namespace: demo}", "namespace: demo, labels: {app: web}}")))
    assert svc.labels == {"app": "web"}


# -- EndpointSlice and Node fields -----------------------------------------------------------------

SLICE = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.001]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-a
  zone: zone-a
  hints: {forZones: [{name: zone-a}], forNodes: [{name: node-a}]}
ports:
- {name: http, port: 8080, protocol: TCP}
- {port: null}
- {name: zero, port: 0, protocol: UDP}
"""


def test_endpoint_slice_fields():
    es = only(load_text(SLICE))
    assert es == EndpointSlice(
        namespace="demo", name="web-abc", service_name="web", address_type="IPv4",
        endpoints=(Endpoint(addresses=("10.0.0.1",), ready=False, serving=True, terminating=True,
                            node_name="node-a", zone="zone-a", hints_for_zones=("zone-a",),
                            hints_for_nodes=("node-a",)),),
        ports=(EndpointPort("http", 8080, "TCP"), EndpointPort("", None, "TCP"), EndpointPort("zero", None, "UDP")),
    )


def test_endpoint_slice_without_service_name_label_is_kept():
    es = only(load_text(SLICE.replace("labels: {kubernetes.io/service-name: web}", "labels: {}")))
    assert es.service_name == ""


def test_fqdn_slice():
    text = SLICE.replace("IPv4", "FQDN").replace("10.0.0.001", "web.example.com")
    assert only(load_text(text)).endpoints[0].addresses == ("web.example.com",)


def test_v1beta1_slice_reads_zone_from_topology():
    text = SLICE.replace("discovery.k8s.io/v1", "discovery.k8s.io/v1beta1").replace(
        "zone: zone-a\n", "topology: {topology.kubernetes.io/zone: zone-b}\n")
    assert only(load_text(text)).endpoints[0].zone == "zone-b"


def test_node_fields():
    text = """
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {topology.kubernetes.io/zone: z1}
  deletionTimestamp: "2024-01-01T00:00:00Z"
spec:
  podCIDR: 10.244.1.0/24
  taints: [{key: ToBeDeletedByClusterAutoscaler, effect: NoSchedule}]
status:
  addresses:
  - {type: Hostname, address: node-a}
  - {type: InternalIP, address: 192.0.2.10}
  - {type: InternalIP, address: "2001:db8::10"}
  - {type: ExternalIP, address: 203.0.113.10}
"""
    node = only(load_text(text))
    assert node == Node(name="node-a", labels={}, internal_ips=("192.0.2.10", "2001:db8::10"),
                        external_ips=("203.0.113.10",), pod_cidrs=("10.244.1.0/24",), being_deleted=True,
                        taints=("ToBeDeletedByClusterAutoscaler",))
    assert node.zone == "z1"


# -- parse_object ----------------------------------------------------------------------------------

def test_parse_object_returns_each_type():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "b"},
           "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}}
    assert isinstance(parse_object(svc), Service)
    assert isinstance(parse_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}), Node)
    assert parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}) is None
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "a", "namespace": "b"},
                 "subsets": [{"addresses": [{"ip": "10.1.1.1"}], "ports": [{"port": 80}]}]}
    slices = parse_object(endpoints)
    assert isinstance(slices, list) and slices[0].service_name == "a"


def test_parse_object_raises_with_problems():
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a b"}, "spec": {"ports": [{"port": -1}]}}
    with pytest.raises(ManifestError) as info:
        parse_object(bad, source="x.yaml", document=3)
    assert [(p.source, p.document, p.obj, p.field) for p in info.value.problems] == [
        ("x.yaml", 3, "Service default/'a b'", "metadata.name"),
        ("x.yaml", 3, "Service default/'a b'", "spec.ports[0].port"),
    ]
