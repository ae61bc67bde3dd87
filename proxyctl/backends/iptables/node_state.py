"""What a node's tables hold after kube-proxy's first full sync on an empty node.

Besides the restore payload, kube-proxy ensures jump rules from the built-in chains (each
*prepended*, so the last ensured is first) and its canary chains, outside the payload. The
kubelet-duplicate ``INPUT``/``OUTPUT -j KUBE-FIREWALL`` jumps are ensured last, so they lead.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyctl.backends.iptables.names import KUBELET_FIREWALL, ChainNames
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Opt, Rule, Ruleset

KUBE_NAMES = ChainNames()
NEW = (Opt("-m", "conntrack"), Opt("--ctstate", "NEW"))
CANARY_TABLES = ("mangle", "nat", "filter")
SAVE_TABLE_ORDER = ("mangle", "filter", "nat")


@dataclass(frozen=True)
class JumpRule:
    table: str
    source: str  # the built-in chain
    rule: Rule


def _jump(table: str, source: str, target: str, comment: str, extra: tuple[Opt, ...] = ()) -> JumpRule:
    matches = extra + ((Opt("-m", "comment"), Opt("--comment", comment)) if comment else ())
    return JumpRule(table, source, Rule(matches, target))


def jump_rules(names: ChainNames = KUBE_NAMES) -> list[JumpRule]:
    """kube-proxy's jump rules in the order it ensures them (each with a prepend)."""
    n = names
    portals, ext = "kubernetes service portals", "kubernetes externally-visible service portals"
    fw = "kubernetes load balancer firewall"
    return [
        _jump("filter", "INPUT", n.external_services, ext, NEW),
        _jump("filter", "FORWARD", n.external_services, ext, NEW),
        _jump("filter", "INPUT", n.nodeports, "kubernetes health check service ports"),
        _jump("filter", "FORWARD", n.services, portals, NEW),
        _jump("filter", "OUTPUT", n.services, portals, NEW),
        _jump("filter", "FORWARD", n.forward, "kubernetes forwarding rules"),
        _jump("filter", "INPUT", n.proxy_firewall, fw, NEW),
        _jump("filter", "OUTPUT", n.proxy_firewall, fw, NEW),
        _jump("filter", "FORWARD", n.proxy_firewall, fw, NEW),
        _jump("nat", "OUTPUT", n.services, portals),
        _jump("nat", "PREROUTING", n.services, portals),
        _jump("nat", "POSTROUTING", n.postrouting, "kubernetes postrouting rules"),
    ] + ([
        # Duplicates of kubelet's jumps; kube-proxy creates them but never deletes them.
        _jump("filter", "INPUT", KUBELET_FIREWALL, ""),
        _jump("filter", "OUTPUT", KUBELET_FIREWALL, ""),
    ] if names.stands_in_for_kube_proxy else [])


def after_first_sync(payload: Ruleset, names: ChainNames = KUBE_NAMES) -> Ruleset:
    """The full tables of an empty node after one full sync with ``payload``."""
    rs = Ruleset(family=payload.family)
    for tname in SAVE_TABLE_ORDER:
        t = rs.table(tname)
        for b in BUILTIN_CHAINS[tname]:
            t.chain(b, policy="ACCEPT")
    for tname in CANARY_TABLES:
        rs.table(tname).chain(names.canary)
    for j in jump_rules(names):
        t = rs.table(j.table)
        t.chain(j.rule.target or "")
        t.chain(j.source).rules.insert(0, j.rule)
    for tname, table in payload.tables.items():
        t = rs.table(tname)
        for chain in table.chains.values():
            t.chain(chain.name).rules = list(chain.rules)  # a declared chain is flushed, then filled
        for name in table.deleted:
            t.chains.pop(name, None)
    return rs
