"""A discovery.k8s.io EndpointSlice manifest to an :class:`~proxyctl.cluster.objects.EndpointSlice`.

Checks follow the API server's EndpointSlice validation, plus two it does not make:
a port number must be 1..65535 (the API server takes any int32; a port of 0 or null is kept
as None, which kube-proxy skips either way), and an endpoint's ``zone`` must be a valid label
value (it is only ever compared with a Node's zone label, so any other zone can never match).

Conditions are not defaulted: an endpoint without ``conditions`` keeps None for ready, serving
and terminating (see :class:`~proxyctl.cluster.objects.Endpoint` for how kube-proxy reads them).
"""

from __future__ import annotations

from proxyctl.cluster import names
from proxyctl.cluster.ipaddr import family_of
from proxyctl.cluster.manifest_fields import ObjectReader, read_metadata, show
from proxyctl.cluster.objects import (
    SERVICE_NAME_LABEL,
    TOPOLOGY_ZONE_LABEL,
    Endpoint,
    EndpointPort,
    EndpointSlice,
)

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000
MAX_ZONE_HINTS = 8
MAX_NODE_HINTS = 8


def read_endpoint_slice(reader: ObjectReader, obj: dict, *, beta: bool = False) -> EndpointSlice | None:
    """The EndpointSlice in ``obj``, or None when ``reader`` recorded problems.

    ``beta`` reads a discovery.k8s.io/v1beta1 slice, whose zone lives in ``topology``.
    """
    namespace, name, labels = read_metadata(reader, obj, namespaced=True,
                                            name_check=names.is_dns1123_subdomain)
    address_type = reader.string(obj, "addressType", "addressType")
    if not address_type:
        if obj.get("addressType") is None:
            reader.fail("addressType", "is required: use one of IPv4, IPv6, FQDN")
    else:
        reader.one_of(address_type, "addressType", ADDRESS_TYPES, "addressType")
    endpoints = _endpoints(reader, obj, address_type, beta)
    ports = _ports(reader, obj)
    if not reader.ok:
        return None
    return EndpointSlice(
        namespace=namespace,
        name=name,
        service_name=labels.get(SERVICE_NAME_LABEL, ""),
        address_type=address_type,
        endpoints=endpoints,
        ports=ports,
        labels=labels,
    )


def _endpoints(reader: ObjectReader, obj: dict, address_type: str, beta: bool) -> tuple[Endpoint, ...]:
    entries = list(reader.items(obj, "endpoints", "endpoints"))
    if len(entries) > MAX_ENDPOINTS:
        reader.fail("endpoints", f"has {len(entries)} endpoints: at most {MAX_ENDPOINTS}")
        return ()
    out = []
    for _, entry, path in entries:
        addresses = _addresses(reader, entry, f"{path}.addresses", address_type)
        conditions = reader.mapping(entry, "conditions", f"{path}.conditions")
        cpath = f"{path}.conditions"
        ready = reader.boolean(conditions, "ready", f"{cpath}.ready")
        serving = reader.boolean(conditions, "serving", f"{cpath}.serving")
        terminating = reader.boolean(conditions, "terminating", f"{cpath}.terminating")
        node_name = reader.string(entry, "nodeName", f"{path}.nodeName")
        if node_name:
            reader.check_name(node_name, f"{path}.nodeName", names.is_dns1123_subdomain, "nodeName")
        zone = reader.string(entry, "zone", f"{path}.zone")
        if not zone and beta:
            zone = reader.string_map(entry, "topology", f"{path}.topology").get(TOPOLOGY_ZONE_LABEL, "")
        if zone:
            reader.check_name(zone, f"{path}.zone", names.is_label_value, "zone")
        hostname = reader.string(entry, "hostname", f"{path}.hostname")
        if hostname:
            reader.check_name(hostname, f"{path}.hostname", names.is_dns1123_label, "hostname")
        for_zones, for_nodes = _hints(reader, entry, f"{path}.hints")
        out.append(Endpoint(
            addresses=addresses,
            ready=ready,
            serving=serving,
            terminating=terminating,
            node_name=node_name,
            zone=zone,
            hints_for_zones=for_zones,
            hints_for_nodes=for_nodes,
        ))
    return tuple(out)


def _addresses(reader: ObjectReader, entry: dict, path: str, address_type: str) -> tuple[str, ...]:
    texts = list(reader.items(entry, "addresses", path, want="string"))
    if not texts and entry.get("addresses") in (None, []):
        reader.fail(path, "must hold at least 1 address")
    if len(texts) > MAX_ADDRESSES:
        reader.fail(path, f"has {len(texts)} addresses: at most {MAX_ADDRESSES}")
        return ()
    out = []
    for _, text, apath in texts:
        if address_type == "FQDN":
            if _check_fqdn(reader, text, apath):
                out.append(text)
        elif address_type in ("IPv4", "IPv6"):
            ip = reader.ip(text, apath, endpoint=True)
            if ip is not None and family_of(ip) != address_type:
                reader.fail(apath, f"{show(text)} is not an {address_type} address (addressType is "
                                   f"{address_type})")
            elif ip is not None:
                out.append(ip)
    return tuple(out)


def _check_fqdn(reader: ObjectReader, text: str, path: str) -> bool:
    if not reader.check_name(text, path, names.is_dns1123_subdomain, "address"):
        return False
    if "." not in text:
        reader.fail(path, f"address {show(text)} is not a fully qualified domain name (needs at least "
                          "two labels, e.g. 'example.com')")
        return False
    return True


def _hints(reader: ObjectReader, entry: dict, path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    hints = reader.mapping(entry, "hints", path)
    found: dict[str, list[str]] = {}
    for key, check, limit in (("forZones", names.is_label_value, MAX_ZONE_HINTS),
                              ("forNodes", names.is_dns1123_subdomain, MAX_NODE_HINTS)):
        items = list(reader.items(hints, key, f"{path}.{key}"))
        if len(items) > limit:
            reader.fail(f"{path}.{key}", f"has {len(items)} entries: at most {limit}")
        values: list[str] = []
        for _, item, ipath in items:
            value = reader.string(item, "name", f"{ipath}.name")
            if not reader.check_name(value, f"{ipath}.name", check, "name"):
                continue
            if value in values:
                reader.fail(f"{ipath}.name", f"{show(value)} is listed twice")
                continue
            values.append(value)
        found[key] = values
    return tuple(found["forZones"]), tuple(found["forNodes"])


def _ports(reader: ObjectReader, obj: dict) -> tuple[EndpointPort, ...]:
    entries = list(reader.items(obj, "ports", "ports"))
    if len(entries) > MAX_PORTS:
        reader.fail("ports", f"has {len(entries)} ports: at most {MAX_PORTS}")
        return ()
    seen: dict[str, str] = {}
    out = []
    for _, entry, path in entries:
        name = reader.port_name(entry, path, seen, unnamed_unique=True)
        protocol = reader.string(entry, "protocol", f"{path}.protocol") or "TCP"
        reader.one_of(protocol, f"{path}.protocol", PROTOCOLS, "protocol")
        port = reader.integer(entry, "port", f"{path}.port")
        if port is not None and port != 0 and not reader.port(port, f"{path}.port"):
            port = None
        app_protocol = reader.string(entry, "appProtocol", f"{path}.appProtocol")
        if app_protocol:
            reader.check_name(app_protocol, f"{path}.appProtocol", names.is_qualified_name, "appProtocol")
        out.append(EndpointPort(name=name, port=port or None, protocol=protocol))
    return tuple(out)
