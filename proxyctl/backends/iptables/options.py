"""What the iptables compiler needs from the configuration and the node, resolved for one family.

Resolving here (not while compiling) keeps the compiler a pure function of its inputs and lets
tests state an option directly, as kube-proxy's tests set proxier fields.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from proxyctl.backends.iptables.names import ChainNames
from proxyctl.cluster.ipaddr import family_of, parse_cidr_sloppy
from proxyctl.cluster.objects import Node
from proxyctl.node.facts import NodeFacts
from proxyctl.rules.iptables.model import Opt

LARGE_CLUSTER_THRESHOLD = 1000
CT_INVALID_COUNTER = "ct_state_invalid_dropped_pkts"
LOCALHOST_NODEPORT_COUNTER = "localhost_nps_accepted_pkts"


def masquerade_mark(bit: int) -> str:
    """kube-proxy's ``%#08x`` of ``1 << bit``: ``0x00004000`` for bit 14."""
    return "0x" + format(1 << bit, "08x")


@dataclass(frozen=True)
class LocalDetector:
    """How "traffic from a local pod" is recognised (detectLocalMode); empty means not at all."""

    if_local: tuple[Opt, ...] = ()
    if_not_local: tuple[Opt, ...] = ()

    @property
    def implemented(self) -> bool:
        return bool(self.if_local)

    @classmethod
    def by_cidr(cls, cidr: str) -> LocalDetector:
        return cls((Opt("-s", cidr),), (Opt("-s", cidr, True),))

    @classmethod
    def by_interface(cls, name: str) -> LocalDetector:
        return cls((Opt("-i", name),), (Opt("-i", name, True),))


@dataclass(frozen=True)
class IptablesOptions:
    family: str = "IPv4"
    masquerade_mark: str = "0x00004000"
    masquerade_all: bool = False
    localhost_node_ports: bool = True
    detector: LocalDetector = LocalDetector()
    node_port_match_all: bool = True
    node_port_ips: tuple[str, ...] = ()  # when not match-all: the node addresses NodePorts answer on
    node_ip: str | None = None  # primary node IP of the family (LB source-range hairpin)
    random_fully: bool = False
    nfacct: frozenset[str] = field(default_factory=frozenset)
    tcp_be_liberal: bool = False
    names: ChainNames = ChainNames()
    large_cluster_threshold: int = LARGE_CLUSTER_THRESHOLD

    @property
    def ipv6(self) -> bool:
        return self.family == "IPv6"


def _detector(config, family: str, node: Node | None) -> LocalDetector:
    mode = config.detect_local_mode
    if mode == "ClusterCIDR":
        cidrs = [c for c in config.cluster_cidrs if family_of(c) == family]
        return LocalDetector.by_cidr(str(parse_cidr_sloppy(cidrs[0]))) if cidrs else LocalDetector()
    if mode == "NodeCIDR":
        cidrs = [c for c in (node.pod_cidrs if node else ()) if family_of(c) == family]
        return LocalDetector.by_cidr(str(parse_cidr_sloppy(cidrs[0]))) if cidrs else LocalDetector()
    if mode == "BridgeInterface" and config.bridge_interface:
        return LocalDetector.by_interface(config.bridge_interface)
    if mode == "InterfaceNamePrefix" and config.interface_name_prefix:
        return LocalDetector.by_interface(config.interface_name_prefix + "+")
    return LocalDetector()


def _node_port_cidrs(config, facts: NodeFacts, family: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """nodePortAddresses for this family; ``primary`` means the node IP; none means everything."""
    wanted = list(config.node_port_addresses or ())
    if wanted == ["primary"]:
        wanted = []
        for fam, bits in (("IPv4", 32), ("IPv6", 128)):
            ip = facts.node_ip(fam)
            if ip and not ipaddress.ip_address(ip).is_loopback:
                wanted.append(f"{ip}/{bits}")
    cidrs = [parse_cidr_sloppy(c) for c in wanted if c != "primary" and family_of(c) == family]
    if not cidrs:
        cidrs = [ipaddress.ip_network("0.0.0.0/0" if family == "IPv4" else "::/0")]
    return cidrs


def options_for(config, facts: NodeFacts, family: str, node: Node | None = None,
                prefix: str = "KUBE-") -> IptablesOptions:
    """Resolve a KubeProxyConfiguration and node facts into compiler options for ``family``."""
    cidrs = _node_port_cidrs(config, facts, family)
    match_all = any(c.prefixlen == 0 for c in cidrs)
    localhost = config.localhost_node_ports and any(
        c.version == 4 and ipaddress.ip_address("127.0.0.1") in c for c in cidrs)
    ips: list[str] = []
    if not match_all:
        for ip in facts.local_ips(family):
            addr = ipaddress.ip_address(ip)
            if any(addr in c for c in cidrs) and ip not in ips:
                ips.append(ip)
    return IptablesOptions(
        family=family,
        masquerade_mark=masquerade_mark(config.masquerade_bit),
        masquerade_all=config.masquerade_all,
        localhost_node_ports=localhost,
        detector=_detector(config, family, node),
        node_port_match_all=match_all,
        node_port_ips=tuple(ips),
        node_ip=facts.node_ip(family),
        random_fully=facts.random_fully,
        nfacct=frozenset(facts.nfacct),
        tcp_be_liberal=facts.tcp_be_liberal,
        names=ChainNames(prefix),
    )
