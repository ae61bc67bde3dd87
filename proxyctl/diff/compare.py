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
from proxyctl.rules.bulk import bulk_allocation
from proxyctl.rules.iptables.canonical import canonical_rule
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Chain, Rule, Ruleset
from proxyctl.rules.iptables.save import save_rule_text

LAST_RULE_MARK = "must be the last rule"
_new_tuple = tuple.__new__  # a Rule without its counters, without namedtuple._replace's overhead
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


class _Side:
    """One side's chain as canonical rules (compared as values; rendered only for a finding), and
    the counters of the live side."""

    def __init__(self, chain: Chain | None, family: str, keep=None, *, as_printed: bool = False):
        self.name = chain.name if chain is not None else ""
        self.rules: list[Rule] = []
        self.counters: list[tuple[int, int] | None] = []
        if chain is None:
            return
        for r in chain.rules:
            if keep is not None and not keep(r):
                continue
            # as_printed: iptables-save's rules are already canonical; only a chain that then
            # differs is canonicalised for real (a rule from elsewhere may be spelt otherwise)
            if not as_printed:
                self.rules.append(canonical_rule(r, family))
            elif r.counters is None:
                self.rules.append(r)
            else:
                self.rules.append(_new_tuple(Rule, (r.matches, r.target, r.target_opts, r.goto, None)))
            self.counters.append(r.counters)

    @property
    def lines(self) -> list[Rule]:
        return self.rules

    def text(self, i: int) -> str:
        return save_rule_text(self.rules[i], self.name)


def _side(chain: Chain | None, family: str) -> _Side:
    return _Side(chain, family)


def compare(desired: Ruleset, live: Ruleset, own: Ownership, *, all_chains: bool = False) -> DiffReport:
    with bulk_allocation():
        return _compare(desired, live, own, all_chains)


def _compare(desired: Ruleset, live: Ruleset, own: Ownership, all_chains: bool) -> DiffReport:
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
            elif (d := _side(dc, fam)).rules == _Side(lc, fam, as_printed=True).rules:
                continue
            elif name in unordered:
                _unordered(add, fam, tname, name, d, _side(lc, fam))
            else:
                _ordered(add, fam, tname, name, d, _side(lc, fam), own.service_of_chain(name, dc.rules)
                         if own.is_service_chain(name) else NODE_WIDE)
    _endpoints(add, desired, live, own)
    return report


def _service_of_rule(rule: Rule) -> str:
    return service_in_comment(rule.comment) or NODE_WIDE


def _jumps(add, fam, table, name, dc, lc, own) -> None:
    def ours(r: Rule) -> bool:
        return bool(r.target) and own.is_ours(r.target)

    d, lv = _Side(dc, fam, ours), _Side(lc, fam, ours)
    dcount, lcount = Counter(d.rules), Counter(lv.rules)
    missing = dcount - lcount
    for i, r in enumerate(d.rules):
        if missing.get(r, 0) > 0:
            missing[r] -= 1
            add(Finding(fam, NODE_WIDE, "missing-jump", table, name, d.text(i)))
    for i, r in enumerate(lv.rules):
        if lcount[r] > dcount.get(r, 0):
            lcount[r] -= 1
            add(Finding(fam, NODE_WIDE, "extra-jump", table, name, lv.text(i), counters=lv.counters[i]))


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
    if d.rules == lv.rules:
        return
    dcount, lcount = Counter(d.rules), Counter(lv.rules)
    if dcount == lcount:
        missing_idx: list[int] = []
        extra_idx: list[int] = []
    else:
        left = dcount - lcount
        missing_idx = []
        for i, r in enumerate(d.rules):
            if left.get(r, 0) > 0:
                left[r] -= 1
                missing_idx.append(i)
        seen: Counter = Counter()
        extra_idx = []
        for i, r in enumerate(lv.rules):
            seen[r] += 1
            if seen[r] > dcount.get(r, 0):
                extra_idx.append(i)
    by_service_missing: dict[str, list[int]] = defaultdict(list)
    for i in missing_idx:
        by_service_missing[_service_of_rule(d.rules[i])].append(i)
    for i in extra_idx:
        svc = _service_of_rule(lv.rules[i])
        if by_service_missing.get(svc):  # the same Service lost one rule and has another: a change
            add(Finding(fam, svc, "changed-rule", table, name, d.text(by_service_missing[svc].pop(0)), lv.text(i),
                        lv.counters[i]))
        else:
            add(Finding(fam, svc, "extra-rule", table, name, lv.text(i), counters=lv.counters[i]))
    for svc, idxs in by_service_missing.items():
        for i in idxs:
            add(Finding(fam, svc, "missing-rule", table, name, d.text(i)))
    tails = [i for i, r in enumerate(lv.rules) if LAST_RULE_MARK in (r.comment or "")]
    if tails and tails[0] < len(lv.rules) - len(tails):
        add(Finding(fam, NODE_WIDE, "order", table, name,
                    "the nodeports rule is not the last rule of the chain: rules after it never match"))


def _ordered(add, fam, table, name, d: _Side, lv: _Side, service: str) -> None:
    if d.rules == lv.rules:
        return
    dl = [d.text(i) for i in range(len(d.rules))]
    ll = [lv.text(i) for i in range(len(lv.rules))]
    udiff = tuple(difflib.unified_diff(dl, ll, f"{table}/{name} (should have)", f"{table}/{name} (has)",
                                       lineterm="", n=2))
    sm = difflib.SequenceMatcher(a=dl, b=ll, autojunk=False)
    first = True
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op == "equal":
            continue
        pairs = min(a1 - a0, b1 - b0) if op == "replace" else 0
        for k in range(pairs):
            add(Finding(fam, service, "changed-rule", table, name, dl[a0 + k], ll[b0 + k],
                        lv.counters[b0 + k], udiff if first else ()))
            first = False
        for k in range(a0 + pairs, a1):
            add(Finding(fam, service, "missing-rule", table, name, dl[k], diff=udiff if first else ()))
            first = False
        for k in range(b0 + pairs, b1):
            add(Finding(fam, service, "extra-rule", table, name, ll[k], counters=lv.counters[k],
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
