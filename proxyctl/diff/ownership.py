"""Whose is a chain or a rule: kube-proxy's (or ours, under another prefix), and for which Service.

Per-service chains are named by hashes, so the desired side says which Service a chain belongs
to; a chain only the node has (a deleted Service's) is attributed by the service port name its
rules' comments carry (``ns/name:port``), as kube-proxy writes them outside large-cluster mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from proxyctl.backends.iptables.names import KUBELET_FIREWALL, ChainNames, port_proto_hash
from proxyctl.brain.serviceport import ServicePortView
from proxyctl.rules.iptables.model import Rule

NODE_WIDE = ""  # the "service" of rules that belong to no Service (jumps, masquerade, forward)
# A service port name as comments carry it: namespace/name[:port], names being DNS labels.
SPN = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?(:[a-z0-9]([-a-z0-9]*[a-z0-9])?)?)")


@dataclass
class Ownership:
    names: ChainNames
    chain_service: dict[str, str] = field(default_factory=dict)  # per-service chain → "ns/name:port"

    @classmethod
    def from_views(cls, names: ChainNames, views: list[ServicePortView]) -> Ownership:
        own = cls(names)
        for v in views:
            spn = str(v.name)
            h = port_proto_hash(spn, v.protocol)
            for chain in (names.svc(h), names.svl(h), names.ext(h), names.fw(h)):
                own.chain_service[chain] = spn
            for ep in v.endpoints:
                own.chain_service[names.sep(port_proto_hash(spn, v.protocol, ep.addr))] = spn
        return own

    @cached_property
    def top_level(self) -> frozenset[str]:
        n = self.names
        kubelet = {KUBELET_FIREWALL} if n.stands_in_for_kube_proxy else set()  # beside kube-proxy: its business
        return frozenset({n.services, n.external_services, n.nodeports, n.postrouting, n.mark_masq, n.forward,
                          n.proxy_firewall, n.canary} | kubelet)

    def is_service_chain(self, chain: str) -> bool:
        return chain.startswith(self.names.service_prefixes)

    def is_ours(self, chain: str) -> bool:
        return chain in self.top_level or self.is_service_chain(chain)

    def service_of_chain(self, chain: str, rules: list[Rule]) -> str:
        spn = self.chain_service.get(chain)
        if spn:
            return spn
        for r in rules:
            s = service_in_comment(r.comment)
            if s:
                return s
        return f"(unknown service: {chain})"


def service_in_comment(comment: str | None) -> str | None:
    """The service port name a kube-proxy comment is about, if it names one."""
    if not comment:
        return None
    m = SPN.search(comment)
    return m.group(1) if m else None
