"""The one form the kernel stores a rule in, as ``iptables-save`` prints it back.

``iptables-restore`` accepts many spellings of one rule; the kernel keeps one. kube-proxy writes
``-m comment --comment X -m tcp -p tcp -d 10.96.0.1 --dport 80 -j MARK --or-mark 0x00004000``
and a node prints ``-d 10.96.0.1/32 -p tcp -m comment --comment "X" -m tcp --dport 80 -j MARK
--set-xmark 0x4000/0x4000``. ``canonical_rule`` maps both to the second, so a compiled ruleset and
a dumped one compare with ``==``: core options first (-s -d -i -o -p -f), then each match module
in the order it was loaded with its options in the order its extension prints them (defaults
filled in), then the target with its options spelt as the extension prints them.
Modules we do not know keep their options verbatim, in their written order.
"""

from __future__ import annotations

import re
from functools import lru_cache

from proxyctl.rules.iptables.model import Opt, Rule

CORE_ORDER = ("-s", "-d", "-i", "-o", "-p", "-f")
CORE_ALIASES = {"--source": "-s", "--src": "-s", "--destination": "-d", "--dst": "-d",
                "--in-interface": "-i", "--out-interface": "-o", "--protocol": "-p", "--fragment": "-f"}

# For each known match module, the options it owns in the order its save function prints them.
MODULE_OPTIONS: dict[str, tuple[str, ...]] = {
    "tcp": ("--sport", "--dport", "--tcp-flags", "--syn", "--tcp-option"),
    "udp": ("--sport", "--dport"),
    "sctp": ("--sport", "--dport", "--chunk-types"),
    "icmp": ("--icmp-type",),
    "icmp6": ("--icmpv6-type",),
    "comment": ("--comment",),
    "addrtype": ("--src-type", "--dst-type", "--limit-iface-in", "--limit-iface-out"),
    "conntrack": ("--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst",
                  "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport",
                  "--ctstatus", "--ctexpire", "--ctdir"),
    "state": ("--state",),
    "mark": ("--mark",),
    "statistic": ("--mode", "--probability", "--every", "--packet"),
    "recent": ("--set", "--rcheck", "--update", "--remove", "--seconds", "--reap", "--hitcount",
               "--rttl", "--name", "--mask", "--rsource", "--rdest"),
    "nfacct": ("--nfacct-name",),
    "multiport": ("--sports", "--dports", "--ports"),
    "set": ("--match-set", "--return-nomatch", "--update-counters", "--update-subcounters",
            "--packets-eq", "--packets-lt", "--packets-gt", "--bytes-eq", "--bytes-lt", "--bytes-gt"),
    "physdev": ("--physdev-in", "--physdev-is-in", "--physdev-out", "--physdev-is-out", "--physdev-is-bridged"),
    "ipvs": ("--ipvs", "--vproto", "--vaddr", "--vport", "--vdir", "--vmethod", "--vportctl"),
    "socket": ("--transparent", "--nowildcard", "--restore-skmark"),
    "iprange": ("--src-range", "--dst-range"),
    "limit": ("--limit", "--limit-burst"),
    "owner": ("--uid-owner", "--gid-owner", "--socket-exists"),
    "pkttype": ("--pkt-type",),
}
OPTION_ALIASES = {"--destination-port": "--dport", "--source-port": "--sport",
                  "--destination-ports": "--dports", "--source-ports": "--sports", "--match-set": "--match-set",
                  "--set-class": "--set-class"}
PROTOCOL_MODULES = ("tcp", "udp", "sctp", "icmp", "icmp6")
_OPTION_MODULE = {flag: mod for mod in PROTOCOL_MODULES for flag in MODULE_OPTIONS[mod]}

HEX_FLAGS = frozenset({"--mark"})
_SENTINEL = "\x00"  # marks a plan probe's values (see _make_plan)


def hex_value(text: str) -> str:
    """``0x00004000`` → ``0x4000``; decimal → hex, as xtables prints marks."""
    try:
        return hex(int(text, 0))
    except ValueError:
        return text


def mark_value(text: str) -> str:
    """``value[/mask]`` as xtables prints it; text that is not numbers is kept as written."""
    value, _, mask = text.partition("/")
    value = hex_value(value)
    if not mask:
        return value
    try:
        if int(mask, 0) == 0xFFFFFFFF:
            return value
    except ValueError:
        return text
    return f"{value}/{hex_value(mask)}"


@lru_cache(maxsize=65536)
def kernel_probability(text: str) -> str:
    """What ``--probability`` reads back as: the kernel keeps round(p × 2^31) as a u32."""
    try:
        p = float(text)
    except ValueError:
        return text
    if not 0.0 <= p <= 1.0:  # nan, inf and out-of-range values are iptables' to reject, not ours to round
        return text
    return f"{round(p * 0x80000000) / 0x80000000:.11f}"


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HOST_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}(/32)?")


def address(text: str, family: str) -> str:
    """An address match as the kernel stores it: always with a prefix length, host bits cleared."""
    m = _HOST_V4.fullmatch(text)  # one IPv4 host, the common case: ~100k distinct ones at 10k services
    if m is not None:
        return text if m.group(1) else text + "/32"
    return _address(text, family)


@lru_cache(maxsize=65536)
def _address(text: str, family: str) -> str:
    import ipaddress

    try:
        if "/" in text:
            addr, _, mask = text.partition("/")
            if mask.isdigit():
                return str(ipaddress.ip_network(text, strict=False))
            # a mask written as an address (255.255.255.0, ffff:ffff::) → prefix length
            bits = int(ipaddress.ip_address(mask))
            width = 32 if "." in mask else 128
            prefix = width - (bits ^ ((1 << width) - 1)).bit_length()
            return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
        ip = ipaddress.ip_address(text)
        return f"{ip}/{ip.max_prefixlen}"
    except ValueError:
        return text  # a host name or something iptables resolves; keep as written


PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "132": "sctp", "58": "ipv6-icmp", "icmpv6": "ipv6-icmp",
                  "47": "gre", "50": "esp", "51": "ah", "33": "dccp", "136": "udplite"}
CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")  # the kernel's bit order
ADDR_TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE", "UNREACHABLE",
              "PROHIBIT", "THROW", "NAT", "XRESOLVE")
RANGE_FLAGS = frozenset({"--sport", "--dport", "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport",
                         "--ctrepldstport", "--ctexpire"})
LIMIT_UNITS = {"second": "sec", "s": "sec", "minute": "min", "m": "min", "h": "hour", "d": "day"}
TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")


def _in_order(value: str, order: tuple[str, ...]) -> str:
    names = value.split(",")
    if not set(names) <= set(order):
        return value
    return ",".join(x for x in order if x in names)


def _tcp_flags(text: str) -> str:
    if text == "ALL":
        return ",".join(TCP_FLAGS)
    return _in_order(text, TCP_FLAGS + ("NONE",)) if text != "NONE" else "NONE"


def _module_opt(module: str, opt: Opt, family: str) -> Opt:
    flag = OPTION_ALIASES.get(opt.flag, opt.flag)
    value = opt.value
    if value is not None and value.startswith(_SENTINEL):  # a plan's probe: keep the marker intact
        return opt if flag == opt.flag else Opt(flag, value, opt.negated)
    if module == "mark" and flag == "--mark" and value is not None:
        value = mark_value(value)
    elif module == "statistic" and flag == "--probability" and value is not None:
        value = kernel_probability(value)
    elif module == "conntrack" and flag in ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst") and value:
        value = address(value, family)
        if value.endswith(("/32", "/128")):
            value = value.rsplit("/", 1)[0]  # conntrack prints a host without its prefix
    elif flag in ("--ctstate", "--state") and value:
        value = _in_order(value, CT_STATES)
    elif module == "addrtype" and flag in ("--src-type", "--dst-type") and value:
        value = _in_order(value, ADDR_TYPES)
    elif flag in RANGE_FLAGS and value and ":" in value:
        lo, _, hi = value.partition(":")
        value = lo if lo == hi else value
    elif module == "limit" and flag == "--limit" and value:
        n, _, unit = value.partition("/")
        value = f"{n}/{LIMIT_UNITS.get(unit, unit)}"
    elif module == "tcp" and flag == "--tcp-flags" and value:
        mask, _, comp = value.partition(" ")
        value = f"{_tcp_flags(mask)} {_tcp_flags(comp)}"
    if flag == opt.flag and value == opt.value:
        return opt
    return Opt(flag, value, opt.negated)


def _recent_defaults(opts: list[Opt], family: str) -> list[Opt]:
    flags = {o.flag for o in opts}
    if "--name" not in flags:
        opts.append(Opt("--name", "DEFAULT"))
    if "--mask" not in flags:
        opts.append(Opt("--mask", "255.255.255.255" if family == "IPv4" else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
    if "--rsource" not in flags and "--rdest" not in flags:
        opts.append(Opt("--rsource"))
    return opts


def _order(module: str, opts: list[Opt]) -> list[Opt]:
    order = MODULE_OPTIONS.get(module)
    if not order:
        return opts
    rank = {f: i for i, f in enumerate(order)}
    return sorted(opts, key=lambda o: rank.get(o.flag, len(rank)))


def _split(rule: Rule, family: str) -> tuple[dict[str, Opt], list[tuple[str, list[Opt]]]]:
    core: dict[str, Opt] = {}
    groups: list[tuple[str, list[Opt]]] = []
    by_name: dict[str, list[Opt]] = {}
    current: list[Opt] | None = None
    current_mod = ""
    proto = None
    for o in rule.matches:
        flag = CORE_ALIASES.get(o.flag, o.flag)
        if flag in CORE_ORDER:
            if flag in ("-s", "-d") and o.value is not None:
                o = Opt(flag, address(o.value, family), o.negated)
                if o.value.endswith("/0") and not o.negated:
                    continue  # matches every address: the kernel keeps no such match
            elif flag == "-p" and o.value is not None:
                o = Opt(flag, PROTOCOL_NAMES.get(o.value.lower(), o.value.lower()), o.negated)
                proto = o.value
            elif flag != o.flag:
                o = Opt(flag, o.value, o.negated)
            core[flag] = o
            continue
        if flag == "-m" or flag == "--match":
            current_mod = o.value or ""
            current = by_name[current_mod] = []  # a module loaded twice is two matches in the kernel
            groups.append((current_mod, current))
            continue
        flag = OPTION_ALIASES.get(flag, flag)
        owner = current_mod
        known = MODULE_OPTIONS.get(current_mod)
        if current is None or (known is not None and flag not in known):
            # An option outside its module: protocol options load the protocol's module implicitly.
            owner = _OPTION_MODULE.get(flag, "") if proto is None else (proto if flag in _OPTION_MODULE else "")
            owner = owner or current_mod
            if owner not in by_name:
                by_name[owner] = []
                groups.append((owner, by_name[owner]))
            by_name[owner].append(_module_opt(owner, o, family))
            continue
        current.append(_module_opt(current_mod, o, family))
    return core, groups


def _canonical_target(rule: Rule, family: str) -> tuple[str | None, tuple[Opt, ...]]:
    target, opts = rule.target, rule.target_opts
    if target == "MARK":
        out = []
        for o in opts:
            if o.flag == "--or-mark" and o.value:
                v = hex_value(o.value)
                out.append(Opt("--set-xmark", f"{v}/{v}"))
            elif o.flag == "--xor-mark" and o.value:
                out.append(Opt("--set-xmark", f"{hex_value(o.value)}/0x0"))
            elif o.flag == "--and-mark" and o.value:
                try:
                    out.append(Opt("--set-xmark", f"0x0/{hex(~int(o.value, 0) & 0xFFFFFFFF)}"))
                except ValueError:
                    out.append(o)
            elif o.flag in ("--set-mark", "--set-xmark") and o.value:
                v, _, m = o.value.partition("/")
                mask = hex_value(m) if m else "0xffffffff"
                out.append(Opt("--set-xmark", f"{hex_value(v)}/{mask}"))
            else:
                out.append(o)
        return target, tuple(out)
    if target == "REJECT" and not any(o.flag == "--reject-with" for o in opts):
        default = "icmp-port-unreachable" if family == "IPv4" else "icmp6-port-unreachable"
        return target, opts + (Opt("--reject-with", default),)
    return target, opts


def matches_everything(flag: str, value: str | None, negated: bool) -> bool:
    """An option the kernel does not keep because it cannot fail: ``-s 0.0.0.0/0``, ``--dport 0:65535``."""
    if negated or value is None:
        return False
    if flag in ("-s", "-d"):
        return value.endswith("/0")
    return flag in ("--sport", "--dport") and value == "0:65535"


def _canonical_matches(rule: Rule, family: str) -> list[Opt]:
    core, groups = _split(rule, family)
    matches: list[Opt] = [core[f] for f in CORE_ORDER if f in core]
    for module, opts in groups:
        if module == "recent":
            opts = _recent_defaults(list(opts), family)
        elif module == "tcp":
            opts = [Opt("--tcp-flags", "FIN,SYN,RST,ACK SYN", o.negated) if o.flag == "--syn" else o for o in opts]
        elif module == "limit" and not any(o.flag == "--limit" for o in opts):
            opts = [Opt("--limit", "3/hour"), *opts]  # libxt_limit's default, printed by iptables-save
        opts = [o for o in opts if not matches_everything(o.flag, o.value, o.negated)]
        if module:
            matches.append(Opt("-m", module))
        matches.extend(_order(module, opts))
    return matches


# -- plans: the canonical shape of a rule depends on its flags, modules and protocol only ----------
# A plan records, for one shape, where each canonical option comes from (an input option, with the
# value transformation its flag needs) or that it is a constant (an implicit module, a default).
# Rules of a known shape are then canonicalised by replaying the plan: ~3x faster, which matters
# when a diff canonicalises 700k rules.

_STRUCTURAL = frozenset({"-m", "--match", "-p", "--protocol"})
_PLANS: dict[tuple, tuple] = {}


def _transform(module: str, flag: str, family: str):
    if flag in ("-s", "-d"):
        return lambda v: address(v, family)
    if (flag in ("--ctstate", "--state") or (module == "addrtype" and flag in ("--src-type", "--dst-type"))
            or flag in RANGE_FLAGS or (module == "limit" and flag == "--limit")
            or (module == "tcp" and flag == "--tcp-flags")
            or (module == "conntrack" and flag in ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst"))):
        return lambda v: _module_opt(module, Opt(flag, v), family).value
    if module == "mark" and flag == "--mark":
        return mark_value
    if module == "statistic" and flag == "--probability":
        return kernel_probability
    return None


def _make_plan(rule: Rule, family: str) -> tuple:
    probe = Rule(tuple(o if o.flag in _STRUCTURAL else Opt(o.flag, None if o.value is None else f"{_SENTINEL}{i}",
                                                           o.negated)
                       for i, o in enumerate(rule.matches)))
    plan = []
    module = ""
    for o in _canonical_matches(probe, family):
        if o.flag in ("-m", "--match"):
            module = o.value or ""
        if o.value is not None and o.value.startswith(_SENTINEL) and o.value[1:].isdigit():
            plan.append((int(o.value[1:]), o.flag, _transform(module, o.flag, family)))
        else:
            src = next((i for i, x in enumerate(rule.matches) if x.flag == o.flag and o.value is None), None)
            plan.append((src, o.flag, None) if src is not None and o.flag not in _STRUCTURAL else (None, o, None))
    return tuple(plan)


def canonical_rule(rule: Rule, family: str = "IPv4") -> Rule:
    """The rule as the kernel keeps it (see the module docstring); counters are dropped."""
    matches = rule.matches
    # The shape: flags, with module loads and protocols whole (they decide the order); negations are
    # copied from the input, so they are not part of it.
    key = (tuple([o if o.flag in _STRUCTURAL else o.flag for o in matches]), family)
    plan = _PLANS.get(key)
    if plan is None:
        if any(o.value and _SENTINEL in o.value for o in matches):  # cannot be planned: take the long way
            return Rule(tuple(_canonical_matches(rule, family)), *_canonical_target(rule, family), rule.goto, None)
        plan = _make_plan(rule, family)
        if len(_PLANS) < 20_000:
            _PLANS[key] = plan
    out = []
    for src, flag, fn in plan:
        if src is None:
            out.append(flag)  # a constant option
            continue
        o = matches[src]
        value = o.value if fn is None or o.value is None else fn(o.value)
        if matches_everything(flag, value, o.negated):
            continue
        out.append(o if (value == o.value and flag == o.flag) else Opt(flag, value, o.negated))
    target, topts = _canonical_target(rule, family)
    return Rule(tuple(out), target, topts, rule.goto, None)
