"""The node facts file (``--node-facts``): read it strictly, write it back canonically.

Format (shared/fixtures/README.md)::

    kind: NodeFacts                      # required
    name: test-node                      # a node name (lowercase DNS subdomain); default ""
    nodeIPs: {IPv4: 192.168.0.2, IPv6: 2001:db8::1}   # primary IP per family; default {}
    addresses: {lo: [127.0.0.1/8, "::1/128"], eth0: [192.168.0.2/24]}   # default {}
    iptables: {randomFully: false, nfacct: [ct_state_invalid_dropped_pkts]}
    conntrack: {tcpBeLiberal: false}

Every problem is collected and reported at once, each naming the file and the field
(``addresses.eth0[1]: '10.0.0.300/24' is not an IP address with a prefix``); unknown and
duplicate keys are problems too. IPs are stored in canonical text form.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import sys
from typing import Any

import yaml

from proxyctl.errors import NodeFactsError, Problem
from proxyctl.node.facts import IPV4, IPV6, NodeFacts
from proxyctl.yamlstrict import StrictSafeLoader

KIND = "NodeFacts"
TOP_KEYS = ("kind", "name", "nodeIPs", "addresses", "iptables", "conntrack")
IPTABLES_KEYS = ("randomFully", "nfacct")
CONNTRACK_KEYS = ("tcpBeLiberal",)
NFACCT_NAME_MAX = 31  # NFACCT_NAME_MAX is 32 bytes with the terminating NUL
IFNAME_MAX = 15  # IFNAMSIZ is 16 with the NUL

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PREFIX = re.compile(r"^(0|[1-9][0-9]{0,2})$")


def load_node_facts(path: str) -> NodeFacts:
    """Read a node facts file (``-`` for stdin). Raises NodeFactsError listing every problem."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except UnicodeDecodeError as e:
        raise _error([Problem(f"not UTF-8 text (invalid byte at offset {e.start})", source=path)]) from e
    except OSError as e:
        raise _error([Problem(f"cannot read the node facts file: {e.strerror or e}", source=path)]) from e
    return parse_node_facts(text, source=path)


def parse_node_facts(text: str, *, source: str = "") -> NodeFacts:
    """Node facts from the text of a file; ``source`` names it in problems."""
    try:
        docs = list(yaml.load_all(text, Loader=StrictSafeLoader))
    except yaml.YAMLError as e:
        raise _error([Problem(_yaml_message(e), source=source)]) from e
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        found = "nothing" if not docs else f"{len(docs)} YAML documents"
        raise _error([Problem(f"expected one NodeFacts document, found {found}", source=source)])
    reader = _Reader(source)
    facts = reader.facts(docs[0])
    if reader.problems:
        raise _error(reader.problems)
    return facts


def dump_node_facts(facts: NodeFacts) -> str:
    """The file format of ``facts``; ``parse_node_facts(dump_node_facts(f)) == f``."""
    doc = {
        "kind": KIND,
        "name": facts.name,
        "nodeIPs": {fam: facts.node_ips[fam] for fam in (IPV4, IPV6) if fam in facts.node_ips},
        "addresses": {iface: list(addrs) for iface, addrs in facts.addresses.items()},
        "iptables": {"randomFully": facts.random_fully, "nfacct": list(facts.nfacct)},
        "conntrack": {"tcpBeLiberal": facts.tcp_be_liberal},
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _yaml_message(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML: {problem}{where}"


def _error(problems: list[Problem]) -> NodeFactsError:
    return NodeFactsError("\n".join(str(p) for p in problems), problems)


class _Reader:
    """Walks one parsed document, building NodeFacts and collecting Problems."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, field: str, message: str) -> None:
        self.problems.append(Problem(message, source=self.source, field=field))

    def facts(self, doc: Any) -> NodeFacts:
        top = self.mapping(doc, "", TOP_KEYS)
        if top is None:
            return NodeFacts()
        # field by field in the format's order, so problems come out in that order
        self.kind(top.get("kind"))
        name = self.name(top.get("name"))
        node_ips = self.node_ips(top.get("nodeIPs"))
        addresses = self.addresses(top.get("addresses"))
        iptables = self.mapping(top.get("iptables"), "iptables", IPTABLES_KEYS) or {}
        random_fully = self.boolean(iptables.get("randomFully"), "iptables.randomFully")
        nfacct = self.nfacct(iptables.get("nfacct"))
        conntrack = self.mapping(top.get("conntrack"), "conntrack", CONNTRACK_KEYS) or {}
        tcp_be_liberal = self.boolean(conntrack.get("tcpBeLiberal"), "conntrack.tcpBeLiberal")
        return NodeFacts(name=name, node_ips=node_ips, addresses=addresses, random_fully=random_fully,
                         nfacct=nfacct, tcp_be_liberal=tcp_be_liberal)

    def mapping(self, value: Any, field: str, keys: tuple[str, ...]) -> dict | None:
        """``value`` as a dict with only ``keys``; None (absent) gives None."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(field, f"expected a mapping, got {_describe(value)}")
            return None
        for key in value:
            if key not in keys:
                self.problem(_join(field, str(key)), _unknown_key(key, keys))
        return {k: v for k, v in value.items() if k in keys}

    def kind(self, value: Any) -> None:
        if value is None:
            self.problem("kind", f"missing: a node facts file says kind: {KIND}")
        elif value != KIND:
            self.problem("kind", f"{_show(value)} is not {KIND}")

    def name(self, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.problem("name", f"expected a node name, got {_describe(value)}")
            return ""
        if value and (len(value) > 253 or not _DNS_SUBDOMAIN.match(value)):
            self.problem("name", f"{value!r} is not a valid node name (a lowercase DNS subdomain: "
                                 "letters, digits, '-' and '.')")
        return value

    def node_ips(self, value: Any) -> dict[str, str]:
        ips = self.mapping(value, "nodeIPs", (IPV4, IPV6))
        out = {}
        for family in (IPV4, IPV6):
            if ips is None or ips.get(family) is None:
                continue
            field = f"nodeIPs.{family}"
            text = ips[family]
            if not isinstance(text, str):
                self.problem(field, f"expected an IP address, got {_describe_ip(text)}")
                continue
            ip = _parse_ip(text)
            if ip is None:
                self.problem(field, f"{text!r} is not an IP address")
            elif _family(ip) != family:
                self.problem(field, f"{text!r} is an {_family(ip)} address")
            else:
                out[family] = str(ip)
        return out

    def addresses(self, value: Any) -> dict[str, tuple[str, ...]]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem("addresses", f"expected a mapping of interface to addresses, got {_describe(value)}")
            return {}
        out = {}
        for iface, addrs in value.items():
            if not _valid_ifname(iface):
                self.problem("addresses", f"{_show(iface)} is not an interface name (1-{IFNAME_MAX} "
                                          "characters, no '/', ':' or whitespace)")
                continue
            out[iface] = self.interface_addresses(addrs, f"addresses.{iface}")
        return out

    def interface_addresses(self, value: Any, field: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(field, f"expected a list of addresses with prefix, got {_describe(value)}")
            return ()
        out: list[str] = []
        for i, text in enumerate(value):
            item = f"{field}[{i}]"
            if not isinstance(text, str):
                self.problem(item, f"expected an IP address with a prefix, got {_describe_ip(text)}")
                continue
            itf, why = _parse_interface(text)
            if itf is None:
                self.problem(item, f"{text!r} is not an IP address with a prefix{why}")
            elif str(itf) in out:
                self.problem(item, f"{text!r} is listed twice")
            else:
                out.append(str(itf))
        return tuple(out)

    def boolean(self, value: Any, field: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.problem(field, f"expected true or false, got {_describe(value)}")
            return False
        return value

    def nfacct(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem("iptables.nfacct", f"expected a list of nfacct object names, got {_describe(value)}")
            return ()
        out: list[str] = []
        for i, name in enumerate(value):
            field = f"iptables.nfacct[{i}]"
            if not isinstance(name, str) or not name or name.strip() != name or ";" in name:
                self.problem(field, f"{_show(name)} is not an nfacct object name")
            elif len(name.encode()) > NFACCT_NAME_MAX:
                self.problem(field, f"{name!r} is longer than {NFACCT_NAME_MAX} bytes, "
                                    "the kernel's limit for nfacct names")
            elif name in out:
                self.problem(field, f"{name!r} is listed twice")
            else:
                out.append(name)
        return tuple(out)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:  # ipaddress accepts IPv6 zones; an address on a node has none
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _parse_interface(text: str) -> tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface | None, str]:
    """The address and prefix length, or None and the reason (with a leading ': ') if there is one."""
    addr, sep, prefix = text.partition("/")
    ip = _parse_ip(addr)
    if ip is None:
        return None, ""
    if not sep:
        return None, ": the prefix length is missing"
    if not _PREFIX.match(prefix):
        return None, f": {prefix!r} is not a prefix length"
    limit = ip.max_prefixlen
    if int(prefix) > limit:
        return None, f": prefix length {prefix} is more than {limit}"
    return ipaddress.ip_interface(f"{ip}/{prefix}"), ""


def _family(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return IPV4 if ip.version == 4 else IPV6


def _valid_ifname(name: Any) -> bool:
    # the kernel's dev_valid_name
    return (isinstance(name, str) and 0 < len(name.encode()) <= IFNAME_MAX and name not in (".", "..")
            and not any(c == "/" or c == ":" or c.isspace() for c in name))


def _unknown_key(key: Any, keys: tuple[str, ...]) -> str:
    folded = {k.lower(): k for k in keys}
    close = [folded[str(key).lower()]] if str(key).lower() in folded else \
        difflib.get_close_matches(str(key), keys, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(keys)}"
    return f"unknown key; {hint}"


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _describe(value)


def _describe_ip(value: Any) -> str:
    """Like _describe, with the fix for YAML 1.1 reading some bare IPv6 addresses as base-60 numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"the number {value} (YAML reads some unquoted IPv6 addresses as numbers: quote it)"
    return _describe(value)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value!r})"
