"""Reading a legacy-backend node's tables structurally, through python-iptables (libiptc).

libiptc reads the kernel's x_tables blob directly, so no text is parsed; it sees nothing on an
nft-backend node (those rules live in nf_tables), so it is only used where the legacy backend is
in use. The rules come back as the same Ruleset types the parser makes, and canonical_rule puts
them in the form ``iptables-legacy-save`` prints (a test cross-checks the two readings).
IPv4 only in practice: python-iptables 1.0 looks for ``libip6t_MASQUERADE``, which iptables 1.8
replaced by ``libxt_MASQUERADE``, so an IPv6 nat table with MASQUERADE cannot be read this way.
"""

from __future__ import annotations

import ipaddress

from proxyctl.errors import KernelError
from proxyctl.node.netns import call_with_deadline, enter_netns_in_this_thread
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Opt, Rule, Ruleset

TABLES = ("mangle", "filter", "nat")


def _address(text: str) -> tuple[str, bool] | None:
    """libiptc's "10.0.0.0/255.0.0.0" or "!1.2.3.4/255.255.255.255" → ("10.0.0.0/8", negated)."""
    negated = text.startswith("!")
    text = text.lstrip("!")
    net = ipaddress.ip_network(text, strict=False)
    if net.prefixlen == 0:
        return None  # matches everything: iptables-save prints nothing
    return str(net), negated


def _opts(params: dict) -> list[Opt]:
    out = []
    for key, values in params.items():
        vals = list(values) if isinstance(values, (list, tuple)) else [values]
        negated = bool(vals) and vals[0] == "!"
        if negated:
            vals = vals[1:]
        value = " ".join(str(v) for v in vals) if vals else None
        out.append(Opt(f"--{key}", value, negated))
    return out


def _rule(r, family: str) -> Rule:
    matches: list[Opt] = []
    for flag, text in (("-s", r.src), ("-d", r.dst)):
        a = _address(text) if text else None
        if a is not None:
            matches.append(Opt(flag, a[0], a[1]))
    for flag, text in (("-i", r.in_interface), ("-o", r.out_interface)):
        if text:
            matches.append(Opt(flag, text.lstrip("!"), text.startswith("!")))
    if r.protocol and r.protocol not in ("ip", "all", "0"):
        proto = r.protocol
        matches.append(Opt("-p", proto.lstrip("!"), proto.startswith("!")))
    for m in r.matches:
        matches.append(Opt("-m", m.name))
        matches.extend(_opts(m.get_all_parameters()))
    target, topts, goto = None, (), False
    if r.target is not None and r.target.name:
        target = r.target.name
        topts = tuple(_opts(r.target.get_all_parameters()))
        goto = bool(getattr(r.target, "goto", False))
    counters = r.get_counters()
    return Rule(tuple(matches), target, topts, goto, (int(counters[0]), int(counters[1])))


def read_tables(family: str = "IPv4", *, netns: str | None, tables: tuple[str, ...] = TABLES,
                timeout: float = 60.0) -> Ruleset:
    """The legacy backend's tables of ``netns`` as a Ruleset (with counters)."""
    def read() -> Ruleset:
        if netns is not None:
            enter_netns_in_this_thread(netns)
        import iptc  # loads libiptc; after setns so its sockets are the namespace's

        rs = Ruleset(family=family)
        for name in tables:
            t = iptc.Table6(name) if family == "IPv6" else iptc.Table(name)
            t.autocommit = False
            t.refresh()
            table = rs.table(name)
            for c in t.chains:
                builtin = c.name in BUILTIN_CHAINS.get(name, ())
                chain = table.chain(c.name, policy=(c.get_policy().name if builtin else None))
                chain.rules = [_rule(r, family) for r in c.rules]
        return rs

    try:
        return call_with_deadline(read, timeout=timeout, what="reading tables with libiptc")
    except KernelError:
        raise
    except Exception as e:  # iptc raises its own errors and OSErrors: all mean "could not read"
        raise KernelError(f"libiptc could not read the {family} tables: {e}", argv=("libiptc",), netns=netns,
                          stderr=str(e)) from e
