"""Stale conntrack entries: connections to a Service whose DNAT target is no longer an endpoint.

A UDP client keeps sending to a deleted pod for as long as its conntrack entry lives (kubernetes
issues 19029, 48370, 139628). An entry is stale when its original destination is a Service's
IP:port (cluster IP, external IP, load-balancer IP) or one of the node's addresses at a NodePort,
and its reply source is not a serving endpoint of that port. Services without any serving
endpoint are left alone, as kube-proxy's reconciler does (there is nowhere better to go).
"""

from __future__ import annotations

from collections.abc import Callable

from proxyctl.brain.serviceport import ServicePortView
from proxyctl.dataplane.conntrack import CtEntry


def stale_entries(entries: list[CtEntry], views: list[ServicePortView], is_local: Callable[[str], bool],
                  protocol: str | None = "udp") -> list[tuple[str, CtEntry]]:
    """(service port name, entry) for each stale entry, in input order."""
    vips: dict[tuple[str, str, int], ServicePortView] = {}
    node_ports: dict[tuple[str, int], ServicePortView] = {}
    for v in views:
        proto = v.protocol.lower()
        for ip in (v.cluster_ip, *v.external_ips, *v.load_balancer_vips):
            vips[(proto, ip, v.port)] = v
        if v.node_port:
            node_ports[(proto, v.node_port)] = v
    out = []
    for e in entries:
        if protocol is not None and e.protocol != protocol:
            continue
        if e.orig_dport is None:
            continue
        v = vips.get((e.protocol, e.orig_dst, e.orig_dport))
        if v is None and is_local(e.orig_dst):
            v = node_ports.get((e.protocol, e.orig_dport))
        if v is None:
            continue
        serving = {ep.addr for ep in v.endpoints if ep.serving}
        if not serving:
            continue
        if e.dnat_target not in serving:
            out.append((str(v.name), e))
    return out
