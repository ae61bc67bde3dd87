"""The node's primary IP per family, chosen from what netlink reports.

The rule: the source address of the default route if there is one, else the first global address
on an interface other than ``lo``. "Source of the default route" is its ``src`` (RTA_PREFSRC) when
set, else the address the kernel would pick to reach the gateway: a global address on the route's
interface whose subnet holds the gateway, else the first global address on that interface. A
default route with the lowest metric wins; among equals, the first one dumped.
"""

from __future__ import annotations

import ipaddress

from proxyctl.node.facts import IPV4, IPV6
from proxyctl.node.links import DefaultRoute, InterfaceAddress


def primary_ips(addresses: tuple[InterfaceAddress, ...] | list[InterfaceAddress],
                default_routes: tuple[DefaultRoute, ...] | list[DefaultRoute]) -> dict[str, str]:
    """``{"IPv4": ..., "IPv6": ...}`` with only the families the node has an address for."""
    chosen = {}
    for version, family in ((4, IPV4), (6, IPV6)):
        candidates = [a for a in addresses if a.interface.version == version and a.usable_global]
        ip = _from_default_route(candidates, [r for r in default_routes if r.version == version])
        if ip is None:
            ip = next((str(a.interface.ip) for a in candidates if a.ifname != "lo"), None)
        if ip is not None:
            chosen[family] = ip
    return chosen


def _from_default_route(candidates: list[InterfaceAddress], routes: list[DefaultRoute]) -> str | None:
    for route in sorted(routes, key=lambda r: r.priority):  # stable: dump order among equals
        if route.prefsrc:
            return str(ipaddress.ip_address(route.prefsrc))
        on_link = [a for a in candidates if a.ifindex == route.oif]
        if route.gateway:
            gateway = ipaddress.ip_address(route.gateway)
            for a in on_link:
                if gateway in a.interface.network:
                    return str(a.interface.ip)
        if on_link:
            return str(on_link[0].interface.ip)
    return None
