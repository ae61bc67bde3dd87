"""One NodeFacts from every source that can say something about the node, by precedence.

For the node name and for each family's node IP, the first source that has a value wins:

1. the command line: ``--hostname-override``; ``--node-ip`` (at most one per family);
2. the configuration: ``hostnameOverride``; a ``bindAddress`` other than 0.0.0.0 / ``::``, which
   kube-proxy takes as the node IP of its family ("overrides kube-proxy's idea of what its node's
   primary IP is");
3. the ``--node-facts`` file;
4. the Node object: its name; per family its first InternalIP, else its first ExternalIP (what
   kube-proxy's GetNodeHostIPs yields);
5. discovery.

Addresses, nfacct objects, randomFully and tcpBeLiberal come from the facts file when there is
one, else from discovery. Discovery is called at most once, and only when something is still
missing: always without a facts file (the addresses are needed), with one only when nothing
else names the node. A facts file describes the node: discovery does not add a node IP for a
family the file leaves out. With ``discover=None`` (offline) missing values stay empty; unlike
kube-proxy we do not fall back to 127.0.0.1 / ::1 as node IPs.

Names are trimmed and lowercased like kube-proxy does; an override that is only whitespace is
an error, not a reason to use the next source.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from proxyctl.cluster.ipaddr import parse_ip_sloppy
from proxyctl.cluster.objects import Node
from proxyctl.errors import ConfigError, InputError
from proxyctl.node.facts import IPV4, IPV6, NodeFacts
from proxyctl.node.hostname import normalize_node_name

FAMILIES = (IPV4, IPV6)


def resolve_node_facts(*, hostname_override_flag: str | None = None, node_ip_flags: Sequence[str] = (),
                       config_hostname_override: str = "", config_bind_address: str = "0.0.0.0",
                       facts_file: NodeFacts | None = None, node_object: Node | None = None,
                       discover: Callable[[], NodeFacts] | None = None) -> NodeFacts:
    """The node's facts by the precedence in this module's docstring.

    Raises InputError for a bad flag, ConfigError for a bad configuration value, InputError when
    the Node object is not the node the name designates, and whatever ``discover`` raises.
    """
    discovery = _Discovery(discover)
    name, name_source = _node_name(hostname_override_flag, config_hostname_override, facts_file, node_object)
    if not name and discovery.available:
        name, name_source = discovery.facts().name, "discovery"
    _check_node_object(node_object, name, name_source)

    layers = [_flag_ips(node_ip_flags), _bind_address_ip(config_bind_address),
              dict(facts_file.node_ips) if facts_file else {}, _node_object_ips(node_object)]
    if facts_file is None and discovery.available:
        layers.append(dict(discovery.facts().node_ips))
    node_ips = {}
    for family in FAMILIES:
        ip = next((layer[family] for layer in layers if layer.get(family)), None)
        if ip is not None:
            node_ips[family] = ip

    base = facts_file if facts_file is not None else discovery.facts_or_empty()
    return NodeFacts(name=name, node_ips=node_ips, addresses=dict(base.addresses),
                     random_fully=base.random_fully, nfacct=tuple(base.nfacct),
                     tcp_be_liberal=base.tcp_be_liberal)


class _Discovery:
    """Calls the discover callable once, on first need."""

    def __init__(self, discover: Callable[[], NodeFacts] | None):
        self._discover = discover
        self._facts: NodeFacts | None = None

    @property
    def available(self) -> bool:
        return self._discover is not None

    def facts(self) -> NodeFacts:
        if self._facts is None:
            assert self._discover is not None
            self._facts = self._discover()
        return self._facts

    def facts_or_empty(self) -> NodeFacts:
        return self.facts() if self.available else NodeFacts()


def _node_name(flag: str | None, config: str, facts_file: NodeFacts | None,
               node_object: Node | None) -> tuple[str, str]:
    """The name and where it came from; ("", "") when only discovery could tell."""
    if flag:  # kube-proxy: a flag given as "" is a flag not given
        return normalize_node_name(flag, source="--hostname-override"), "--hostname-override"
    if config:
        return normalize_node_name(config, source="hostnameOverride", error=ConfigError), "hostnameOverride"
    if facts_file is not None and facts_file.name:
        return facts_file.name, "the node facts file"
    if node_object is not None and node_object.name:
        return node_object.name, "the Node object"
    return "", ""


def _check_node_object(node: Node | None, name: str, source: str) -> None:
    # kube-proxy reads the Node named after itself; a Node with another name is another node.
    if node is not None and name and node.name != name:
        raise InputError(f"the Node object is {node.name!r} but this node is {name!r} (from {source})")


def _flag_ips(flags: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in (part.strip() for flag in flags for part in flag.split(",")):
        if not text:
            continue
        ip = _parse_ip(text)
        if ip is None:
            raise InputError(f"--node-ip: {text!r} is not an IP address")
        if ip.is_unspecified:
            raise InputError(f"--node-ip: {text!r} is not a node IP (it is the unspecified address)")
        family = _family(ip)
        if family in out and out[family] != str(ip):
            raise InputError(f"--node-ip: two {family} addresses ({out[family]}, {ip}); give one per family")
        out[family] = str(ip)
    return out


def _bind_address_ip(bind_address: str) -> dict[str, str]:
    if not bind_address.strip():
        return {}
    ip = _parse_ip(bind_address)
    if ip is None:
        raise ConfigError(f"bindAddress: {bind_address!r} is not an IP address")
    return {} if ip.is_unspecified else {_family(ip): str(ip)}


def _node_object_ips(node: Node | None) -> dict[str, str]:
    if node is None:
        return {}
    out: dict[str, str] = {}
    for text in (*node.internal_ips, *node.external_ips):  # InternalIPs first, then ExternalIPs
        ip = _parse_ip(text)
        if ip is not None:  # kube-proxy skips what it cannot parse
            out.setdefault(_family(ip), str(ip))
    return out


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return parse_ip_sloppy(text)
    except ValueError:
        return None


def _family(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return IPV4 if ip.version == 4 else IPV6
