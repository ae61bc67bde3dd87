"""``trace --live``: real probes, what the pods and conntrack saw, and the static prediction for
the node's live rules, side by side.

A *vantage* says who sends (the client's namespace and source address) and which node's rules
decide (the namespace where the first rule rewrites the packet, where conntrack is read, and
whose ``iptables-save`` the static tracer walks). In a lab it is worked out from names: a pod's
own node, or the node whose address is the destination; an external host's packets for a
LoadBalancer or external IP go to the entry node the router sends them to.

The prediction comes in two parts: the first probe is a new client; every later probe comes
from a client whose first connection went where the first probe went. With session affinity
that changes the prediction (the tracer is told the client is in that endpoint's ``recent``
list); without, both parts are the same and all probes are compared together.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

from proxyctl.dataplane.backend_detect import detect_backend
from proxyctl.dataplane.iptables import Backend, ShellIptables
from proxyctl.errors import InputError
from proxyctl.lab.build import NODE_BRIDGE, UPLINK
from proxyctl.lab.compare import DEFAULT_ALPHA, Comparison, compare
from proxyctl.lab.lab import Lab
from proxyctl.lab.probe import (
    DROP,
    REJECT,
    ConntrackEntry,
    ProbeResult,
    addr_text,
    conntrack_entries,
    match_conntrack,
    run_probes,
)
from proxyctl.lab.topology import Host, Node, Pod, family_of
from proxyctl.node.discover import discover_node_facts
from proxyctl.node.links import read_netlink_view
from proxyctl.node.primary import primary_ips
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.trace.packet import Packet
from proxyctl.trace.result import TraceResult
from proxyctl.trace.session import from_parsed


@dataclass(frozen=True)
class Vantage:
    client: str  # a name for the client (a lab name, or its namespace)
    client_netns: str
    client_ip: str
    node: str
    node_netns: str
    in_interface: str | None  # where the packet enters the node; None when the node itself sends
    backend: Backend | None = None  # None: detected on the node as kube-proxy's wrapper does
    pod_names: dict[str, str] = field(default_factory=dict)  # pod IP → name, for display
    note: str = ""  # something the user should know about this pair (a path the lab does not route)


def lab_vantage(lab: Lab, sender: str, dst: str) -> Vantage:
    topo = lab.topology
    family = family_of(dst)
    who = topo.find(sender)
    client_ip = who.ip(family)
    if ipaddress.ip_address(dst).is_loopback:
        if not isinstance(who, Node):
            raise InputError(f"{dst} is {sender}'s own loopback: only a node's is a NodePort address")
        client_ip = dst  # a connection to a loopback address leaves from it
    if client_ip is None:
        raise InputError(f"{sender} has no {family} address: probe a {family} destination from something that has one")
    dst_node = topo.node_with_ip(dst)
    if isinstance(who, Pod):
        node = dst_node if dst_node is not None and dst_node.name != who.node else topo.node(who.node)
        iface = NODE_BRIDGE if node.name == who.node else UPLINK
    elif isinstance(who, Node):
        node = dst_node if dst_node is not None and dst_node.name != who.name else who
        iface = None if node.name == who.name else UPLINK
    else:
        assert isinstance(who, Host)
        node = dst_node or topo.routed_to(dst) or topo.entry_node
        iface = UPLINK
    note = ""
    if isinstance(who, Host) and dst_node is None and topo.routed_to(dst) is None:
        note = (f"{dst} is neither a node address nor a LoadBalancer or external IP: the lab's router does not "
                f"route it to {node.name}, so {sender}'s probes cannot get there (as outside a real cluster)")
    names = {ip: p.name for p in topo.pods for ip in p.ips}
    return Vantage(sender, lab.netns(sender), client_ip, node.name, lab.netns(node.name), iface, lab.backend, names,
                   note)


def netns_vantage(client_netns: str, node_netns: str, dst: str) -> Vantage:
    """Any two namespaces: the client's primary address of the destination's family is the source."""
    family = family_of(dst)
    view = read_netlink_view(client_netns)
    ip = primary_ips(view.addresses, view.default_routes).get(family)
    if ip is None:
        raise InputError(f"namespace {client_netns} has no global {family} address to probe {dst} from")
    return Vantage(client_netns, client_netns, ip, node_netns, node_netns, None)


@dataclass(frozen=True)
class CategoryView:
    """One place probes went (or were predicted to go), with what the pods saw there."""

    category: str
    pod: str | None
    predicted: float
    predicted_masquerade: bool | None  # None: the prediction never goes there
    observed: int
    masqueraded: int  # probes there whose pod saw another source than the client's
    peers: tuple[str, ...]  # the source addresses the pod saw


@dataclass
class LiveReport:
    vantage: Vantage
    dst: str
    port: int
    protocol: str
    kind: str
    backend: Backend
    probes: list[ProbeResult]
    conntrack: dict[int, ConntrackEntry]
    first: TraceResult  # the prediction for a new client
    later: TraceResult  # the prediction for a client whose first connection went where probe 0 went
    comparison: Comparison
    categories: list[CategoryView]
    disagreements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.disagreements

    def observed(self) -> Counter:
        return Counter(category_of(p, self.conntrack.get(p.index), self.dst, self.port) for p in self.probes)


def category_of(p: ProbeResult, ct: ConntrackEntry | None, dst: str, port: int) -> str:
    """Where a probe ended; a raw SYN that was answered is placed by conntrack."""
    c = p.category
    if c == "ANSWERED":
        return ct.dnat_target if ct is not None else addr_text(dst, port)
    return c


def outcome_category(o, dst: str, port: int | None) -> str:
    if o.verdict == "ACCEPT":
        return o.destination_text() or addr_text(dst, port)
    return REJECT if o.verdict == "REJECT" else DROP


def distribution(result: TraceResult, dst: str, port: int) -> tuple[dict[str, float], dict[str, bool]]:
    """Predicted probability and masquerade decision per category."""
    probs: dict[str, float] = {}
    masq: dict[str, bool] = {}
    for o in result.outcomes:
        c = outcome_category(o, dst, port)
        probs[c] = probs.get(c, 0.0) + o.probability
        masq[c] = masq.get(c, False) or o.masquerade
    return probs, masq


def _affinity_chains(result: TraceResult, category: str, dst: str, port: int) -> frozenset[str]:
    chains = set()
    for o in result.outcomes:
        if outcome_category(o, dst, port) == category:
            chains.update(s.chain for s in o.path if s.chain.startswith("KUBE-SEP-"))
    return frozenset(chains)


class Predictor:
    """The static tracer over the node's live rules (``iptables-save`` in its namespace, parsed)."""

    def __init__(self, vantage: Vantage, family: str):
        self.vantage = vantage
        self.family = family
        ns = vantage.node_netns
        self.backend = vantage.backend or detect_backend(netns=ns).backend
        text = ShellIptables(self.backend, netns=ns, timeout=60.0).save(family)
        self.source = f"{vantage.node} (iptables-{self.backend.value}-save, {family})"
        self.parsed = parse_rules(text, source=self.source, family=family)
        self.facts = discover_node_facts(ns)

    def trace(self, dst: str, port: int, protocol: str, recent: frozenset[str] = frozenset()) -> TraceResult:
        session = from_parsed([self.parsed], self.facts, self.source)
        session.recent_hits = recent
        return session.trace(Packet(self.vantage.client_ip, dst, protocol, 40000, port, self.vantage.in_interface))


def live_trace(vantage: Vantage, dst: str, port: int, protocol: str = "tcp", count: int = 100, *,
               kind: str = "connect", timeout: float = 1.0, alpha: float = DEFAULT_ALPHA,
               workers: int = 8) -> LiveReport:
    dst = str(ipaddress.ip_address(dst))
    protocol = protocol.lower()
    family = family_of(dst)
    predictor = Predictor(vantage, family)
    first = predictor.trace(dst, port, protocol)
    probes = run_probes(vantage.client_netns, dst, port, protocol, count, timeout=timeout, workers=workers,
                        kind=kind, source=vantage.client_ip)
    warnings: list[str] = list(first.warnings) + ([vantage.note] if vantage.note else [])
    try:
        entries = conntrack_entries(vantage.node_netns, family)
    except Exception as e:  # a report without conntrack is still a report
        entries = []
        warnings.append(f"conntrack could not be read in {vantage.node_netns}: {e}")
    ct = match_conntrack(probes, entries, dst, port)
    cats = [category_of(p, ct.get(p.index), dst, port) for p in probes]

    recent = _affinity_chains(first, cats[0], dst, port) if cats else frozenset()
    later = predictor.trace(dst, port, protocol, recent) if recent else first
    p_first, m_first = distribution(first, dst, port)
    p_later, m_later = distribution(later, dst, port)
    disagreements: list[str] = []
    if _same(p_first, p_later):
        comparison = compare(p_first, Counter(cats), alpha)
    else:
        if cats and p_first.get(cats[0], 0.0) <= 0:
            disagreements.append(f"the first probe went to {cats[0]}, which the prediction for a new client rules out")
        comparison = compare(p_later, Counter(cats[1:]), alpha)
    if comparison.unexpected:
        disagreements.append("probes went where the prediction never goes: " + ", ".join(
            f"{c} ({sum(1 for x in cats if x == c)})" for c in comparison.unexpected))
    if not comparison.agrees and not comparison.unexpected:
        disagreements.append(f"the observed distribution differs from the prediction (chi-square p = "
                             f"{comparison.p_value:.2g} <= {alpha:g})")

    masq_pred = {**m_first, **m_later}
    views = _category_views(vantage, probes, ct, cats, p_later if not _same(p_first, p_later) else p_first, masq_pred)
    for v in views:
        if v.predicted_masquerade is None or v.observed == 0 or v.category in (REJECT, DROP, "ERROR"):
            continue
        seen_by = v.masqueraded
        # a node's own connection masqueraded to the address it already had looks unchanged
        undecidable = vantage.in_interface is None and vantage.client_ip in v.peers
        if v.predicted_masquerade and seen_by < v.observed and not undecidable:
            disagreements.append(f"{v.category}: predicted masquerade, but the pod saw the client's own address "
                                 f"in {v.observed - seen_by} of {v.observed} probes")
        if not v.predicted_masquerade and seen_by:
            disagreements.append(f"{v.category}: predicted no masquerade, but the pod saw another source "
                                 f"({', '.join(v.peers)}) in {seen_by} of {v.observed} probes")
    for p in probes:
        e = ct.get(p.index)
        if p.answer is not None and e is not None and e.dnat_target != p.answer.local:
            disagreements.append(f"probe {p.index}: conntrack says {e.dnat_target}, the pod says it accepted on "
                                 f"{p.answer.local}")
            break
    errors = [p for p in probes if p.category == "ERROR"]
    if errors:
        disagreements.append(f"{len(errors)} probes failed: {errors[0].detail}")
    return LiveReport(vantage, dst, port, protocol, kind, predictor.backend, probes, ct, first, later, comparison,
                      views, disagreements, warnings)


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    keys = set(a) | set(b)
    return all(abs(a.get(k, 0.0) - b.get(k, 0.0)) < 1e-9 for k in keys)


def _category_views(vantage: Vantage, probes: list[ProbeResult], ct: dict[int, ConntrackEntry], cats: list[str],
                    predicted: dict[str, float], masq: dict[str, bool]) -> list[CategoryView]:
    order = list(dict.fromkeys([*predicted, *cats]))
    out = []
    for c in order:
        mine = [p for p, cat in zip(probes, cats, strict=True) if cat == c]
        masqueraded = 0
        peers: list[str] = []
        for p in mine:
            entry = ct.get(p.index)
            seen = _seen_source(p, entry)
            if seen is None:
                continue
            if seen not in peers:
                peers.append(seen)
            # An address rewrite is masquerade; conntrack changing only the source port (a port
            # still held by an earlier connection's entry) is not.
            if seen != vantage.client_ip or (entry is not None and entry.reply_dst != entry.orig_src):
                masqueraded += 1
        pod = None
        if c not in (REJECT, DROP, "ERROR"):
            ip = c[1:].partition("]")[0] if c.startswith("[") else c.rpartition(":")[0]
            pod = vantage.pod_names.get(ip) or next((p.answer.pod for p in mine if p.answer), None)
        out.append(CategoryView(c, pod, predicted.get(c, 0.0), masq.get(c) if c in masq else None, len(mine),
                                masqueraded, tuple(peers)))
    return out


def _seen_source(p: ProbeResult, ct: ConntrackEntry | None) -> str | None:
    """The source address the pod saw: its own answer, else conntrack's reply destination."""
    if p.answer is not None:
        return str(ipaddress.ip_address(p.answer.peer_ip))
    if ct is not None:
        return ct.reply_dst
    return None


def report_json(r: LiveReport) -> dict:
    from proxyctl.trace.result import to_json

    c = r.comparison
    return {
        "live": {
            "from": r.vantage.client, "clientNetns": r.vantage.client_netns, "clientIP": r.vantage.client_ip,
            "node": r.vantage.node, "nodeNetns": r.vantage.node_netns, "inInterface": r.vantage.in_interface,
            "backend": r.backend.value, "destination": addr_text(r.dst, r.port), "protocol": r.protocol,
            "probeKind": r.kind, "probes": len(r.probes),
        },
        "categories": [
            {"destination": v.category, "pod": v.pod, "predicted": v.predicted,
             "predictedMasquerade": v.predicted_masquerade, "observed": v.observed, "masqueraded": v.masqueraded,
             "peers": list(v.peers)}
            for v in r.categories
        ],
        "chiSquare": {"statistic": c.statistic if c.statistic != float("inf") else None, "dof": c.dof,
                      "pValue": c.p_value, "alpha": c.alpha, "probesCompared": c.total},
        "agrees": r.agrees,
        "disagreements": list(r.disagreements),
        "warnings": list(r.warnings),
        "probeResults": [
            {"index": p.index, "result": p.result, "destination": category_of(p, r.conntrack.get(p.index), r.dst,
                                                                               r.port),
             "client": addr_text(*p.client) if p.client else None,
             "pod": p.answer.pod if p.answer else None, "peer": p.answer.peer if p.answer else None,
             "conntrackDNAT": r.conntrack[p.index].dnat_target if p.index in r.conntrack else None,
             "conntrackSNAT": r.conntrack[p.index].snat_address if p.index in r.conntrack else None,
             "elapsed": round(p.elapsed, 4), **({"detail": p.detail} if p.detail else {})}
            for p in r.probes
        ],
        "prediction": to_json(r.first),
        **({"predictionAfterFirst": to_json(r.later)} if r.later is not r.first else {}),
    }
