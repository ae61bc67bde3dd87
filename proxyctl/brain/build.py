"""Cluster state → sorted ServicePortViews for one IP family on one node.

Follows kube-proxy's service change tracker (which services count, which of their addresses
belong to the family) and its EndpointSlice cache (which slices feed which port, first address
only, local wins when the same ip:port appears twice).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from proxyctl.brain.categorize import categorize
from proxyctl.brain.serviceport import EndpointInfo, ServicePortName, ServicePortView
from proxyctl.cluster.ipaddr import family_of, parse_cidr_sloppy, parse_ip_sloppy
from proxyctl.cluster.objects import ClusterState, EndpointSlice, Service
from proxyctl.rules.bulk import bulk_allocation

EndpointIndex = dict[ServicePortName, dict[str, EndpointInfo]]
NO_HINTS: frozenset[str] = frozenset()


def build_views(state: ClusterState, family: str, node_name: str, zone: str = "",
                cache: ViewCache | None = None) -> list[ServicePortView]:
    """One view per service port that has a cluster IP of ``family``, sorted by name.

    With a ``cache`` (the daemon keeps one), a Service whose object and EndpointSlices are the
    same objects as last time keeps its views (the same objects, so later steps can tell).
    """
    with bulk_allocation():
        if cache is None:
            return _build_views(state.services, state.endpoint_slices, family, node_name, zone)
        return cache.build(state, family, node_name, zone)


def _build_views(services, slices, family: str, node_name: str, zone: str) -> list[ServicePortView]:
    index = index_endpoints(slices, family, node_name)
    views = []
    for svc in services:
        for view in service_port_views(svc, family):
            bucket = index.get(view.name)
            if bucket:
                eps = tuple(bucket[k] for k in sorted(bucket))
                view = replace(view, endpoints=eps, sets=categorize(view, node_name, zone, eps))
            views.append(view)
    views.sort(key=lambda v: (str(v.name), v.name.protocol))
    return views


class ViewCache:
    """Views per Service, reused while the Service and its slices are the same objects."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple] = {}

    def build(self, state: ClusterState, family: str, node_name: str, zone: str) -> list[ServicePortView]:
        by_service: dict[tuple[str, str], list[EndpointSlice]] = defaultdict(list)
        for sl in state.endpoint_slices:
            by_service[(sl.namespace, sl.service_name)].append(sl)
        fresh: dict[tuple[str, str], tuple] = {}
        views: list[ServicePortView] = []
        for svc in state.services:
            key = (svc.namespace, svc.name)
            slices = by_service.get(key, [])
            e = self._entries.get(key)
            if (e is not None and e[0] is svc and e[2] == (family, node_name, zone) and len(e[1]) == len(slices)
                    and all(a is b for a, b in zip(e[1], slices, strict=True))):
                fresh[key] = e
            else:
                fresh[key] = (svc, tuple(slices), (family, node_name, zone),
                              _build_views((svc,), slices, family, node_name, zone))
            views.extend(fresh[key][3])
        self._entries = fresh
        views.sort(key=lambda v: (str(v.name), v.name.protocol))
        return views


def cluster_ip_of_family(svc: Service, family: str) -> str | None:
    for ip in svc.cluster_ips:
        if ip and ip != "None" and family_of(ip) == family:
            return str(parse_ip_sloppy(ip))
    return None


def _ips_of_family(ips: tuple[str, ...] | list[str], family: str) -> tuple[str, ...]:
    out = []
    for text in ips:
        try:
            ip = parse_ip_sloppy(text)
        except ValueError:
            continue  # kube-proxy drops what it cannot parse
        if family_of(str(ip)) == family:
            out.append(str(ip))
    return tuple(out)


def _cidrs_of_family(ranges: tuple[str, ...], family: str) -> tuple[str, ...]:
    out = []
    for text in ranges:
        try:
            net = parse_cidr_sloppy(text.strip())
        except ValueError:
            continue
        if family_of(str(net)) == family:
            out.append(str(net))
    return tuple(out)


def service_port_views(svc: Service, family: str) -> list[ServicePortView]:
    """Views for a service's ports, endpoints not yet attached; [] for services kube-proxy skips."""
    if svc.headless or svc.type == "ExternalName":
        return []
    cluster_ip = cluster_ip_of_family(svc, family)
    if cluster_ip is None:
        return []
    accessible = svc.type in ("LoadBalancer", "NodePort") or (svc.type == "ClusterIP" and bool(svc.external_ips))
    etp_local = accessible and svc.external_traffic_policy == "Local"
    itp_local = svc.internal_traffic_policy == "Local"
    vips = _ips_of_family([i.ip for i in svc.load_balancer_ingress if i.ip and i.ip_mode != "Proxy"], family)
    hc = svc.health_check_node_port if (svc.type == "LoadBalancer" and etp_local) else 0
    timeout = (svc.session_affinity_timeout or 10800) if svc.session_affinity == "ClientIP" else 0
    views = []
    for p in svc.ports:
        views.append(ServicePortView(
            name=ServicePortName(svc.namespace, svc.name, p.name, p.protocol),
            family=family,
            cluster_ip=cluster_ip,
            port=p.port,
            node_port=p.node_port,
            external_ips=_ips_of_family(svc.external_ips, family),
            load_balancer_vips=vips,
            load_balancer_source_ranges=_cidrs_of_family(svc.load_balancer_source_ranges, family),
            health_check_node_port=hc,
            affinity_timeout=timeout,
            external_policy_local=etp_local,
            internal_policy_local=itp_local,
        ))
    return views


def index_endpoints(slices: tuple[EndpointSlice, ...], family: str, node_name: str) -> EndpointIndex:
    """Endpoints per service port name, deduplicated by ``ip:port`` (a local copy wins)."""
    index: EndpointIndex = defaultdict(dict)
    v4 = family == "IPv4"
    new_endpoint = tuple.__new__  # EndpointInfo is a named tuple: skip its Python-level __new__
    for sl in sorted(slices, key=lambda s: (s.namespace, s.name)):
        if not sl.service_name or sl.address_type != family:
            continue
        for port in sl.ports:
            if port.port is None:
                continue
            spn = ServicePortName(sl.namespace, sl.service_name, port.name, port.protocol)
            bucket = index[spn]
            port_num = port.port
            for ep in sl.endpoints:
                if not ep.addresses:
                    continue
                ip = ep.addresses[0]
                if (":" in ip) == v4:
                    continue
                is_local = bool(ep.node_name) and ep.node_name == node_name
                addr = f"{ip}:{port_num}" if v4 else f"[{ip}]:{port_num}"
                if is_local or addr not in bucket:
                    bucket[addr] = new_endpoint(EndpointInfo, (
                        addr, ip, port_num, ep.ready is None or ep.ready, ep.serving is None or ep.serving,
                        bool(ep.terminating), is_local, ep.node_name,
                        frozenset(ep.hints_for_zones) if ep.hints_for_zones else NO_HINTS,
                        frozenset(ep.hints_for_nodes) if ep.hints_for_nodes else NO_HINTS))
    return index
