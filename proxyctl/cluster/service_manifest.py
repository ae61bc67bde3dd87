"""A v1 Service manifest to a :class:`~proxyctl.cluster.objects.Service`.

Field by field checks follow the API server's Service validation; what kube-proxy never
reads (selector, targetPort's meaning, externalName) is checked only where it is cheap.
Values are not API-defaulted (an absent ``type`` stays ""), except the two defaults every
reader of a Service relies on: a port without ``protocol`` is TCP, and ClientIP affinity
without ``timeoutSeconds`` lasts 10800 seconds.

Cross-field rules of the API server (nodePort only on NodePort/LoadBalancer Services,
healthCheckNodePort only with externalTrafficPolicy Local, ...) are not applied: kube-proxy's
own test objects break some of them, and kube-proxy copes.
"""

from __future__ import annotations

from proxyctl.cluster import names
from proxyctl.cluster.ipaddr import family_of, parse_ip_sloppy
from proxyctl.cluster.manifest_fields import ObjectReader, read_metadata, show
from proxyctl.cluster.objects import LoadBalancerIngress, Service, ServicePortSpec

SERVICE_TYPES = ("", "ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
TRAFFIC_POLICIES = ("", "Cluster", "Local")
SESSION_AFFINITIES = ("", "None", "ClientIP")
TRAFFIC_DISTRIBUTIONS = ("", "PreferClose", "PreferSameZone", "PreferSameNode")
IP_MODES = ("", "VIP", "Proxy")
PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_CLIENT_IP_TIMEOUT = 10800
MAX_CLIENT_IP_TIMEOUT = 86400
CLUSTER_IP_NONE = "None"


def read_service(reader: ObjectReader, obj: dict) -> Service | None:
    """The Service in ``obj``, or None when ``reader`` recorded problems."""
    namespace, name, labels = read_metadata(reader, obj, namespaced=True, name_check=names.is_dns1035_label)
    spec = reader.mapping(obj, "spec", "spec")
    status = reader.mapping(obj, "status", "status")

    svc_type = reader.string(spec, "type", "spec.type")
    reader.one_of(svc_type, "spec.type", SERVICE_TYPES, "type")
    cluster_ips, headless = _cluster_ips(reader, spec)
    ports = _ports(reader, spec)
    external_ips = tuple(
        ip for _, text, path in reader.items(spec, "externalIPs", "spec.externalIPs", want="string")
        if (ip := reader.ip(text, path, endpoint=True)) is not None
    )
    source_ranges = []
    for _, text, path in reader.items(spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges",
                                      want="string"):
        if reader.cidr(text, path, trim=True) is not None:
            source_ranges.append(text)  # as written: kube-proxy trims and canonicalises

    affinity = reader.string(spec, "sessionAffinity", "spec.sessionAffinity")
    reader.one_of(affinity, "spec.sessionAffinity", SESSION_AFFINITIES, "sessionAffinity")
    timeout = _client_ip_timeout(reader, spec)
    if affinity == "ClientIP":
        timeout = timeout or DEFAULT_CLIENT_IP_TIMEOUT
    else:
        timeout = 0

    etp = reader.string(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy")
    reader.one_of(etp, "spec.externalTrafficPolicy", TRAFFIC_POLICIES, "externalTrafficPolicy")
    itp = reader.string(spec, "internalTrafficPolicy", "spec.internalTrafficPolicy")
    reader.one_of(itp, "spec.internalTrafficPolicy", TRAFFIC_POLICIES, "internalTrafficPolicy")
    hc_port = reader.integer(spec, "healthCheckNodePort", "spec.healthCheckNodePort") or 0
    reader.port(hc_port, "spec.healthCheckNodePort", "healthCheckNodePort", allow_zero=True)
    distribution = reader.string(spec, "trafficDistribution", "spec.trafficDistribution")
    reader.one_of(distribution, "spec.trafficDistribution", TRAFFIC_DISTRIBUTIONS, "trafficDistribution")
    ingress = _ingress(reader, status)

    if not reader.ok:
        return None
    return Service(
        namespace=namespace,
        name=name,
        cluster_ips=cluster_ips,
        ports=ports,
        type=svc_type,
        labels=labels,
        external_ips=external_ips,
        load_balancer_ingress=ingress,
        load_balancer_source_ranges=tuple(source_ranges),
        session_affinity=affinity,
        session_affinity_timeout=timeout,
        external_traffic_policy=etp,
        internal_traffic_policy=itp,
        health_check_node_port=hc_port,
        traffic_distribution=distribution,
        headless=headless,
    )


def _cluster_ips(reader: ObjectReader, spec: dict) -> tuple[tuple[str, ...], bool]:
    """(canonical cluster IPs, headless) from spec.clusterIPs, else spec.clusterIP."""
    single = reader.string(spec, "clusterIP", "spec.clusterIP")
    listed = [(text, path) for _, text, path in reader.items(spec, "clusterIPs", "spec.clusterIPs",
                                                            want="string")]
    if not listed and single:
        listed = [(single, "spec.clusterIP")]
    elif listed and single and single != listed[0][0] and not _same_ip(single, listed[0][0]):
        reader.fail("spec.clusterIP", f"{show(single)} must be the same as spec.clusterIPs[0] "
                                      f"({show(listed[0][0])})")
    if len(listed) > 2:
        reader.fail("spec.clusterIPs", f"has {len(listed)} entries: at most 2 (one per IP family)")
    ips: list[str] = []
    headless = False
    for text, path in listed:
        if text == CLUSTER_IP_NONE:
            headless = True
            if len(listed) > 1:
                reader.fail(path, "'None' must be the only cluster IP")
            continue
        ip = reader.ip(text, path)
        if ip is not None:
            ips.append(ip)
    if len(ips) == 2 and family_of(ips[0]) == family_of(ips[1]):
        reader.fail("spec.clusterIPs", f"{ips[0]} and {ips[1]} are both {family_of(ips[0])}: "
                                       "a dual-stack Service has one IPv4 and one IPv6 address")
    return tuple(ips), headless or not ips


def _same_ip(a: str, b: str) -> bool:
    try:
        return parse_ip_sloppy(a) == parse_ip_sloppy(b)
    except ValueError:
        return False


def _ports(reader: ObjectReader, spec: dict) -> tuple[ServicePortSpec, ...]:
    entries = list(reader.items(spec, "ports", "spec.ports"))
    several = len(entries) > 1
    by_name: dict[str, str] = {}
    by_port: dict[tuple[str, int], str] = {}
    by_node_port: dict[tuple[str, int], str] = {}
    out = []
    for _, entry, path in entries:
        name = reader.port_name(entry, path, by_name)
        if not name and several:
            reader.fail(f"{path}.name", "is required when a Service has more than one port")
        protocol = reader.string(entry, "protocol", f"{path}.protocol") or "TCP"
        reader.one_of(protocol, f"{path}.protocol", PROTOCOLS, "protocol")
        port = reader.integer(entry, "port", f"{path}.port")
        if entry.get("port") is None:
            reader.fail(f"{path}.port", "is required")
        elif port is not None and reader.port(port, f"{path}.port"):
            key = (protocol, port)
            if key in by_port:
                reader.fail(f"{path}.port", f"port {port}/{protocol} is already used by {by_port[key]}")
            by_port.setdefault(key, path)
        node_port = reader.integer(entry, "nodePort", f"{path}.nodePort") or 0
        if node_port and reader.port(node_port, f"{path}.nodePort", "nodePort"):
            key = (protocol, node_port)
            if key in by_node_port:
                reader.fail(f"{path}.nodePort",
                            f"nodePort {node_port}/{protocol} is already used by {by_node_port[key]}")
            by_node_port.setdefault(key, path)
        target = _target_port(reader, entry, f"{path}.targetPort")
        if port is not None:
            out.append(ServicePortSpec(name=name, protocol=protocol, port=port, node_port=node_port,
                                       target_port=target))
    return tuple(out)


def _target_port(reader: ObjectReader, entry: dict, path: str) -> str:
    """targetPort as text ("" when unset or 0): a port number or an IANA port name."""
    value = entry.get("targetPort")
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 0:
            return ""  # the API server replaces 0 with the port
        return str(value) if reader.port(value, path, "targetPort") else ""
    if isinstance(value, str):
        return value if reader.check_name(value, path, names.is_port_name, "targetPort") else ""
    reader.fail(path, f"must be a port number or a port name, not {show(value)}")
    return ""


def _client_ip_timeout(reader: ObjectReader, spec: dict) -> int:
    config = reader.mapping(spec, "sessionAffinityConfig", "spec.sessionAffinityConfig")
    client_ip = reader.mapping(config, "clientIP", "spec.sessionAffinityConfig.clientIP")
    path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
    timeout = reader.integer(client_ip, "timeoutSeconds", path)
    if timeout is None:
        return 0
    if not 1 <= timeout <= MAX_CLIENT_IP_TIMEOUT:
        reader.fail(path, f"timeoutSeconds {timeout} is out of range 1..{MAX_CLIENT_IP_TIMEOUT}")
        return 0
    return timeout


def _ingress(reader: ObjectReader, status: dict) -> tuple[LoadBalancerIngress, ...]:
    """status.loadBalancer.ingress entries that have an IP (hostname-only ones are dropped)."""
    lb = reader.mapping(status, "loadBalancer", "status.loadBalancer")
    out = []
    for _, entry, path in reader.items(lb, "ingress", "status.loadBalancer.ingress"):
        ip_text = reader.string(entry, "ip", f"{path}.ip")
        hostname = reader.string(entry, "hostname", f"{path}.hostname")
        if hostname:
            reader.check_name(hostname, f"{path}.hostname", names.is_dns1123_subdomain, "hostname")
        mode = reader.string(entry, "ipMode", f"{path}.ipMode")
        reader.one_of(mode, f"{path}.ipMode", IP_MODES, "ipMode")
        if ip_text:
            ip = reader.ip(ip_text, f"{path}.ip")
            if ip is not None:
                out.append(LoadBalancerIngress(ip=ip, ip_mode=mode))
    return tuple(out)
