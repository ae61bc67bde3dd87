"""What a lab is made of: nodes, pods, external hosts and the network between them.

A ``Topology`` is a plain description; ``build`` turns it into namespaces and links. It usually
comes from cluster objects (``from_cluster``): one pod per endpoint address (serving the ports
its EndpointSlices list), nodes from the endpoints' ``nodeName`` and the Node objects, each node's
pod CIDRs from its Node's ``spec.podCIDRs`` or else the /24 (IPv4) or /64 (IPv6) around its pods,
one client pod per node (a pod that serves nothing, for probes), and external hosts: ``ext``
outside every loadBalancerSourceRange, and one inside each range.

The network: every node has an uplink on a shared lab network (a bridge in a router namespace),
a default route to that router, and routes to the other nodes' pod CIDRs via those nodes. The
router routes each LoadBalancer ingress IP and externalIP to the entry node (the first node), as
a cloud load balancer or an upstream router would. External hosts hang off the router on their
own links (a /32 and a /128 each, reached on-link), so their addresses can be anything, such as
an address inside a source range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from proxyctl.cluster.objects import ClusterState
from proxyctl.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FAMILIES = ("IPv4", "IPv6")
POD_PREFIX = {"IPv4": 24, "IPv6": 64}
DEFAULT_POD_POOL = {"IPv4": "10.244.0.0/16", "IPv6": "fd00:10:244::/48"}
LAB_NETWORKS = {
    "IPv4": ("172.31.254.0/24", "172.30.254.0/24", "192.168.254.0/24", "10.254.254.0/24"),
    "IPv6": ("fd00:1ab::/64", "fd00:1ab:1::/64", "fd00:1ab:2::/64"),
}
EXTERNAL_CANDIDATES = {
    "IPv4": ("203.0.113.10", "198.18.0.10", "100.64.0.10", "192.0.2.10"),
    "IPv6": ("fd00:ee::10", "fd00:ee:1::10", "2001:db8:ee::10"),
}
ROUTER_LINK_LOCAL = "fe80::1"  # the router's address on every external host's link (IPv6 gateway)
SERVED_PROTOCOLS = ("TCP", "UDP")


def family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


@dataclass(frozen=True)
class ServedPort:
    protocol: str  # TCP | UDP
    port: int

    def __str__(self) -> str:
        return f"{self.protocol.lower()}/{self.port}"


@dataclass(frozen=True)
class Node:
    name: str
    ips: tuple[str, ...]  # on the lab network, one per family
    pod_cidrs: tuple[str, ...]  # one or more per family
    gateways: tuple[str, ...]  # the pod bridge's addresses, with prefix: one per pod CIDR

    def ip(self, family: str) -> str | None:
        return next((ip for ip in self.ips if family_of(ip) == family), None)

    def gateway(self, pod_ip: str) -> str:
        """The bridge address (no prefix) in the pod CIDR that holds ``pod_ip``."""
        addr = ipaddress.ip_address(pod_ip)
        for gw in self.gateways:
            itf = ipaddress.ip_interface(gw)
            if itf.version == addr.version and addr in itf.network:
                return str(itf.ip)
        raise InputError(f"node {self.name} has no pod CIDR holding {pod_ip}")

    def prefix_of(self, pod_ip: str) -> int:
        addr = ipaddress.ip_address(pod_ip)
        for cidr in self.pod_cidrs:
            net = ipaddress.ip_network(cidr)
            if net.version == addr.version and addr in net:
                return net.prefixlen
        raise InputError(f"node {self.name} has no pod CIDR holding {pod_ip}")


@dataclass(frozen=True)
class Pod:
    name: str
    node: str
    ips: tuple[str, ...]
    ports: tuple[ServedPort, ...] = ()
    services: tuple[str, ...] = ()  # namespace/name of the Services whose endpoints name it
    client: bool = False  # a probe client: serves nothing

    def ip(self, family: str) -> str | None:
        return next((ip for ip in self.ips if family_of(ip) == family), None)


@dataclass(frozen=True)
class Host:
    """A machine outside the cluster, behind the router."""

    name: str
    ips: tuple[str, ...]
    note: str = ""

    def ip(self, family: str) -> str | None:
        return next((ip for ip in self.ips if family_of(ip) == family), None)


@dataclass(frozen=True)
class Network:
    cidrs: tuple[str, ...]  # the lab network, one per family
    router_ips: tuple[str, ...]  # the router on it, one per family
    routes: tuple[tuple[str, str], ...] = ()  # (address, node name) the router sends to that node

    def router_ip(self, family: str) -> str | None:
        return next((ip for ip in self.router_ips if family_of(ip) == family), None)

    def prefix(self, family: str) -> int:
        return next(ipaddress.ip_network(c).prefixlen for c in self.cidrs if family_of(c) == family)


@dataclass(frozen=True)
class Topology:
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    hosts: tuple[Host, ...]
    network: Network
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [x.name for x in (*self.nodes, *self.pods, *self.hosts)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"lab names must be unique across nodes, pods and hosts: {', '.join(dupes)}")

    @property
    def entry_node(self) -> Node:
        return self.nodes[0]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise InputError(f"no node {name!r} in the lab (nodes: {', '.join(n.name for n in self.nodes)})")

    def find(self, name: str) -> Node | Pod | Host:
        for x in (*self.nodes, *self.pods, *self.hosts):
            if x.name == name:
                return x
        raise InputError(f"nothing called {name!r} in the lab (try one of: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [x.name for x in (*self.nodes, *self.pods, *self.hosts)]

    def pods_on(self, node: str) -> list[Pod]:
        return [p for p in self.pods if p.node == node]

    def pod_with_ip(self, ip: str) -> Pod | None:
        ip = str(ipaddress.ip_address(ip))
        return next((p for p in self.pods if ip in p.ips), None)

    def node_with_ip(self, ip: str) -> Node | None:
        ip = str(ipaddress.ip_address(ip))
        return next((n for n in self.nodes if ip in n.ips), None)

    def routed_to(self, ip: str) -> Node | None:
        """The node the router sends ``ip`` to (LoadBalancer and external IPs)."""
        for addr, node in self.network.routes:
            if addr == ip:
                return self.node(node)
        return None


# -- as data (the lab's registry record) ---------------------------------------------------------------


def topology_to_dict(topo: Topology) -> dict[str, Any]:
    return asdict(topo)


def topology_from_dict(data: dict[str, Any]) -> Topology:
    try:
        return Topology(
            nodes=tuple(Node(n["name"], tuple(n["ips"]), tuple(n["pod_cidrs"]), tuple(n["gateways"]))
                        for n in data["nodes"]),
            pods=tuple(Pod(p["name"], p["node"], tuple(p["ips"]),
                           tuple(ServedPort(x["protocol"], x["port"]) for x in p["ports"]),
                           tuple(p["services"]), p["client"]) for p in data["pods"]),
            hosts=tuple(Host(h["name"], tuple(h["ips"]), h["note"]) for h in data["hosts"]),
            network=Network(tuple(data["network"]["cidrs"]), tuple(data["network"]["router_ips"]),
                            tuple((a, n) for a, n in data["network"]["routes"])),
            notes=tuple(data.get("notes", ())),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"a lab record's topology is not readable: {e!r}") from e


# -- building a topology from cluster objects ---------------------------------------------------------


@dataclass
class _PodDraft:
    ip: str
    node: str
    service: str
    ports: list[ServedPort] = field(default_factory=list)
    services: list[str] = field(default_factory=list)


def from_cluster(state: ClusterState, cluster_cidrs: Sequence[str] = ()) -> Topology:
    """The lab that hosts ``state``: a pod per endpoint address, nodes from nodeName and Nodes."""
    notes: list[str] = []
    node_names = _node_names(state)
    if not node_names:
        node_names = ["node-1"]
        notes.append("no endpoint names a node and there is no Node object: one node, node-1")
    drafts = _pod_drafts(state, node_names[0], notes)
    taken = _taken_addresses(state)
    source_ranges = _source_ranges(state)

    node_cidrs = _pod_cidrs(state, node_names, drafts, cluster_cidrs, taken, notes)
    pod_ips = {d.ip for d in drafts}
    nodes = []
    for name in node_names:
        nets = [ipaddress.ip_network(c) for c in node_cidrs[name]]
        gws = tuple(f"{_free_host(net, pod_ips, from_top=False)}/{net.prefixlen}" for net in nets)
        nodes.append(Node(name, (), tuple(node_cidrs[name]), gws))

    pods = _named_pods(drafts)
    used = pod_ips | {g.split("/")[0] for n in nodes for g in n.gateways}
    for n in nodes:
        ips = []
        for family in FAMILIES:
            cidr = next((c for c in n.pod_cidrs if family_of(c) == family), None)
            if cidr is not None:
                ip = _free_host(ipaddress.ip_network(cidr), used, from_top=True)
                used.add(ip)
                ips.append(ip)
        pods.append(Pod(f"client-{n.name}", n.name, tuple(ips), client=True))

    cluster_nets = [*(ipaddress.ip_network(c) for cs in node_cidrs.values() for c in cs),
                    *(ipaddress.ip_network(c, strict=False) for c in cluster_cidrs)]
    lab_nets = {family: _pick_network(family, taken, cluster_nets + source_ranges) for family in FAMILIES}
    nodes = [Node(n.name, tuple(str(lab_nets[f].network_address + 10 + i) for f in FAMILIES), n.pod_cidrs,
                  n.gateways) for i, n in enumerate(nodes)]
    network = Network(
        cidrs=tuple(str(lab_nets[f]) for f in FAMILIES),
        router_ips=tuple(str(lab_nets[f].network_address + 1) for f in FAMILIES),
        routes=tuple((ip, nodes[0].name) for ip in _routed_ips(state)),
    )
    for n in state.nodes:
        if n.internal_ips:
            notes.append(f"node {n.name}: its InternalIPs are not used; the lab gives it "
                         f"{', '.join(next(x.ips for x in nodes if x.name == n.name))}")
    hosts = _external_hosts(source_ranges, taken, cluster_nets + list(lab_nets.values()), notes)
    return Topology(tuple(nodes), tuple(pods), tuple(hosts), network, tuple(notes))


def _node_names(state: ClusterState) -> list[str]:
    names: list[str] = []
    for s in state.endpoint_slices:
        for e in s.endpoints:
            if e.node_name and e.node_name not in names:
                names.append(e.node_name)
    for n in state.nodes:
        if n.name not in names:
            names.append(n.name)
    return names


def _pod_drafts(state: ClusterState, default_node: str, notes: list[str]) -> list[_PodDraft]:
    by_ip: dict[str, _PodDraft] = {}
    skipped: set[str] = set()
    for s in state.endpoint_slices:
        if s.address_type not in FAMILIES or not s.service_name:
            continue
        service = f"{s.namespace}/{s.service_name}"
        ports = []
        for p in s.ports:
            if p.port is None:
                continue
            if p.protocol not in SERVED_PROTOCOLS:
                skipped.add(f"{service} {p.protocol.lower()}/{p.port}")
                continue
            ports.append(ServedPort(p.protocol, p.port))
        for e in s.endpoints:
            for ip in e.addresses:
                d = by_ip.get(ip)
                if d is None:
                    node = e.node_name or default_node
                    if not e.node_name:
                        notes.append(f"endpoint {ip} of {service} names no node: placed on {node}")
                    d = by_ip[ip] = _PodDraft(ip, node, s.service_name)
                elif e.node_name and e.node_name != d.node:
                    raise InputError(f"endpoint {ip} is on node {d.node} in one slice and {e.node_name} in another")
                for p in ports:
                    if p not in d.ports:
                        d.ports.append(p)
                if service not in d.services:
                    d.services.append(service)
    for what in sorted(skipped):
        notes.append(f"{what}: no lab server speaks it (this kernel has no SCTP); the pod exists without it")
    return list(by_ip.values())


def _named_pods(drafts: list[_PodDraft]) -> list[Pod]:
    counts: dict[str, int] = {}
    pods = []
    for d in drafts:
        k = counts.get(d.service, 0)
        counts[d.service] = k + 1
        pods.append(Pod(f"{d.service}-{k}", d.node, (d.ip,), tuple(d.ports), tuple(d.services)))
    names = [p.name for p in pods]
    if len(set(names)) != len(names):  # the same service name in two namespaces
        pods = [Pod(f"{d.services[0].replace('/', '-')}-{p.name.rsplit('-', 1)[1]}", p.node, p.ips, p.ports,
                    p.services) for d, p in zip(drafts, pods, strict=True)]
    return pods


def _taken_addresses(state: ClusterState) -> set[IPAddress]:
    out: set[IPAddress] = set()
    for svc in state.services:
        for ip in (*svc.cluster_ips, *svc.external_ips, *(i.ip for i in svc.load_balancer_ingress)):
            try:
                out.add(ipaddress.ip_address(ip))
            except ValueError:
                continue
    for s in state.endpoint_slices:
        for e in s.endpoints:
            for ip in e.addresses:
                try:
                    out.add(ipaddress.ip_address(ip))
                except ValueError:
                    continue
    for n in state.nodes:
        for ip in (*n.internal_ips, *n.external_ips):
            out.add(ipaddress.ip_address(ip))
    return out


def _source_ranges(state: ClusterState) -> list[IPNetwork]:
    out: list[IPNetwork] = []
    for svc in state.services:
        for r in svc.load_balancer_source_ranges:
            try:
                net = ipaddress.ip_network(r.strip(), strict=False)
            except ValueError:
                continue
            if net not in out and net.prefixlen > 0:
                out.append(net)
    return out


def _routed_ips(state: ClusterState) -> list[str]:
    ips: list[str] = []
    for svc in state.services:
        for ip in (*(i.ip for i in svc.load_balancer_ingress), *svc.external_ips):
            if ip not in ips:
                ips.append(ip)
    return ips


def _pod_cidrs(state: ClusterState, node_names: list[str], drafts: list[_PodDraft], cluster_cidrs: Sequence[str],
               taken: set[IPAddress], notes: list[str]) -> dict[str, list[str]]:
    given = {n.name: [str(ipaddress.ip_network(c, strict=False)) for c in n.pod_cidrs] for n in state.nodes}
    cidrs: dict[str, list[str]] = {name: list(given.get(name, ())) for name in node_names}
    owner: dict[IPNetwork, str] = {ipaddress.ip_network(c): name for name, cs in cidrs.items() for c in cs}
    for d in drafts:
        addr = ipaddress.ip_address(d.ip)
        family = family_of(d.ip)
        mine = [ipaddress.ip_network(c) for c in cidrs[d.node] if family_of(c) == family]
        if any(addr in c for c in mine):
            continue
        if d.node in given and any(family_of(c) == family for c in given[d.node]):
            raise InputError(f"endpoint {d.ip} is on node {d.node}, outside its podCIDRs {', '.join(given[d.node])}")
        net = ipaddress.ip_network(f"{d.ip}/{POD_PREFIX[family]}", strict=False)
        other = owner.get(net)
        if other is None:
            other = next((o for c, o in owner.items() if c.version == net.version and c.overlaps(net)), None)
        if other is not None and other != d.node:
            raise InputError(f"pods of nodes {other} and {d.node} share {net}: say which node owns what with "
                             "Node objects that carry spec.podCIDRs")
        owner[net] = d.node
        cidrs[d.node].append(str(net))
    for family in FAMILIES:
        pool = next((ipaddress.ip_network(c, strict=False) for c in cluster_cidrs if family_of(c) == family),
                    ipaddress.ip_network(DEFAULT_POD_POOL[family]))
        for name in node_names:
            if any(family_of(c) == family for c in cidrs[name]):
                continue
            net = _free_subnet(pool, POD_PREFIX[family], list(owner), taken)
            if net is None:
                raise InputError(f"no free /{POD_PREFIX[family]} left in {pool} for node {name}'s {family} pods")
            owner[net] = name
            cidrs[name].append(str(net))
            notes.append(f"node {name}: {family} pod CIDR {net} (for its client pod)")
    return cidrs


def _free_subnet(pool: IPNetwork, prefix: int, used: list[IPNetwork], taken: set[IPAddress]) -> IPNetwork | None:
    if pool.prefixlen > prefix:
        return None
    for i, net in enumerate(pool.subnets(new_prefix=prefix)):
        if i > 4096:
            return None
        if i == 0:
            continue  # the first /24 of a cluster CIDR often is a node's: leave it
        if any(net.overlaps(u) for u in used) or any(a in net for a in taken):
            continue
        return net
    return None


def _free_host(net: IPNetwork, used: Iterable[str], *, from_top: bool) -> str:
    used_set = {str(u) for u in used}
    first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
    top = min(last, first + 253)  # .254 in a /24, ::fe in a /64
    candidates = range(top, first - 1, -1) if from_top else range(first, last + 1)
    for i, n in enumerate(candidates):
        if i > 65536:
            break
        ip = str(ipaddress.ip_address(n))
        if ip not in used_set:
            return ip
    raise InputError(f"no free address left in {net}")


def _pick_network(family: str, taken: set[IPAddress], avoid: list[IPNetwork]) -> IPNetwork:
    for text in LAB_NETWORKS[family]:
        net = ipaddress.ip_network(text)
        if any(a in net for a in taken) or any(net.overlaps(o) for o in avoid if o.version == net.version):
            continue
        return net
    raise InputError(f"every candidate {family} lab network ({', '.join(LAB_NETWORKS[family])}) overlaps an "
                     "address of the cluster")


def _external_hosts(ranges: list[IPNetwork], taken: set[IPAddress], avoid: list[IPNetwork],
                    notes: list[str]) -> list[Host]:
    def usable(addr: IPAddress) -> bool:
        return addr not in taken and not any(addr in o for o in avoid if o.version == addr.version)

    plain = []
    for family in FAMILIES:
        for text in EXTERNAL_CANDIDATES[family]:
            addr = ipaddress.ip_address(text)
            if usable(addr) and not any(addr in r for r in ranges if r.version == addr.version):
                plain.append(text)
                break
    hosts = [Host("ext", tuple(plain), "outside every loadBalancerSourceRange")]
    inside = []
    for r in ranges:
        if any(ipaddress.ip_address(ip) in r for ip in inside):
            continue
        offset = 10 if r.num_addresses > 16 else (1 if r.num_addresses > 2 else 0)
        addr = r.network_address + offset
        if not usable(addr):
            notes.append(f"no external host inside loadBalancerSourceRange {r}: {addr} is taken or in the cluster")
            continue
        inside.append(str(addr))
        name = "ext-allowed" if len(ranges) == 1 else f"ext-allowed-{len(inside)}"
        hosts.append(Host(name, (str(addr),), f"inside loadBalancerSourceRange {r}"))
    return hosts
