"""What rtnetlink says about a namespace's addresses and default routes, as plain records.

One dump of links, addresses and main-table routes, read with pyroute2 in the namespace itself.
The records keep exactly what the node-facts shape and the primary-IP choice need, so both can
be tested without a kernel.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from proxyctl.errors import KernelError
from proxyctl.node.netns import call_with_deadline, netns_path

RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
IFA_F_DADFAILED = 0x08


@dataclass(frozen=True)
class InterfaceAddress:
    ifindex: int
    ifname: str
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface  # address and prefix length
    scope: int  # RT_SCOPE_*: 0 universe (global), 253 link, 254 host
    flags: int = 0  # IFA_F_*

    @property
    def usable_global(self) -> bool:
        """A global-scope address that did not fail duplicate address detection."""
        return self.scope == RT_SCOPE_UNIVERSE and not self.flags & IFA_F_DADFAILED


@dataclass(frozen=True)
class DefaultRoute:
    version: int  # 4 or 6
    oif: int | None
    gateway: str | None
    prefsrc: str | None
    priority: int = 0


@dataclass(frozen=True)
class NetlinkView:
    links: dict[int, str]  # ifindex -> name
    addresses: tuple[InterfaceAddress, ...]  # in the kernel's order, IPv4 first
    default_routes: tuple[DefaultRoute, ...]


def read_netlink_view(netns: str | None = None, *, timeout: float = 10.0) -> NetlinkView:
    """Dump links, addresses and default routes of ``netns`` (None: this process's namespace)."""
    if netns is not None:
        netns_path(netns)  # a clear error instead of pyroute2 creating or guessing

    def dump() -> NetlinkView:
        kwargs = {} if netns is None else {"netns": netns, "flags": 0}  # flags=0: never create it
        with IPRoute(**kwargs) as ipr:
            links = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
            addrs = tuple(_address(m, links) for m in ipr.get_addr())
            routes = tuple(r for fam in (socket.AF_INET, socket.AF_INET6)
                           for r in _default_routes(ipr.get_routes(family=fam, table=RT_TABLE_MAIN)))
        return NetlinkView(links=links, addresses=addrs, default_routes=routes)

    argv = ("rtnetlink", "dump", "links", "addresses", "routes")
    try:
        return call_with_deadline(dump, timeout=timeout, what="rtnetlink dump")
    except KernelError as e:
        raise KernelError(str(e), argv=argv, netns=netns) from e
    except NetlinkError as e:
        raise KernelError(f"rtnetlink dump failed: {e}", argv=argv, netns=netns, stderr=str(e)) from e
    except OSError as e:
        raise KernelError(f"rtnetlink dump failed: {e.strerror or e}", argv=argv, netns=netns,
                          stderr=str(e)) from e


def _address(msg, links: dict[int, str]) -> InterfaceAddress:
    # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links and is
    # the only attribute IPv6 sends.
    ip = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    flags = msg.get_attr("IFA_FLAGS")
    index = msg["index"]
    return InterfaceAddress(
        ifindex=index,
        ifname=links.get(index, f"if{index}"),
        interface=ipaddress.ip_interface(f"{ip}/{msg['prefixlen']}"),
        scope=msg["scope"],
        flags=msg["flags"] if flags is None else flags,
    )


def _default_routes(messages) -> list[DefaultRoute]:
    routes = []
    for m in messages:
        table = m.get_attr("RTA_TABLE") or m["table"]
        if m["dst_len"] != 0 or m["type"] != RTN_UNICAST or table != RT_TABLE_MAIN:
            continue
        gateway, oif = m.get_attr("RTA_GATEWAY"), m.get_attr("RTA_OIF")
        hops = m.get_attr("RTA_MULTIPATH")
        if hops and (gateway is None and oif is None):  # ECMP: the first next hop stands for all
            gateway, oif = hops[0].get_attr("RTA_GATEWAY"), hops[0]["oif"]
        routes.append(DefaultRoute(
            version=4 if m["family"] == socket.AF_INET else 6,
            oif=oif,
            gateway=gateway,
            prefsrc=m.get_attr("RTA_PREFSRC"),
            priority=m.get_attr("RTA_PRIORITY") or 0,
        ))
    return routes
