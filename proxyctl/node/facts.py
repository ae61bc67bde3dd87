"""NodeFacts: what a backend needs to know about the node, and nothing it can ask a kernel for.

The same object comes from a file (``--node-facts``, format in shared/fixtures/README.md) or from
discovery (pyroute2, in the host or a named namespace), so compile never touches the kernel.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPV4 = "IPv4"
IPV6 = "IPv6"


@dataclass(frozen=True)
class NodeFacts:
    name: str = ""
    node_ips: dict[str, str] = field(default_factory=dict)  # {"IPv4": "192.168.0.2", "IPv6": ...}
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # iface -> ("192.168.0.2/24", ...)
    random_fully: bool = False
    nfacct: tuple[str, ...] = ()
    tcp_be_liberal: bool = False

    def interface_networks(self) -> list[tuple[str, ipaddress.IPv4Interface | ipaddress.IPv6Interface]]:
        out = []
        for iface, addrs in self.addresses.items():
            for a in addrs:
                out.append((iface, ipaddress.ip_interface(a)))
        return out

    def local_ips(self, family: str | None = None) -> list[str]:
        """Every address on the node (not prefixes), optionally one family, in file order."""
        ips = []
        for _, itf in self.interface_networks():
            if family is None or _family(itf.ip) == family:
                ips.append(str(itf.ip))
        return ips

    def is_local(self, ip: str) -> bool:
        """Whether the kernel routes ``ip`` as local: an address on ``lo`` makes its whole prefix
        local (the ``local 127.0.0.0/8`` route); elsewhere only the address itself."""
        addr = ipaddress.ip_address(ip)
        for iface, itf in self.interface_networks():
            if itf.ip.version != addr.version:
                continue
            if iface == "lo":
                if addr in itf.network:
                    return True
            elif addr == itf.ip:
                return True
        return False

    def node_ip(self, family: str) -> str | None:
        return self.node_ips.get(family)


def _family(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return IPV4 if ip.version == 4 else IPV6
