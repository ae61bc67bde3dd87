"""Compare the rules a node should have with the rules it has, both as canonical save text.

Both sides are parsed into the same types and canonicalised (``canonical_rule``: ``/32``, option
order, mark spellings, probabilities as the kernel keeps them), then compared per chain:

- per-service chains (SVC/SVL/EXT/FW/SEP) and kube-proxy's own ordered chains: as sequences;
- KUBE-SERVICES, both KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES, KUBE-PROXY-FIREWALL: as unordered
  groups of per-service rules (kube-proxy writes them in map order), the "must be the last rule"
  rule last;
- built-in chains: only the jumps into our chains, whatever foreign rules stand around them.

Chains that are neither kube-proxy's nor ours are ignored (``all_chains`` lists them, without
making a difference).
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from proxyctl.diff.ownership import NODE_WIDE, Ownership, service_in_comment
from proxyctl.rules.iptables.canonical import canonical_rule
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Chain, Rule, Ruleset
from proxyctl.rules.iptables.save import save_rule_text

LAST_RULE_MARK = "must be the last rule"
INFO_KINDS = frozenset({"foreign-chain"})


@dataclass(frozen=True)
class Finding:
    family: str
    service: str  # "ns/name:port", or NODE_WIDE
    kind: str
    table: str = ""
    chain: str = ""
    text: str = ""  # the rule (save form) or what is wrong, in words
    live_text: str = ""  # for a changed rule: what the node has instead
    counters: tuple[int, int] | None = None  # packets, bytes the node's rule matched
    diff: tuple[str, ...] = ()  # unified diff of the chain, desired → live


@dataclass
class DiffReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return any(f.kind not in INFO_KINDS for f in self.findings)

    def by_service(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            out[f.service].append(f)
        return dict(sorted(out.items(), key=lambda kv: (kv[0] == NODE_WIDE, kv[0])))

    def counts(self) -> Counter:
        return Counter(f.kind for f in self.findings)


@dataclass
class _Side:
    """One side's chain as canonical lines (and counters, for the live side)."""

    lines: list[str]
    rules: list[Rule]
    counters: list[tuple[int, int] | None]


def _side(chain: Chain | None, family: str) -> _Side:
    if chain is None:
        return _Side([], [], [])
    rules, lines, counters = [], [], []
    for r in chain.rules:
        c = canonical_rule(r, family)
        rules.append(c)
        lines.append(save_rule_text(c, chain.name))
        counters.append(r.counters)
    return _Side(lines, rules, counters)


def compare(desired: Ruleset, live: Ruleset, own: Ownership, *, all_chains: bool = False) -> DiffReport:
    fam = desired.family
    report = DiffReport()
    add = report.findings.append
    unordered = {own.names.services, own.names.nodeports, own.names.external_services, own.names.proxy_firewall}
    for tname in sorted(set(desired.tables) | set(live.tables)):
        dt, lt = desired.tables.get(tname), live.tables.get(tname)
        dchains = dt.chains if dt else {}
        lchains = lt.chains if lt else {}
        builtins = BUILTIN_CHAINS.get(tname, ())
        for name in sorted(set(dchains) | set(lchains)):
            dc, lc = dchains.get(name), lchains.get(name)
            if name in builtins:
                _jumps(add, fam, tname, name, dc, lc, own)
            elif not own.is_ours(name):
                if all_chains and lc is not None and dc is None:
                    add(Finding(fam, NODE_WIDE, "foreign-chain", tname, name, f"{len(lc.rules)} rules, not ours"))
            elif dc is None:
                _only_live(add, fam, tname, name, lc, own)
            elif lc is None:
                _missing_chain(add, fam, tname, name, dc, own)
            elif name in unordered:
                _unordered(add, fam, tname, name, _side(dc, fam), _side(lc, fam))
            else:
                _ordered(add, fam, tname, name, _side(dc, fam), _side(lc, fam), own.service_of_chain(name, dc.rules)
                         if own.is_service_chain(name) else NODE_WIDE)
    _endpoints(add, desired, live, own)
    return report


def _service_of_rule(rule: Rule) -> str:
    return service_in_comment(rule.comment) or NODE_WIDE


def _jumps(add, fam, table, name, dc, lc, own) -> None:
    def ours(c: Chain | None) -> _Side:
        s = _side(c, fam)
        keep = [i for i, r in enumerate(s.rules) if r.target and own.is_ours(r.target)]
        return _Side([s.lines[i] for i in keep], [s.rules[i] for i in keep], [s.counters[i] for i in keep])

    d, lv = ours(dc), ours(lc)
    dcount, lcount = Counter(d.lines), Counter(lv.lines)
    for line in sorted((dcount - lcount).elements()):
        add(Finding(fam, NODE_WIDE, "missing-jump", table, name, line))
    for i, line in enumerate(lv.lines):
        if lcount[line] > dcount.get(line, 0):
            lcount[line] -= 1
            add(Finding(fam, NODE_WIDE, "extra-jump", table, name, line, counters=lv.counters[i]))


def _only_live(add, fam, table, name, lc: Chain, own: Ownership) -> None:
    if name == own.names.canary:
        return
    service = own.service_of_chain(name, lc.rules)
    kind = "extra-chain" if service in own.chain_service.values() else "stale-chain"
    packets = sum((r.counters or (0, 0))[0] for r in lc.rules)
    nbytes = sum((r.counters or (0, 0))[1] for r in lc.rules)
    add(Finding(fam, service, kind, table, name, f"{len(lc.rules)} rules",
                counters=(packets, nbytes) if any(r.counters for r in lc.rules) else None))


def _missing_chain(add, fam, table, name, dc: Chain, own: Ownership) -> None:
    if name == own.names.canary:
        add(Finding(fam, NODE_WIDE, "missing-chain", table, name,
                    "kube-proxy's canary chain is gone: someone flushed this table"))
        return
    service = own.service_of_chain(name, dc.rules) if own.is_service_chain(name) else NODE_WIDE
    add(Finding(fam, service, "missing-chain", table, name, f"{len(dc.rules)} rules"))


def _unordered(add, fam, table, name, d: _Side, lv: _Side) -> None:
    dcount, lcount = Counter(d.lines), Counter(lv.lines)
    missing = list((dcount - lcount).elements())
    extra = []
    seen: Counter = Counter()
    for i, line in enumerate(lv.lines):
        seen[line] += 1
        if seen[line] > dcount.get(line, 0):
            extra.append((line, lv.counters[i], lv.rules[i]))
    by_service_missing: dict[str, list[str]] = defaultdict(list)
    drules = {line: r for line, r in zip(d.lines, d.rules, strict=True)}
    for line in missing:
        by_service_missing[_service_of_rule(drules[line])].append(line)
    for line, counters, rule in extra:
        svc = _service_of_rule(rule)
        if by_service_missing.get(svc):  # the same Service lost one rule and has another: a change
            add(Finding(fam, svc, "changed-rule", table, name, by_service_missing[svc].pop(0), line, counters))
        else:
            add(Finding(fam, svc, "extra-rule", table, name, line, counters=counters))
    for svc, lines in by_service_missing.items():
        for line in lines:
            add(Finding(fam, svc, "missing-rule", table, name, line))
    tails = [i for i, line in enumerate(lv.lines) if LAST_RULE_MARK in line]
    if tails and tails[0] < len(lv.lines) - len(tails):
        add(Finding(fam, NODE_WIDE, "order", table, name,
                    "the nodeports rule is not the last rule of the chain: rules after it never match"))


def _ordered(add, fam, table, name, d: _Side, lv: _Side, service: str) -> None:
    if d.lines == lv.lines:
        return
    udiff = tuple(difflib.unified_diff(d.lines, lv.lines, f"{table}/{name} (should have)", f"{table}/{name} (has)",
                                       lineterm="", n=2))
    sm = difflib.SequenceMatcher(a=d.lines, b=lv.lines, autojunk=False)
    first = True
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op == "equal":
            continue
        pairs = min(a1 - a0, b1 - b0) if op == "replace" else 0
        for k in range(pairs):
            add(Finding(fam, service, "changed-rule", table, name, d.lines[a0 + k], lv.lines[b0 + k],
                        lv.counters[b0 + k], udiff if first else ()))
            first = False
        for k in range(a0 + pairs, a1):
            add(Finding(fam, service, "missing-rule", table, name, d.lines[k], diff=udiff if first else ()))
            first = False
        for k in range(b0 + pairs, b1):
            add(Finding(fam, service, "extra-rule", table, name, lv.lines[k], counters=lv.counters[k],
                        diff=udiff if first else ()))
            first = False


def _reachable(rs: Ruleset, own: Ownership) -> dict[str, set[str]]:
    """Per Service: the DNAT targets of the endpoint chains its SVC/SVL chains jump to."""
    nat = rs.tables.get("nat")
    out: dict[str, set[str]] = defaultdict(set)
    if nat is None:
        return out
    svc_prefixes = (own.names.prefix + "SVC-", own.names.prefix + "SVL-")
    sep_prefix = own.names.prefix + "SEP-"
    for chain in nat.chains.values():
        if not chain.name.startswith(svc_prefixes):
            continue
        service = own.service_of_chain(chain.name, chain.rules)
        for r in chain.rules:
            if r.target and r.target.startswith(sep_prefix) and r.target in nat.chains:
                for sr in nat.chains[r.target].rules:
                    to = sr.target_get("--to-destination") if sr.target == "DNAT" else None
                    if to and to.value:
                        out[service].add(to.value)
    return out


def _endpoints(add, desired: Ruleset, live: Ruleset, own: Ownership) -> None:
    want, have = _reachable(desired, own), _reachable(live, own)
    for service in sorted(set(want) | set(have)):
        for ep in sorted(have.get(service, set()) - want.get(service, set())):
            add(Finding(desired.family, service, "endpoint-extra", "nat", "",
                        f"{ep} is reachable on the node but is not a usable endpoint in the cluster"))
        for ep in sorted(want.get(service, set()) - have.get(service, set())):
            add(Finding(desired.family, service, "endpoint-missing", "nat", "",
                        f"{ep} is a usable endpoint in the cluster but the node does not send traffic to it"))
