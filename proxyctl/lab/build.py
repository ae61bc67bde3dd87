"""Turning a Topology into network namespaces, links, addresses and routes (pyroute2 only).

    router  "net": bridge br0 holding the lab network's gateway; one routed link per external
            host (its /32 and /128 on-link, fe80::1 as its IPv6 gateway); routes for
            LoadBalancer and external IPs to the entry node; forwarding on.
    node    eth0 (a veth whose peer is a port of the router's br0) with the node's addresses and
            default routes via the router; bridge cbr0 holding a gateway address in each pod
            CIDR; routes to the other nodes' pod CIDRs via those nodes; forwarding on.
    pod     eth0 (a veth whose peer is a port of its node's cbr0, with hairpin_mode on, as the
            bridge CNI's ``hairpinMode: true``) with its addresses and default routes via the
            gateways.
    host    eth0 (a veth whose peer is a routed link of the router) with its addresses and
            default routes via the router.

Every link is created inside a lab namespace with its peer placed directly in another lab
namespace, so nothing is ever created in (or moved through) the namespace we run in. Every
namespace gets its lab marker on ``lo`` right after it is created (registry.py). IPv6 duplicate
address detection is off inside the lab, so addresses are usable at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Callable

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError

from proxyctl.errors import KernelError
from proxyctl.lab import registry
from proxyctl.lab.nsenter import write_sysctl
from proxyctl.lab.topology import ROUTER_LINK_LOCAL, Topology, family_of
from proxyctl.node.netns import NETNS_RUN_DIR

ROUTER = "net"  # the router's key in a lab's namespace map
IFA_F_NODAD = 0x02
RTNH_F_ONLINK = 0x04
NODE_BRIDGE = "cbr0"
ROUTER_BRIDGE = "br0"
UPLINK = "eth0"


def netns_names(lab: str, topo: Topology, prefix: str = "pxlab-") -> dict[str, str]:
    """The namespace of every part of the lab: ``<prefix><lab>-<kind>-<name>``, unique per run
    because lab names are."""
    names = {ROUTER: f"{prefix}{lab}-net"}
    for n in topo.nodes:
        names[n.name] = f"{prefix}{lab}-node-{n.name}"
    for p in topo.pods:
        names[p.name] = f"{prefix}{lab}-pod-{p.name}"
    for h in topo.hosts:
        names[h.name] = f"{prefix}{lab}-host-{h.name}"
    for ns in names.values():
        if len(ns) > 200 or "/" in ns:
            raise KernelError(f"namespace name {ns!r} is too long or holds '/'")
    return names


class _Handles:
    """One open rtnetlink socket per lab namespace."""

    def __init__(self) -> None:
        self.by_ns: dict[str, IPRoute] = {}

    def __getitem__(self, ns: str) -> IPRoute:
        ipr = self.by_ns.get(ns)
        if ipr is None:
            ipr = self.by_ns[ns] = IPRoute(netns=ns, flags=0)  # flags=0: never create a namespace
        return ipr

    def close(self) -> None:
        for ipr in self.by_ns.values():
            with contextlib.suppress(Exception):
                ipr.close()
        self.by_ns.clear()


def create_namespace(lab: str, ns: str, *, forwarding: bool) -> None:
    """Create ``ns``, mark it as the lab's, and set its sysctls (DAD off; forwarding for routers)."""
    if os.path.exists(os.path.join(NETNS_RUN_DIR, ns)):
        raise KernelError(f"network namespace {ns} exists already: not ours to reuse", netns=ns)
    pyroute2_netns.create(ns)
    with IPRoute(netns=ns, flags=0) as ipr:
        registry.mark(ipr, lab)
    settings = [("net.ipv6.conf.all.accept_dad", 0), ("net.ipv6.conf.default.accept_dad", 0)]
    if forwarding:
        settings += [("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1)]
    for key, value in settings:
        write_sysctl(ns, key, value)


def build_network(lab: str, topo: Topology, names: dict[str, str],
                  checkpoint: Callable[[], None] = lambda: None) -> None:
    """Create every namespace and link of ``topo``. ``checkpoint()`` is called between steps: it
    may raise (a Ctrl-C noticed) to stop the build at a clean point. On failure, what was made
    stays for the caller to tear down (it knows every name from ``names``)."""
    routers = {ROUTER, *(n.name for n in topo.nodes)}
    for key, ns in names.items():
        checkpoint()
        create_namespace(lab, ns, forwarding=key in routers)
    h = _Handles()
    try:
        _wire(topo, names, h, checkpoint)
    except NetlinkError as e:
        raise KernelError(f"building the lab network failed: {e}") from e
    finally:
        h.close()


def _wire(topo: Topology, names: dict[str, str], h: _Handles, checkpoint: Callable[[], None]) -> None:
    net = h[names[ROUTER]]
    br0 = _bridge(net, ROUTER_BRIDGE)
    for family in ("IPv4", "IPv6"):
        ip = topo.network.router_ip(family)
        if ip:
            _addr(net, br0, ip, topo.network.prefix(family))

    for i, node in enumerate(topo.nodes):
        checkpoint()
        ns = names[node.name]
        ipr = h[ns]
        port = _veth(net, f"n{i}", ns, UPLINK)
        net.link("set", index=port, master=br0, state="up")
        eth0 = _up(ipr, UPLINK)
        for ip in node.ips:
            _addr(ipr, eth0, ip, topo.network.prefix(family_of(ip)))
            _route(ipr, _default(ip), gateway=topo.network.router_ip(family_of(ip)))
        cbr0 = _bridge(ipr, NODE_BRIDGE)
        for gw in node.gateways:
            itf = ipaddress.ip_interface(gw)
            _addr(ipr, cbr0, str(itf.ip), itf.network.prefixlen)
        for other in topo.nodes:
            if other.name == node.name:
                continue
            for cidr in other.pod_cidrs:
                via = other.ip(family_of(cidr))
                if via:
                    _route(ipr, cidr, gateway=via)

    for node in topo.nodes:
        node_ns = names[node.name]
        nipr = h[node_ns]
        cbr0 = nipr.link_lookup(ifname=NODE_BRIDGE)[0]
        for j, pod in enumerate(topo.pods_on(node.name)):
            checkpoint()
            pns = names[pod.name]
            port = _veth(nipr, f"veth{j}", pns, "eth0")
            nipr.link("set", index=port, master=cbr0, state="up")
            nipr.brport("set", index=port, mode=1)  # IFLA_BRPORT_MODE: hairpin on
            pipr = h[pns]
            eth0 = _up(pipr, "eth0")
            for ip in pod.ips:
                _addr(pipr, eth0, ip, node.prefix_of(ip))
                _route(pipr, _default(ip), gateway=node.gateway(ip))

    for k, host in enumerate(topo.hosts):
        checkpoint()
        hns = names[host.name]
        link = _veth(net, f"x{k}", hns, "eth0")
        net.link("set", index=link, state="up")
        _addr(net, link, ROUTER_LINK_LOCAL, 64)
        hipr = h[hns]
        eth0 = _up(hipr, "eth0")
        for ip in host.ips:
            family = family_of(ip)
            _addr(hipr, eth0, ip, 128 if family == "IPv6" else 32)
            _route(net, ip, oif=link)
            if family == "IPv6":
                _route(hipr, "::/0", gateway=ROUTER_LINK_LOCAL, oif=eth0)
            else:
                _route(hipr, "0.0.0.0/0", gateway=topo.network.router_ip("IPv4"), oif=eth0, onlink=True)

    for ip, node_name in topo.network.routes:
        via = topo.node(node_name).ip(family_of(ip))
        if via:
            _route(net, ip, gateway=via)


def _default(ip: str) -> str:
    return "::/0" if family_of(ip) == "IPv6" else "0.0.0.0/0"


def _up(ipr: IPRoute, ifname: str) -> int:
    index = ipr.link_lookup(ifname=ifname)[0]
    ipr.link("set", index=index, state="up")
    return index


def _bridge(ipr: IPRoute, name: str) -> int:
    ipr.link("add", ifname=name, kind="bridge")
    return _up(ipr, name)


def _veth(ipr: IPRoute, ifname: str, peer_ns: str, peer_ifname: str) -> int:
    """A veth ``ifname`` in ``ipr``'s namespace whose peer ``peer_ifname`` is created in ``peer_ns``."""
    fd = os.open(os.path.join(NETNS_RUN_DIR, peer_ns), os.O_RDONLY)
    try:
        ipr.link("add", ifname=ifname, kind="veth", peer={"ifname": peer_ifname, "net_ns_fd": fd})
    finally:
        os.close(fd)
    return ipr.link_lookup(ifname=ifname)[0]


def _addr(ipr: IPRoute, index: int, ip: str, prefix: int) -> None:
    kwargs = {"flags": IFA_F_NODAD} if family_of(ip) == "IPv6" else {}
    ipr.addr("add", index=index, address=ip, prefixlen=prefix, **kwargs)


def _route(ipr: IPRoute, dst: str, *, gateway: str | None = None, oif: int | None = None,
           onlink: bool = False) -> None:
    if "/" not in dst:
        dst = f"{dst}/{128 if family_of(dst) == 'IPv6' else 32}"
    spec: dict = {"dst": dst}
    if gateway:
        spec["gateway"] = gateway
    if oif is not None:
        spec["oif"] = oif
    if onlink:
        spec["flags"] = RTNH_F_ONLINK
    ipr.route("add", **spec)


def remove_namespace(ns: str, lab: str, *, listed: bool = False) -> bool:
    """Remove ``ns`` if it carries ``lab``'s marker (or, when ``listed`` in the lab's record, if it is
    still an empty, unmarked namespace: one that died between creation and marking). True if removed."""
    if not registry.netns_exists(ns):
        return False
    owner = registry.marker_of(ns)
    if owner != lab and not (listed and owner is None and _pristine(ns)):
        return False
    pyroute2_netns.remove(ns)
    return True


def _pristine(ns: str) -> bool:
    try:
        with IPRoute(netns=ns, flags=0) as ipr:
            links = ipr.get_links()
    except OSError:
        return False
    return len(links) == 1 and links[0].get_attr("IFLA_IFNAME") == "lo" and links[0]["flags"] & 1 == 0
