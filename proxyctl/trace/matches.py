"""Evaluating one rule's match options against the packet being traced.

Each option gives MATCH, NO_MATCH, a probability (the statistic match: the trace follows both
branches) or UNKNOWN with a reason (something the ruleset alone cannot tell, such as an input
interface nobody named). A rule with any NO_MATCH does not match; otherwise UNKNOWN is reported
and the rule is taken as not matching; otherwise the probabilities multiply.
"""

from __future__ import annotations

import ipaddress
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

    def is_local(self, ip: str) -> bool:
        v = self._local_cache.get(ip)
        if v is None:
            v = self._local_cache[ip] = self.facts.is_local(ip)
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
    if recent_check(rule, ctx) == NO_MATCH:
        return NO_MATCH
    prob = 1.0
    unknown: str | None = None
    module = ""
    proto = None
    for o in rule.matches:
        flag = o.flag
        if flag == "-m" or flag == "--match":
            module = o.value or ""
            continue
        flag = CORE_ALIASES.get(flag, flag)
        value = o.value or ""
        try:
            if flag == "-p":
                proto = PROTO_NUMBERS.get(value, value.lower())
                ok = proto == "all" or proto == st.protocol or (proto == "icmp6" and st.protocol == "icmpv6")
            elif flag == "-s":
                ok = _in(st.src, value)
            elif flag == "-d":
                ok = _in(st.dst, value)
            elif flag == "-i":
                ok = False if st.hook in ("OUTPUT", "POSTROUTING") else _iface_match(st.in_interface, value)
            elif flag == "-o":
                ok = False if st.hook in ("PREROUTING", "INPUT") else _iface_match(st.out_interface, value)
            elif flag == "-f":
                ok = False  # a first packet is never a non-first fragment
            else:  # a module's option: a probability with its negation applied
                prob *= _module_option(module, proto, OPTION_ALIASES.get(flag, flag), value, o.negated, st, ctx)
                if prob == NO_MATCH:
                    return NO_MATCH
                continue
        except Unknown as e:
            unknown = unknown or f"{module or 'core'} {flag}: {e}"
            continue
        if ok == o.negated:
            return NO_MATCH
    if unknown is not None:
        raise Unknown(unknown)
    return prob


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
