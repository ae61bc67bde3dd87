"""Why a Service's endpoints are what they are on this node: the usual question behind a REJECT.

Given the brain's views, find the service port a packet is addressed to and say, endpoint by
endpoint, whether it is used and why not (not ready, terminating, on another node with a Local
policy, filtered by topology hints).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyctl.brain.serviceport import EndpointInfo, ServicePortView


@dataclass(frozen=True)
class Destination:
    view: ServicePortView
    kind: str  # "cluster IP" | "external IP" | "load balancer IP" | "node port"


def find_destination(views: list[ServicePortView], dst: str, port: int | None, protocol: str,
                     dst_is_local: bool) -> Destination | None:
    proto = protocol.upper()
    for v in views:
        if v.protocol != proto:
            continue
        if port is None or port == v.port:
            if dst == v.cluster_ip:
                return Destination(v, "cluster IP")
            if dst in v.external_ips:
                return Destination(v, "external IP")
            if dst in v.load_balancer_vips:
                return Destination(v, "load balancer IP")
        if v.node_port and port == v.node_port and dst_is_local:
            return Destination(v, "node port")
    return None


def _state(ep: EndpointInfo) -> str:
    if ep.ready:
        return "ready"
    if ep.serving and ep.terminating:
        return "serving but terminating"
    if ep.terminating:
        return "terminating, not serving"
    return "not ready"


def explain(dest: Destination) -> list[str]:
    """Plain sentences, one per fact."""
    v = dest.view
    sets = v.sets
    lines = [f"{v.name} ({v.protocol}) via its {dest.kind}: internalTrafficPolicy "
             f"{'Local' if v.internal_policy_local else 'Cluster'}, externalTrafficPolicy "
             f"{'Local' if v.external_policy_local else 'Cluster'}"
             + (f", session affinity {v.affinity_timeout}s" if v.session_affinity else "")]
    if not v.endpoints:
        lines.append("it has no endpoints at all (no EndpointSlice names this port): traffic is rejected")
        return lines
    cluster = {e.addr for e in sets.cluster}
    local = {e.addr for e in sets.local}
    if sets.topology_mode:
        lines.append(f"topology hints are in force ({sets.topology_mode}): only endpoints hinted for this node "
                     "or zone serve cluster traffic")
    for ep in v.endpoints:
        where = "on this node" if ep.is_local else (f"on {ep.node_name}" if ep.node_name else "on no named node")
        used = []
        if ep.addr in cluster:
            used.append("cluster traffic")
        if ep.addr in local:
            used.append("local-policy traffic")
        if used:
            lines.append(f"{ep.addr} {where}, {_state(ep)}: serves {' and '.join(used)}")
        else:
            lines.append(f"{ep.addr} {where}, {_state(ep)}: not used ({_why_not(ep, v)})")
    if not sets.has_any:
        lines.append("no endpoint is usable anywhere: traffic is rejected")
    elif v.internal_policy_local and not sets.local and dest.kind == "cluster IP":
        lines.append("internalTrafficPolicy Local and no usable endpoint on this node: traffic is dropped")
    elif v.external_policy_local and not sets.local and dest.kind != "cluster IP":
        lines.append("externalTrafficPolicy Local and no usable endpoint on this node: external traffic is "
                     "dropped (pods and the node itself still reach every endpoint)")
    return lines


def _why_not(ep: EndpointInfo, v: ServicePortView) -> str:
    if not ep.ready and not (ep.serving and ep.terminating):
        return "not ready" if not ep.terminating else "terminating and not serving"
    if not ep.ready:
        return "ready endpoints exist, so terminating ones are not used"
    if v.sets.topology_mode:
        return f"not hinted for this node or zone ({v.sets.topology_mode})"
    return "only local endpoints are used for this traffic policy"
