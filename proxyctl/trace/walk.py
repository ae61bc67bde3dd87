"""The simulator: a packet walks the netfilter hooks in kernel order, every branch followed.

Hooks (first packet of a connection, so every nat chain is consulted):

    from outside:  raw, mangle, nat PREROUTING → route → local: mangle, filter, nat INPUT
                                                       └ else:  mangle, filter FORWARD → mangle, nat POSTROUTING
    from the node: raw, mangle, nat, filter OUTPUT → mangle, nat POSTROUTING → (local dst) mangle, filter, nat INPUT

A packet is from the node when its source is one of the node's addresses. Within a chain, rules
are tried in order; ``-j`` pushes a frame, ``-g`` replaces the current one, RETURN or the end of a
user chain pops, the end of a built-in chain applies its policy (``-`` counts as ACCEPT). A
statistic match splits the branch in two with their probabilities. ACCEPT ends the table's
traversal of this hook; DNAT/SNAT/MASQUERADE/REDIRECT end the nat chain; DROP and REJECT end the
packet. Big chains (KUBE-SERVICES holds a rule per service) are indexed by destination address so
a trace never scans every rule.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from proxyctl.rules.iptables.model import Chain, Rule, Ruleset
from proxyctl.rules.iptables.render import render_rule_text
from proxyctl.trace.matches import Context, PacketState, Unknown, evaluate
from proxyctl.trace.packet import Packet
from proxyctl.trace.result import Outcome, Step, TraceResult, Unevaluated

ARRIVING = (("raw", "PREROUTING"), ("mangle", "PREROUTING"), ("nat", "PREROUTING"))
INPUT = (("mangle", "INPUT"), ("filter", "INPUT"), ("nat", "INPUT"))
FORWARD = (("mangle", "FORWARD"), ("filter", "FORWARD"))
POSTROUTING = (("mangle", "POSTROUTING"), ("nat", "POSTROUTING"))
LOCAL_OUT = (("raw", "OUTPUT"), ("mangle", "OUTPUT"), ("nat", "OUTPUT"), ("filter", "OUTPUT"))
NO_OP_TARGETS = frozenset({"LOG", "NFLOG", "TRACE", "NOTRACK", "CT", "AUDIT", "ULOG", "NFQUEUE-BYPASS"})
INDEX_THRESHOLD = 8


@dataclass
class Branch:
    """One way the packet can go, with its probability and history."""

    prob: float
    st: PacketState
    path: tuple = ()  # raw entries, see _resolve
    destination: tuple[str, int | None] | None = None
    masquerade: bool = False
    snat: str | None = None
    accepted_by_rule: bool = False
    order: tuple[int, ...] = ()  # the choices that led here: outcomes are reported in rule order

    def fork(self, prob: float) -> Branch:
        return Branch(prob, self.st.copy(), self.path, self.destination, self.masquerade, self.snat,
                      self.accepted_by_rule, self.order)


@dataclass
class _ChainIndex:
    """For a long chain: rule positions by the host address they match with ``-d``, else by the
    ``--dport`` they match; rules with neither are candidates for every packet."""

    by_dst: dict[str, list[int]]
    by_dport: dict[str, list[int]]
    rest: list[int]

    def candidates(self, dst: str, dport: int | None) -> list[int]:
        keyed = self.by_dst.get(dst, [])
        ported = self.by_dport.get(str(dport), []) if dport is not None else []
        if not keyed and not ported:
            return self.rest
        return sorted(keyed + ported + self.rest)


def _dport_key(rule: Rule) -> str | None:
    for o in rule.matches:
        if o.flag == "--dport" and not o.negated and o.value and o.value.isdigit():
            return o.value
    return None


def _host_key(rule: Rule) -> str | None:
    for o in rule.matches:
        if o.flag in ("-d", "--destination", "--dst") and not o.negated and o.value:
            v = o.value
            if v.endswith("/32") or v.endswith("/128"):
                v = v.rsplit("/", 1)[0]
            elif "/" in v:
                return None
            try:
                return str(ipaddress.ip_address(v))
            except ValueError:
                return None
    return None


@dataclass
class Tracer:
    """Traces packets through one ruleset; reuse it for many packets (chain indexes are kept)."""

    ruleset: Ruleset
    ctx: Context
    lines: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (table, chain) → dump line per rule
    mark_masq_suffix: str = "MARK-MASQ"
    source_line: Callable[[int], str | None] | None = None  # a dump's own text of a line, when traced from one
    _indexes: dict[tuple[str, str], _ChainIndex | None] = field(default_factory=dict)

    # -- public ---------------------------------------------------------------------------------
    def trace(self, packet: Packet) -> TraceResult:
        result = TraceResult(packet)
        self._result, self._seen, self._finished = result, set(), []
        local = self.ctx.is_local(packet.src)
        st = PacketState(packet.src, packet.dst, packet.protocol, packet.sport, packet.dport, packet.mark,
                         in_interface=None if local else packet.in_interface, local_origin=local)
        branches = [Branch(1.0, st)]
        first = LOCAL_OUT if local else ARRIVING
        live = self._hooks(branches, first, result)
        done: list[Branch] = []
        for b in live:
            if local:
                tail = POSTROUTING + (INPUT if self.ctx.is_local(b.st.dst) else ())
            else:
                tail = INPUT if self.ctx.is_local(b.st.dst) else FORWARD + POSTROUTING
            done.extend(self._hooks([b], tail, result))
        for b in done:
            self._finish(b, "ACCEPT", result)
        self._finished.sort(key=lambda pair: pair[0])
        result.outcomes = [o for _, o in self._finished]
        return result

    # -- hooks and chains -----------------------------------------------------------------------
    def _hooks(self, branches: list[Branch], hooks, result: TraceResult) -> list[Branch]:
        for table, hook in hooks:
            nxt: list[Branch] = []
            for b in branches:
                b.st.hook = hook
                if hook in ("FORWARD", "POSTROUTING", "OUTPUT") and b.st.out_interface is None:
                    b.st.out_interface = self._egress(b.st.dst)
                chain = self._chain(table, hook)
                if chain is None:
                    nxt.append(b)
                    continue
                for nb, verdict in self._walk(table, chain, b, top=True):
                    if verdict in ("DROP", "REJECT"):
                        self._finish(nb, verdict, result, by_rule=True)
                    elif verdict == "POLICY-DROP":
                        self._finish(nb, "DROP", result, by_rule=False)
                    else:
                        nxt.append(nb)
            branches = nxt
        return branches

    def _chain(self, table: str, name: str) -> Chain | None:
        t = self.ruleset.tables.get(table)
        return t.chains.get(name) if t else None

    def _walk(self, table: str, chain: Chain, b: Branch, top: bool = False, depth: int = 0):
        """Yield (branch, verdict) for every way out of ``chain``; verdict None means it fell through
        (RETURN, end of a user chain), "ACCEPT" ends the table for this hook."""
        if depth > 64:
            raise RecursionError(f"chain {chain.name} nests more than 64 deep (a loop?)")
        pending = [(b, 0)]
        while pending:
            br, pos = pending.pop()
            for idx in self._order(table, chain, br.st.dst, br.st.dport):
                if idx < pos:
                    continue
                rule = chain.rules[idx]
                try:
                    p = evaluate(rule, br.st, self.ctx)
                except Unknown as e:
                    self._unknown(table, chain.name, idx, rule, str(e))
                    continue
                if p <= 0.0:
                    continue
                if p < 1.0:
                    rest = br.fork(br.prob * (1.0 - p))
                    rest.order = br.order + (1,)
                    br.order = br.order + (0,)
                    pending.append((rest, idx + 1))
                    br.prob *= p
                br.path = br.path + ((table, chain.name, idx, rule, p),)
                outcome = self._target(table, chain, idx, rule, br, depth)
                if outcome is _CONTINUE:
                    continue
                if isinstance(outcome, list):  # a jump: each way out of the sub-chain
                    cont = []
                    for nb, verdict in outcome:
                        if verdict is None:
                            cont.append(nb)
                        else:
                            yield nb, verdict
                    if rule.goto:  # -g: the caller's RETURN is ours
                        for nb in cont:
                            yield nb, None
                    else:
                        for nb in cont:
                            pending.append((nb, idx + 1))
                    break
                yield br, outcome
                break
            else:
                if top:
                    policy = chain.policy or "ACCEPT"
                    if chain.rules or policy != "ACCEPT":  # an empty ACCEPT chain says nothing worth a step
                        br.path = br.path + ((table, chain.name, -1, policy, 1.0),)
                    yield br, ("ACCEPT" if policy == "ACCEPT" else "POLICY-DROP")
                else:
                    yield br, None

    def _order(self, table: str, chain: Chain, dst: str, dport: int | None) -> list[int] | range:
        if len(chain.rules) < INDEX_THRESHOLD:
            return range(len(chain.rules))
        key = (table, chain.name)
        idx = self._indexes.get(key)
        if idx is None:
            by_dst: dict[str, list[int]] = defaultdict(list)
            by_dport: dict[str, list[int]] = defaultdict(list)
            rest: list[int] = []
            for i, r in enumerate(chain.rules):
                k = _host_key(r)
                if k:
                    by_dst[k].append(i)
                    continue
                p = _dport_key(r)
                (by_dport[p] if p else rest).append(i)
            idx = self._indexes[key] = _ChainIndex(dict(by_dst), dict(by_dport), rest)
        return idx.candidates(dst, dport)

    # -- targets --------------------------------------------------------------------------------
    def _target(self, table: str, chain: Chain, idx: int, rule: Rule, br: Branch, depth: int):
        t = rule.target
        if t is None:
            return _CONTINUE
        st = br.st
        if t in ("ACCEPT", "DROP", "REJECT"):
            if t == "ACCEPT" and table == "filter":
                br.accepted_by_rule = True
            return t
        if t == "RETURN":
            return None
        if t == "DNAT":
            ip, port = _split_hostport(_topt(rule, "--to-destination"), st.dport)
            st.dst, st.dport, st.dnat = ip, port, True
            br.destination = (ip, port)
            return "ACCEPT"
        if t == "REDIRECT":
            to = _topt(rule, "--to-ports")
            st.dst = "127.0.0.1" if st.local_origin and ":" not in st.dst else self._ingress_address(st)
            st.dport = int(to.split("-")[0]) if to else st.dport
            st.dnat = True
            br.destination = (st.dst, st.dport)
            return "ACCEPT"
        if t == "SNAT":
            ip, port = _split_hostport(_topt(rule, "--to-source"), st.sport)
            st.src, st.sport, st.snat = ip, port or st.sport, True
            br.snat = ip
            return "ACCEPT"
        if t == "MASQUERADE":
            src = self._egress_address(st.dst)
            st.src, st.snat = src, True
            br.snat = src
            return "ACCEPT"
        if t == "MARK":
            st.mark = _apply_mark(st.mark, rule)
            return _CONTINUE
        if t in NO_OP_TARGETS:
            return _CONTINUE
        sub = self._chain(table, t)
        if sub is not None:
            if t.endswith(self.mark_masq_suffix):
                br.masquerade = True
            return list(self._walk(table, sub, br, depth=depth + 1))
        self._unknown(table, chain.name, idx, rule, f"target {t} is not modelled; the packet is assumed to go on")
        return _CONTINUE

    # -- helpers --------------------------------------------------------------------------------
    def _finish(self, b: Branch, verdict: str, result: TraceResult, by_rule: bool | None = None) -> None:
        decided = ("rule" if by_rule else "policy") if by_rule is not None else (
            "rule" if b.accepted_by_rule else "policy")
        self._finished.append((b.order, Outcome(b.prob, verdict, decided, b.destination, b.masquerade, b.snat,
                                                b.path, self._resolve)))

    def _resolve(self, raw: tuple) -> Step:
        """A path entry (table, chain, index, rule or policy, probability) as a Step."""
        table, chain, idx, rule, p = raw
        if idx < 0:
            return Step(table, chain, 0, f"policy {rule}", None, "policy")
        line, text = self._located(table, chain, idx, rule)
        return Step(table, chain, idx + 1, text, line, f"p={p:.4g}" if p < 1.0 else "")

    def _located(self, table: str, chain: str, idx: int, rule: Rule) -> tuple[int | None, str]:
        lines = self.lines.get((table, chain))
        line = lines[idx] if lines and idx < len(lines) else None
        text = self.source_line(line) if (line is not None and self.source_line is not None) else None
        return line, text or render_rule_text(rule, chain)

    def _unknown(self, table: str, chain: str, idx: int, rule: Rule, reason: str) -> None:
        key = (table, chain, idx)
        if key in self._seen:
            return
        self._seen.add(key)
        line, text = self._located(table, chain, idx, rule)
        self._result.unevaluated.append(Unevaluated(table, chain, idx + 1, text, reason, line))

    def _egress(self, dst: str) -> str | None:
        """The interface a packet to ``dst`` leaves by, when the node's addresses tell."""
        if self.ctx.is_local(dst):
            return "lo"
        addr = _ip(dst)
        for iface, itf in self.ctx.networks():
            if iface != "lo" and itf.ip.version == addr.version and addr in itf.network:
                return iface
        return None

    def _egress_address(self, dst: str) -> str:
        """The source MASQUERADE picks: the node's address on the way to ``dst``."""
        addr = _ip(dst)
        for iface, itf in self.ctx.networks():
            if iface != "lo" and itf.ip.version == addr.version and addr in itf.network:
                return str(itf.ip)
        family = "IPv6" if addr.version == 6 else "IPv4"
        ip = self.ctx.facts.node_ip(family)
        if ip:
            return ip
        ips = [i for i in self.ctx.facts.local_ips(family) if not ipaddress.ip_address(i).is_loopback]
        return ips[0] if ips else ("::1" if addr.version == 6 else "127.0.0.1")

    def _ingress_address(self, st: PacketState) -> str:
        family = "IPv6" if ":" in st.dst else "IPv4"
        return self.ctx.facts.node_ip(family) or st.dst


_CONTINUE = object()


@lru_cache(maxsize=65536)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def _topt(rule: Rule, flag: str) -> str:
    for o in rule.target_opts:
        if o.flag == flag and o.value:
            return o.value
    return ""


def _split_hostport(text: str, default_port: int | None) -> tuple[str, int | None]:
    text = text.split(" ")[0]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    host = host.split("-")[0]
    return host, (int(port.split("-")[0]) if port else default_port)


def _apply_mark(mark: int, rule: Rule) -> int:
    for o in rule.target_opts:
        v = o.value or "0"
        value, _, mask = v.partition("/")
        n = int(value, 0)
        if o.flag == "--set-xmark":
            m = int(mask, 0) if mask else 0xFFFFFFFF
            mark = (mark & ~m & 0xFFFFFFFF) ^ n
        elif o.flag == "--set-mark":
            m = int(mask, 0) if mask else 0xFFFFFFFF
            mark = (mark & ~m & 0xFFFFFFFF) | n
        elif o.flag == "--or-mark":
            mark |= n
        elif o.flag == "--xor-mark":
            mark ^= n
        elif o.flag == "--and-mark":
            mark &= n
    return mark
