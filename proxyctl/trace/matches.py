"""Evaluating one rule's match options against the packet being traced.

Each option gives MATCH, NO_MATCH, a probability (the statistic match: the trace follows both
branches) or UNKNOWN with a reason (something the ruleset alone cannot tell, such as an input
interface nobody named). A rule with any NO_MATCH does not match; otherwise UNKNOWN is reported
and the rule is taken as not matching; otherwise the probabilities multiply.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from proxyctl.node.facts import NodeFacts
from proxyctl.rules.iptables.canonical import CORE_ALIASES, OPTION_ALIASES
from proxyctl.rules.iptables.model import Rule

NO_MATCH = 0.0
MATCH = 1.0
PROTO_NUMBERS = {"6": "tcp", "17": "udp", "132": "sctp", "1": "icmp", "58": "icmpv6", "ipv6-icmp": "icmpv6"}


class Unknown(Exception):
    """The rule's outcome depends on something the trace does not know."""


@dataclass
class PacketState:
    """The packet as one branch of the trace sees it at a rule."""

    src: str
    dst: str
    protocol: str
    sport: int
    dport: int | None
    mark: int = 0
    dnat: bool = False
    snat: bool = False
    in_interface: str | None = None
    out_interface: str | None = None
    local_origin: bool = False
    hook: str = "PREROUTING"

    def copy(self) -> PacketState:
        return PacketState(self.src, self.dst, self.protocol, self.sport, self.dport, self.mark, self.dnat,
                           self.snat, self.in_interface, self.out_interface, self.local_origin, self.hook)


@dataclass
class Context:
    """What the trace knows beyond the packet: the node, ipsets, affinity history."""

    facts: NodeFacts
    ipsets: dict[str, set[str]] = field(default_factory=dict)
    recent_hits: frozenset[str] = frozenset()  # `recent` lists that already hold this client
    _local_cache: dict[str, bool] = field(default_factory=dict)
    _networks: list | None = None
    compiled: dict[int, tuple] = field(default_factory=dict)  # id(rule) → its checks
    keep: list = field(default_factory=list)

    def networks(self) -> list:
        """The node's (interface, address-with-prefix) pairs, parsed once."""
        if self._networks is None:
            self._networks = self.facts.interface_networks()
        return self._networks

    def is_local(self, ip: str) -> bool:
        """NodeFacts.is_local, over addresses parsed once."""
        v = self._local_cache.get(ip)
        if v is None:
            addr = _address(ip)
            v = any(itf.ip.version == addr.version and (addr in itf.network if iface == "lo" else addr == itf.ip)
                    for iface, itf in self.networks())
            self._local_cache[ip] = v
        return v


@lru_cache(maxsize=65536)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


@lru_cache(maxsize=65536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def _in(ip: str, spec: str) -> bool:
    addr = _address(ip)
    if "/" not in spec:
        try:
            return addr == _address(spec)
        except ValueError:
            raise Unknown(f"address {spec!r} is a name iptables would resolve") from None
    net = _network(spec)
    return addr.version == net.version and addr in net


def _port_in(port: int | None, spec: str) -> bool:
    if port is None:
        raise Unknown("the packet has no port")
    for part in spec.split(","):
        lo, sep, hi = part.partition(":")
        lo_n = int(lo) if lo else 0
        hi_n = (int(hi) if hi else 65535) if sep else lo_n
        if lo_n <= port <= hi_n:
            return True
    return False


def _iface_match(name: str | None, spec: str) -> bool:
    if name is None:
        raise Unknown("the interface is not known (name it with --in-interface)")
    if spec.endswith("+"):
        return name.startswith(spec[:-1])
    return name == spec


def _mark_match(mark: int, spec: str) -> bool:
    value, _, mask = spec.partition("/")
    m = int(mask, 0) if mask else 0xFFFFFFFF
    return (mark & m) == int(value, 0)


def _addr_types(ip: str, ctx: Context) -> set[str]:
    addr = _address(ip)
    types = set()
    if ctx.is_local(ip):
        types.add("LOCAL")
    if addr.is_multicast:
        types.add("MULTICAST")
    elif str(addr) == "255.255.255.255":
        types.add("BROADCAST")
    else:
        types.add("UNICAST")
    return types


def _ct_states(st: PacketState) -> set[str]:
    states = {"NEW"}
    if st.dnat:
        states.add("DNAT")
    if st.snat:
        states.add("SNAT")
    return states


def _set_match(spec: str, st: PacketState, ctx: Context) -> bool:
    name, _, flags = spec.partition(" ")
    members = ctx.ipsets.get(name)
    if members is None:
        raise Unknown(f"ipset {name} is not known (give the node's ipsets with the ruleset)")
    parts = []
    for f in flags.split(","):
        if f == "src":
            parts.append(st.src if not parts else f"{st.protocol}:{st.sport}")
        elif f == "dst":
            parts.append(st.dst if not parts else f"{st.protocol}:{st.dport}")
        else:
            raise Unknown(f"ipset flag {f!r}")
    key = ",".join(parts)
    if key in members:
        return True
    # hash:net style members: a CIDR in the first dimension
    first, _, rest = key.partition(",")
    for m in members:
        mf, _, mrest = m.partition(",")
        if "/" in mf and mrest == rest:
            try:
                if _in(first, mf):
                    return True
            except ValueError:
                continue
    return False


def evaluate(rule: Rule, st: PacketState, ctx: Context) -> float:
    """The probability that ``rule`` matches the packet (0, 1, or a statistic's share).

    Raises Unknown when it depends on what the trace cannot know and nothing else rules it out.
    """
    checks = ctx.compiled.get(id(rule))
    if checks is None:
        checks = ctx.compiled[id(rule)] = compile_rule(rule)
        ctx.keep.append(rule)  # ids stay valid only while the rule lives
    prob = 1.0
    unknown: str | None = None
    for check in checks:
        try:
            p = check(st, ctx)
        except Unknown as e:
            unknown = unknown or str(e)
            continue
        if p == NO_MATCH:
            return NO_MATCH
        prob *= p
    if unknown is not None:
        raise Unknown(unknown)
    return prob


Check = Callable[[PacketState, "Context"], float]


def compile_rule(rule: Rule) -> tuple[Check, ...]:
    """A rule's match options as checks, each giving a probability; comments and counters drop out.

    The common options get a check of their own; the rest go through ``_module_option``.
    """
    checks: list[Check] = []
    rc = _recent_check_of(rule)
    if rc is not None:
        checks.append(rc)
    module = ""
    proto: str | None = None
    for o in rule.matches:
        flag = o.flag
        if flag == "-m" or flag == "--match":
            module = o.value or ""
            continue
        if module in ("comment", "nfacct") and flag in ("--comment", "--nfacct-name"):
            continue
        flag = CORE_ALIASES.get(flag, flag)
        value = o.value or ""
        neg = o.negated
        if flag == "-p":
            proto = PROTO_NUMBERS.get(value, value.lower())
            checks.append(_proto_check(proto, neg))
        elif flag in ("-s", "-d"):
            checks.append(_addr_check(flag == "-s", value, neg))
        elif flag in ("-i", "-o"):
            checks.append(_iface_check(flag == "-i", value, neg))
        elif flag == "-f":
            checks.append(lambda st, ctx, neg=neg: _bool(False, neg))
        else:
            flag = OPTION_ALIASES.get(flag, flag)
            if module in ("", "tcp", "udp", "sctp") and flag in ("--dport", "--sport"):
                checks.append(_port_check(module, flag == "--dport", value, neg))
            else:
                checks.append(lambda st, ctx, m=module, pr=proto, f=flag, v=value, n=neg:
                              _module_option(m, pr, f, v, n, st, ctx))
    return tuple(checks)


def _proto_check(proto: str, neg: bool) -> Check:
    def check(st: PacketState, ctx: Context) -> float:
        ok = proto == "all" or proto == st.protocol or (proto == "icmp6" and st.protocol == "icmpv6")
        return MATCH if ok != neg else NO_MATCH
    return check


def _addr_check(source: bool, spec: str, neg: bool) -> Check:
    try:
        net = _network(spec) if "/" in spec else _network(str(_address(spec)))
    except ValueError:
        def unresolved(st: PacketState, ctx: Context) -> float:
            raise Unknown(f"address {spec!r} is a name iptables would resolve")
        return unresolved

    def check(st: PacketState, ctx: Context) -> float:
        addr = _address(st.src if source else st.dst)
        ok = addr.version == net.version and addr in net
        return MATCH if ok != neg else NO_MATCH
    return check


def _iface_check(inbound: bool, spec: str, neg: bool) -> Check:
    never = ("OUTPUT", "POSTROUTING") if inbound else ("PREROUTING", "INPUT")

    def check(st: PacketState, ctx: Context) -> float:
        if st.hook in never:  # no such interface at this hook: the match cannot hold
            return MATCH if neg else NO_MATCH
        return _bool(_iface_match(st.in_interface if inbound else st.out_interface, spec), neg)
    return check


def _port_check(module: str, destination: bool, spec: str, neg: bool) -> Check:
    ranges = []
    for part in spec.split(","):
        lo, sep, hi = part.partition(":")
        lo_n = int(lo) if lo else 0
        ranges.append((lo_n, (int(hi) if hi else 65535) if sep else lo_n))

    def check(st: PacketState, ctx: Context) -> float:
        if module and module != st.protocol:
            return NO_MATCH
        port = st.dport if destination else st.sport
        if port is None:
            raise Unknown("the packet has no port")
        ok = any(lo <= port <= hi for lo, hi in ranges)
        return MATCH if ok != neg else NO_MATCH
    return check


def _module_option(module: str, proto: str | None, flag: str, value: str, negated: bool, st: PacketState,
                   ctx: Context) -> float:
    """Evaluate one module option; returns a probability (negation applied)."""
    if module in ("", "tcp", "udp", "sctp") and flag in ("--dport", "--sport", "--destination-port", "--source-port"):
        if module and module != st.protocol:
            return NO_MATCH
        port = st.dport if flag in ("--dport", "--destination-port") else st.sport
        return _bool(_port_in(port, value), negated)
    if module == "tcp" and flag == "--syn":
        return _bool(st.protocol == "tcp", negated)
    if module == "comment" or module == "nfacct":
        return MATCH
    if module == "multiport":
        if flag == "--dports":
            return _bool(_port_in(st.dport, value), negated)
        if flag == "--sports":
            return _bool(_port_in(st.sport, value), negated)
        if flag == "--ports":
            return _bool(_port_in(st.dport, value) or _port_in(st.sport, value), negated)
    if module == "addrtype" and flag in ("--src-type", "--dst-type"):
        wanted = set(value.split(","))
        unknown_types = wanted - {"LOCAL", "UNICAST", "MULTICAST", "BROADCAST"}
        if unknown_types:
            raise Unknown(f"address type {','.join(sorted(unknown_types))}")
        types = _addr_types(st.src if flag == "--src-type" else st.dst, ctx)
        return _bool(bool(types & wanted), negated)
    if module == "addrtype" and flag in ("--limit-iface-in", "--limit-iface-out"):
        raise Unknown("addrtype limited to an interface")
    if module == "conntrack" and flag == "--ctstate":
        return _bool(bool(_ct_states(st) & set(value.split(","))), negated)
    if module == "state" and flag == "--state":
        return _bool(bool({"NEW"} & set(value.split(","))), negated)
    if module == "mark" and flag == "--mark":
        return _bool(_mark_match(st.mark, value), negated)
    if module == "statistic":
        if flag == "--mode":
            if value not in ("random", "nth"):
                raise Unknown(f"statistic mode {value}")
            return MATCH
        if flag == "--probability":
            p = float(value)
            return 1.0 - p if negated else p
        if flag == "--every":
            p = 1.0 / int(value)  # the nth packet, seen over many connections as a share
            return 1.0 - p if negated else p
        if flag == "--packet":
            return MATCH
    if module == "recent":
        if flag in ("--rcheck", "--update", "--remove"):
            return MATCH  # the list lookup itself is recent_check(), done once per rule
        if flag == "--name":
            return MATCH
        if flag in ("--set", "--seconds", "--reap", "--hitcount", "--rttl", "--mask", "--rsource", "--rdest"):
            return MATCH
    if module == "set" and flag == "--match-set":
        return _bool(_set_match(value, st, ctx), negated)
    if module == "physdev":
        raise Unknown("whether the packet was bridged is not known")
    raise Unknown(f"match {module or '(none)'} {flag} is not modelled")


def _bool(ok: bool, negated: bool) -> float:
    return MATCH if ok != negated else NO_MATCH


def _recent_check_of(rule: Rule) -> Check | None:
    """The list lookup of ``-m recent --rcheck/--update/--remove``, as one check."""
    if not any(o.flag in ("--rcheck", "--update", "--remove") for o in rule.matches):
        return None
    return lambda st, ctx: recent_check(rule, ctx) or NO_MATCH


def recent_check(rule: Rule, ctx: Context) -> float | None:
    """For a rule with ``-m recent --rcheck/--update/--remove``: 1 if the client is in that list
    (an affinity the user asked to model), else 0; None for rules without such a check."""
    checks = False
    name = "DEFAULT"
    negated = False
    for o in rule.matches:
        if o.flag in ("--rcheck", "--update", "--remove"):
            checks = True
            negated = o.negated
        elif o.flag == "--name" and o.value:
            name = o.value
    if not checks:
        return None
    return _bool(name in ctx.recent_hits, negated)
