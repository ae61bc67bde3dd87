"""Property tests: no manifest can put an unsafe character into a loaded object, or crash the loader."""

from __future__ import annotations

import dataclasses
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyctl.cluster.manifests import LoadResult, load_manifests, parse_object
from proxyctl.errors import ManifestError

# Characters that could end a comment, split a rule or break an iptables-restore line.
UNSAFE = set(" \t\r\n\v\f\"'`\\") | {chr(c) for c in range(32)} | {"\x7f"}

# Mostly name characters, with dangerous ones mixed in, so that many values pass validation.
NAMEISH = st.text(alphabet="abz019-._/A \"'\n\t\\`;\x00\u00e9\u2028", min_size=0, max_size=20)
TEXT = st.one_of(NAMEISH, st.text(max_size=20), st.sampled_from(["web", "ns1", "http", "node-a", "zone-a"]))


def strings_in(value, path="obj"):
    """Every string held in a loaded object, with where it is."""
    if isinstance(value, str):
        yield path, value
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from strings_in(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from strings_in(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_in(k, f"{path}.key")
            yield from strings_in(v, f"{path}[{k!r}]")


def assert_safe(result: LoadResult) -> None:
    objects = [*result.state.services, *result.state.endpoint_slices, *result.state.nodes]
    for obj in objects:
        for where, text in strings_in(obj):
            if ".load_balancer_source_ranges[" in where:
                text = text.strip()  # kept as written; kube-proxy trims it, as the API server does
            assert text.isascii(), (where, text)
            assert not (set(text) & UNSAFE), (where, text)
    for problem in result.problems:
        assert "\n" not in str(problem) and "\r" not in str(problem)


def load_objects(*objects) -> LoadResult:
    return load_manifests(["-"], stdin=io.StringIO(json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": list(objects)})))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TEXT, namespace=TEXT, port_name=TEXT, label_key=TEXT, label_value=TEXT, target=TEXT,
       source_range=st.sampled_from(["10.0.0.0/8", " 10.0.0.0/8", "10.0.0.0/8\n", "10.0.0.0/8 x"]),
       protocol=st.sampled_from(["TCP", "UDP", "SCTP", "tcp", "TCP\n", "TCP -j ACCEPT"]))
def test_service_strings_are_safe_or_rejected(name, namespace, port_name, label_key, label_value, target,
                                               source_range, protocol):
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {label_key: label_value}},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
                 "ports": [{"name": port_name, "port": 80, "protocol": protocol, "targetPort": target}],
                 "loadBalancerSourceRanges": [source_range]},
    }
    assert_safe(load_objects(service))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TEXT, service=TEXT, node=TEXT, zone=TEXT, hint=TEXT, port_name=TEXT,
       address=st.one_of(TEXT, st.sampled_from(["10.0.0.1", "010.0.0.1", " 10.0.0.1", "10.0.0.1\n",
                                                "fd00::1", "FD00::01", "10.0.0.1%eth0"])),
       address_type=st.sampled_from(["IPv4", "IPv6", "FQDN", "ipv4"]))
def test_endpoint_slice_strings_are_safe_or_rejected(name, service, node, zone, hint, port_name, address,
                                                      address_type):
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "ns", "labels": {"kubernetes.io/service-name": service}},
        "addressType": address_type,
        "endpoints": [{"addresses": [address], "nodeName": node, "zone": zone,
                       "hints": {"forZones": [{"name": hint}], "forNodes": [{"name": node}]}}],
        "ports": [{"name": port_name, "port": 8080}],
    }
    assert_safe(load_objects(endpoint_slice))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TEXT, ip=TEXT, node=TEXT, cidr=TEXT, taint=TEXT)
def test_node_and_endpoints_strings_are_safe_or_rejected(name, ip, node, cidr, taint):
    node_obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                "spec": {"podCIDRs": [cidr], "taints": [{"key": taint, "effect": "NoSchedule"}]},
                "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": "ns"},
                 "subsets": [{"addresses": [{"ip": ip, "nodeName": node}], "ports": [{"port": 80}]}]}
    assert_safe(load_objects(node_obj, endpoints))


# -- never a traceback -------------------------------------------------------------------------------

FIELD_NAMES = ["apiVersion", "kind", "metadata", "name", "namespace", "labels", "spec", "status", "ports",
               "port", "nodePort", "protocol", "clusterIP", "clusterIPs", "externalIPs", "endpoints",
               "addresses", "conditions", "ready", "addressType", "subsets", "items", "ip", "hints",
               "forZones", "loadBalancer", "ingress", "sessionAffinityConfig", "clientIP", "podCIDRs"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                    st.text(max_size=10), st.sampled_from(["Service", "EndpointSlice", "Node", "Endpoints",
                                                           "List", "v1", "discovery.k8s.io/v1", "IPv4",
                                                           "10.0.0.1", "None", "ClientIP"]))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=5)),
                                               children, max_size=6)),
    max_leaves=15,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["Service", "EndpointSlice", "Node", "Endpoints"]),
       api_version=st.sampled_from(["v1", "discovery.k8s.io/v1", None]),
       body=st.dictionaries(st.sampled_from(FIELD_NAMES), VALUES, max_size=6))
def test_parse_object_never_crashes(kind, api_version, body):
    obj = {**body, "kind": kind}
    if api_version is not None:
        obj["apiVersion"] = api_version
    try:
        parse_object(obj, source="fuzz")
    except ManifestError as e:
        assert e.problems


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.sampled_from(["apiVersion: v1\n", "kind: Service\n", "kind: List\n",
                                           "items:\n", "- ", "  ", "metadata:\n", "  name: x\n", "---\n",
                                           "{", "}", "[", "]", ": ", "&a ", "*a ", "!!binary ", '"',
                                           "ports: [{port: 80}]\n", "spec:\n", "\t", "#", "\x00"]),
                          max_size=30).map("".join)))
def test_any_text_gives_a_result_or_a_manifest_error(text):
    try:
        result = load_manifests(["-"], stdin=io.StringIO(text))
    except ManifestError as e:
        assert "\n" not in str(e)
    else:
        assert_safe(result)
