"""Legacy v1 ``Endpoints`` to the EndpointSlices the EndpointSlice mirroring controller makes.

kube-proxy reads only EndpointSlices; a cluster turns a hand-made Endpoints object into slices
with the mirroring controller (kube-controller-manager). This module does the same offline:

* Endpoints labelled ``endpointslice.kubernetes.io/skip-mirror: "true"`` (the API server's own
  ``kubernetes`` Endpoints are) or annotated ``control-plane.alpha.kubernetes.io/leader`` (old
  leader-election records) are not mirrored.
* The subsets are first put in canonical form: an address is keyed by IP and targetRef uid, a
  port by name, number and protocol; an address listed both ready and not ready for a port is
  not ready; ports served by exactly the same addresses share a subset. A subset without ports
  serves nothing and disappears.
* Then one slice per (set of ports, address family): ``addresses`` give ready=True,
  ``notReadyAddresses`` ready=False; serving and terminating stay unset; nodeName is kept. At
  most 1000 addresses are mirrored per subset and per slice; the rest are dropped, as the
  controller drops them.
* The slice carries the Endpoints' labels plus ``kubernetes.io/service-name: <endpoints name>``
  and ``endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io``. The
  controller lets the API server generate slice names; here they are ``<name>-mirror-<n>``
  (n from 1, in input order) so that output is reproducible.

The controller also mirrors only Endpoints whose Service exists and has no selector. A file
has no such context; :func:`proxyctl.cluster.manifests.load_manifests` instead drops mirrored
slices of a Service for which the input already holds real EndpointSlices.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyctl.cluster import names
from proxyctl.cluster.ipaddr import family_of
from proxyctl.cluster.manifest_fields import ObjectReader, read_metadata, show
from proxyctl.cluster.objects import SERVICE_NAME_LABEL, Endpoint, EndpointPort, EndpointSlice

SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MIRRORING_CONTROLLER = "endpointslicemirroring-controller.k8s.io"
MAX_ENDPOINTS_PER_SUBSET = 1000  # kube-controller-manager's --mirroring-max-endpoints-per-subset
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class EndpointsAddress:
    ip: str  # canonical
    node_name: str = ""
    uid: str = ""  # targetRef.uid: two addresses with one IP but different targets stay apart


@dataclass(frozen=True)
class EndpointsPort:
    name: str
    port: int
    protocol: str


@dataclass(frozen=True)
class EndpointsSubset:
    addresses: tuple[EndpointsAddress, ...]
    not_ready_addresses: tuple[EndpointsAddress, ...]
    ports: tuple[EndpointsPort, ...]


def read_endpoints(reader: ObjectReader, obj: dict) -> list[EndpointSlice] | None:
    """The slices mirrored from the Endpoints in ``obj`` ([] when it is not mirrored), or None
    when ``reader`` recorded problems."""
    namespace, name, labels = read_metadata(reader, obj, namespaced=True,
                                            name_check=names.is_dns1123_subdomain)
    if name and names.is_label_value(name):
        reader.fail("metadata.name", f"name {show(name)} cannot be mirrored: it is not a valid label value "
                                     "for kubernetes.io/service-name (at most 63 characters)")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    annotations = reader.string_map(meta, "annotations", "metadata.annotations")
    subsets = [_subset(reader, entry, path) for _, entry, path in reader.items(obj, "subsets", "subsets")]
    if not reader.ok:
        return None
    if labels.get(SKIP_MIRROR_LABEL) == "true" or LEADER_ANNOTATION in annotations:
        return []
    return mirror(namespace, name, labels, subsets)


def _subset(reader: ObjectReader, entry: dict, path: str) -> EndpointsSubset:
    ready = _addresses(reader, entry, "addresses", f"{path}.addresses")
    not_ready = _addresses(reader, entry, "notReadyAddresses", f"{path}.notReadyAddresses")
    items = list(reader.items(entry, "ports", f"{path}.ports"))
    ports = []
    seen: dict[str, str] = {}
    for _, port_entry, ppath in items:
        name = reader.port_name(port_entry, ppath, seen)
        if not name and len(items) > 1:
            reader.fail(f"{ppath}.name", "is required when a subset has more than one port")
        protocol = reader.string(port_entry, "protocol", f"{ppath}.protocol") or "TCP"
        reader.one_of(protocol, f"{ppath}.protocol", PROTOCOLS, "protocol")
        number = reader.integer(port_entry, "port", f"{ppath}.port")
        if port_entry.get("port") is None:
            reader.fail(f"{ppath}.port", "is required")
        elif number is not None and reader.port(number, f"{ppath}.port"):
            ports.append(EndpointsPort(name=name, port=number, protocol=protocol))
    return EndpointsSubset(addresses=ready, not_ready_addresses=not_ready, ports=tuple(ports))


def _addresses(reader: ObjectReader, entry: dict, key: str, path: str) -> tuple[EndpointsAddress, ...]:
    out = []
    for _, address, apath in reader.items(entry, key, path):
        text = reader.string(address, "ip", f"{apath}.ip")
        if not text:
            if address.get("ip") is None:
                reader.fail(f"{apath}.ip", "is required")
            continue
        ip = reader.ip(text, f"{apath}.ip", endpoint=True)
        node_name = reader.string(address, "nodeName", f"{apath}.nodeName")
        if node_name:
            reader.check_name(node_name, f"{apath}.nodeName", names.is_dns1123_subdomain, "nodeName")
        hostname = reader.string(address, "hostname", f"{apath}.hostname")
        if hostname:
            reader.check_name(hostname, f"{apath}.hostname", names.is_dns1123_label, "hostname")
        target = reader.mapping(address, "targetRef", f"{apath}.targetRef")
        uid = reader.string(target, "uid", f"{apath}.targetRef.uid")
        if ip is not None:
            out.append(EndpointsAddress(ip=ip, node_name=node_name, uid=uid))
    return tuple(out)


def repack(subsets: list[EndpointsSubset]) -> list[EndpointsSubset]:
    """The canonical form of ``subsets``: one subset per distinct set of (address, readiness)."""
    readiness: dict[EndpointsPort, dict[tuple[str, str], bool]] = {}
    first_seen: dict[tuple[str, str], EndpointsAddress] = {}
    for subset in subsets:
        for port in subset.ports:
            by_address = readiness.setdefault(port, {})
            for address, ready in [(a, True) for a in subset.addresses] + \
                                  [(a, False) for a in subset.not_ready_addresses]:
                key = (address.ip, address.uid)
                first_seen.setdefault(key, address)
                by_address[key] = by_address.get(key, True) and ready  # not ready wins
    groups: dict[frozenset, list[EndpointsPort]] = {}
    members: dict[frozenset, dict[tuple[str, str], bool]] = {}
    for port, by_address in readiness.items():
        key = frozenset(by_address.items())
        groups.setdefault(key, []).append(port)
        members.setdefault(key, by_address)
    return [
        EndpointsSubset(
            addresses=tuple(first_seen[k] for k, ready in members[key].items() if ready),
            not_ready_addresses=tuple(first_seen[k] for k, ready in members[key].items() if not ready),
            ports=tuple(ports),
        )
        for key, ports in groups.items()
    ]


def mirror(namespace: str, name: str, labels: dict[str, str], subsets: list[EndpointsSubset],
           max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> list[EndpointSlice]:
    """The EndpointSlices the mirroring controller would write for these Endpoints."""
    desired: dict[tuple[str, frozenset], tuple[tuple[EndpointsPort, ...], dict[Endpoint, None]]] = {}
    for subset in repack(subsets):
        ports_key = frozenset(subset.ports)
        added = 0
        for address, ready in [(a, True) for a in subset.addresses] + \
                              [(a, False) for a in subset.not_ready_addresses]:
            if added >= max_per_subset:
                break
            endpoint = Endpoint(addresses=(address.ip,), ready=ready, node_name=address.node_name)
            _, endpoints = desired.setdefault((family_of(address.ip), ports_key), (subset.ports, {}))
            endpoints.setdefault(endpoint, None)
            added += 1

    slice_labels = {**labels, SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MIRRORING_CONTROLLER}
    slices = []
    for (family, _), (ports, endpoints) in desired.items():
        slices.append(EndpointSlice(
            namespace=namespace,
            name=mirror_slice_name(name, len(slices) + 1),
            service_name=name,
            address_type=family,
            endpoints=tuple(endpoints)[:max_per_subset],
            ports=tuple(EndpointPort(name=p.name, port=p.port, protocol=p.protocol) for p in ports),
            labels=dict(slice_labels),
        ))
    return slices


def mirror_slice_name(endpoints_name: str, n: int) -> str:
    """``<name>-mirror-<n>``, the name shortened if needed to stay a DNS-1123 subdomain."""
    suffix = f"-mirror-{n}"
    base = endpoints_name[: names.DNS1123_SUBDOMAIN_MAX - len(suffix)].rstrip(".-")
    return base + suffix
