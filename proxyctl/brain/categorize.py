"""Which endpoints a service port uses on this node (kube-proxy's CategorizeEndpoints).

Ready endpoints are preferred; if none are usable, serving-and-terminating ones are used instead,
independently for the cluster set and the local set. Topology hints narrow the cluster set only
when every ready endpoint carries a hint and one of them is for this node (or its zone).
"""

from __future__ import annotations

from proxyctl.brain.serviceport import EndpointInfo, EndpointSets, ServicePortView

PREFER_SAME_NODE = "PreferSameNode"
PREFER_SAME_ZONE = "PreferSameZone"


def topology_mode(endpoints: tuple[EndpointInfo, ...], node_name: str, zone: str) -> str:
    """The hint mode in force: node hints beat zone hints; any ready endpoint without a hint
    (or no hint for us) means no topology filtering at all."""
    ready = [ep for ep in endpoints if ep.ready]
    if not ready:
        return ""
    if all(ep.node_hints for ep in ready) and any(node_name in ep.node_hints for ep in ready):
        return PREFER_SAME_NODE
    if all(ep.zone_hints for ep in ready) and any(zone in ep.zone_hints for ep in ready):
        return PREFER_SAME_ZONE
    return ""


def _available(ep: EndpointInfo, mode: str, node_name: str, zone: str) -> bool:
    if mode == PREFER_SAME_NODE:
        return node_name in ep.node_hints
    if mode == PREFER_SAME_ZONE:
        return zone in ep.zone_hints
    return True


def categorize(view: ServicePortView, node_name: str, zone: str = "",
               endpoints: tuple[EndpointInfo, ...] | None = None) -> EndpointSets:
    """Categorise ``endpoints`` (default: the view's own) for the view's traffic policies."""
    if endpoints is None:
        endpoints = view.endpoints
    if not endpoints:
        return EndpointSets()
    mode = ""
    cluster: tuple[EndpointInfo, ...] = ()
    has_any = False
    if view.uses_cluster_endpoints:
        mode = topology_mode(endpoints, node_name, zone)
        cluster = tuple(ep for ep in endpoints if ep.ready and _available(ep, mode, node_name, zone))
        if not cluster:
            cluster = tuple(ep for ep in endpoints if ep.serving and ep.terminating)
        has_any = bool(cluster)
    if not view.uses_local_endpoints:
        return EndpointSets(cluster, (), cluster, has_any, mode)

    local_ready = False
    local_terminating = False
    for ep in endpoints:
        if ep.ready:
            has_any = True
            local_ready = local_ready or ep.is_local
        elif ep.serving and ep.terminating:
            has_any = True
            local_terminating = local_terminating or ep.is_local
    local: tuple[EndpointInfo, ...] = ()
    if local_ready:
        local = tuple(ep for ep in endpoints if ep.is_local and ep.ready)
    elif local_terminating:
        local = tuple(ep for ep in endpoints if ep.is_local and ep.serving and ep.terminating)

    if not view.uses_cluster_endpoints:
        return EndpointSets((), local, local, has_any, mode)
    if mode == "" and not local_terminating_only(local_ready, local_terminating):
        # Every ready endpoint is in the cluster set, so it already holds the local ones.
        return EndpointSets(cluster, local, cluster, has_any, mode)
    seen = {ep.addr: ep for ep in cluster}
    for ep in local:
        seen.setdefault(ep.addr, ep)
    union = tuple(seen[k] for k in sorted(seen))
    return EndpointSets(cluster, local, union, has_any, mode)


def local_terminating_only(local_ready: bool, local_terminating: bool) -> bool:
    """True when the local set fell back to serving-terminating endpoints."""
    return not local_ready and local_terminating
