"""Where a trace's ruleset comes from (a dump, manifests compiled on the fly, a live node) and
everything known alongside it: node facts, the brain's views for explanations, dump line numbers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from proxyctl.brain.build import build_views
from proxyctl.brain.serviceport import ServicePortView
from proxyctl.errors import InputError
from proxyctl.node.facts import NodeFacts
from proxyctl.rules.iptables.model import Ruleset
from proxyctl.rules.iptables.parse import ParsedRules
from proxyctl.trace.matches import Context
from proxyctl.trace.packet import Packet
from proxyctl.trace.result import TraceResult
from proxyctl.trace.walk import Tracer

KUBE_JUMP_HOOKS = (("nat", "PREROUTING"), ("nat", "OUTPUT"))


@dataclass
class TraceSession:
    """Per family: a ruleset with its tracer; plus the views when the cluster objects are known."""

    facts: NodeFacts
    rulesets: dict[str, ParsedRules]
    views: dict[str, list[ServicePortView]] = field(default_factory=dict)
    recent_hits: frozenset[str] = frozenset()
    warnings: list[str] = field(default_factory=list)
    _tracers: dict[str, Tracer] = field(default_factory=dict)

    def tracer(self, family: str) -> Tracer:
        t = self._tracers.get(family)
        if t is None:
            parsed = self.rulesets.get(family)
            if parsed is None:
                have = ", ".join(sorted(self.rulesets)) or "none"
                raise InputError(f"the ruleset has no {family} tables (it has: {have}); "
                                 f"trace a {'IPv4' if family == 'IPv6' else 'IPv6'} destination or give that dump")
            ctx = Context(self.facts, recent_hits=self.recent_hits)
            t = self._tracers[family] = Tracer(parsed.ruleset, ctx, parsed.lines,
                                               source_line=parsed.source_line if parsed.text else None)
        return t

    def trace(self, packet: Packet) -> TraceResult:
        result = self.tracer(packet.family).trace(packet)
        result.warnings.extend(self.warnings)
        return result


def missing_kube_jumps(rs: Ruleset) -> list[str]:
    """Built-in chains that never jump to a KUBE-SERVICES chain: kube-proxy's jumps are absent."""
    missing = []
    for table, chain in KUBE_JUMP_HOOKS:
        t = rs.tables.get(table)
        c = t.chains.get(chain) if t else None
        if c is None or not any(r.target and r.target.endswith("SERVICES") for r in c.rules):
            missing.append(f"{table} {chain}")
    return missing


def from_parsed(parsed: list[ParsedRules], facts: NodeFacts, source: str) -> TraceSession:
    by_family: dict[str, ParsedRules] = {}
    warnings = []
    for p in parsed:
        if p.ruleset.family in by_family:
            raise InputError(f"{source}: holds two {p.ruleset.family} dumps; give one per family")
        by_family[p.ruleset.family] = p
        gaps = missing_kube_jumps(p.ruleset)
        if gaps and p.ruleset.tables:
            warnings.append(f"{source} ({p.ruleset.family}): no jump to KUBE-SERVICES from {', '.join(gaps)}; "
                            "the ruleset is traced as given")
        for line, what in p.unknown:
            warnings.append(f"{source}:{line}: {what}")
    return TraceSession(facts, by_family, warnings=warnings)


def from_inputs(inputs, rulesets: dict[str, ParsedRules]) -> TraceSession:
    zone = inputs.node.zone if inputs.node else ""
    views = {fam: build_views(inputs.state, fam, inputs.facts.name, zone) for fam in rulesets}
    return TraceSession(inputs.facts, rulesets, views)


def default_source(inputs_config, facts: NodeFacts, family: str) -> str | None:
    """A typical pod address: the first usable host of the cluster CIDR of that family."""
    if inputs_config is None:
        return None
    for cidr in inputs_config.cluster_cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        if (net.version == 6) == (family == "IPv6") and net.num_addresses > 4:
            return str(net.network_address + 2)
    return None
