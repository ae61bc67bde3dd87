"""Hypothesis strategies for cluster objects, compiler options and iptables rulesets.

Reusable by any test: ``from tests.strategies import compile_inputs, rulesets``. Strategies are
built once and cached (hypothesis validates every new strategy object, which dominated the run
time); helpers named ``draw_*`` take a ``draw`` and are for use inside other composites.

Cluster objects (what the brain reads):
    dns1123_labels, dns1035_labels, dns1123_subdomains   valid Kubernetes names
    services(family)              a Service whose cluster IP(s) include ``family`` ("IPv4", "IPv6")
    endpoints(family)             an endpoint: every combination of conditions (None included), nodes
    draw_endpoint_slices(draw, svc, family)   0..2 slices for a Service (duplicates across slices)
    cluster_states(family)        0..15 Services with their slices, plus stray slices
    iptables_options(family)      IptablesOptions variations (mark bit, detectors, nodePortAddresses, ...)
    compile_inputs(kernel=False)  (state, family, options) in one draw; kernel=True leaves out SCTP

Rulesets (what the parser reads):
    rules(family, jump_targets)   one Rule: core options, match modules, a target
    rulesets(family)              tables of built-in and user chains filled with such rules

Manifests (what a user writes):
    longest_label, longest_subdomain          the longest valid names, every allowed character
    service_manifest, endpoint_slice_manifest decoded-YAML dicts for parse_object

All addresses are drawn from documentation/private ranges so nothing here names a real host.
"""

from __future__ import annotations

import ipaddress
import string
from functools import cache

from hypothesis import strategies as st

from proxyctl.backends.iptables.options import (
    CT_INVALID_COUNTER,
    LOCALHOST_NODEPORT_COUNTER,
    IptablesOptions,
    LocalDetector,
    masquerade_mark,
)
from proxyctl.cluster.objects import (
    ClusterState,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    LoadBalancerIngress,
    Service,
    ServicePortSpec,
)
from proxyctl.rules.iptables.canonical import MODULE_OPTIONS
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Opt, Rule, Ruleset

FAMILIES = ("IPv4", "IPv6")
NODE_NAME = "node-a"
OTHER_NODES = ("node-b", "worker-2.example.com")
ZONES = ("", "zone-a", "zone-b")

# Address pools per family: cluster IPs, pod (endpoint) IPs, external/LB IPs, node IPs.
POOLS = {
    "IPv4": {"service": "10.96.0.0/16", "pod": "10.244.0.0/16", "external": "203.0.113.0/24",
             "node": "192.168.0.0/24", "cluster_cidr": "10.244.0.0/16", "loopback": "127.0.0.1"},
    "IPv6": {"service": "fd00:10:96::/112", "pod": "fd00:10:244::/112", "external": "2001:db8:ff::/120",
             "node": "2001:db8:1::/120", "cluster_cidr": "fd00:10:244::/56", "loopback": "::1"},
}

_LOWER_DIGITS = string.ascii_lowercase + string.digits


def other_family(family: str) -> str:
    return "IPv6" if family == "IPv4" else "IPv4"


# --- names ---------------------------------------------------------------------------------------

@cache
def _label(first: str, max_size: int) -> st.SearchStrategy[str]:
    """``first`` + [-a-z0-9]* ending in [a-z0-9], at most ``max_size`` long."""
    middle = st.text(_LOWER_DIGITS + "-", max_size=max_size - 2)
    last = st.sampled_from(_LOWER_DIGITS)
    head = st.sampled_from(first)
    single = head
    longer = st.tuples(head, middle, last).map("".join)
    return st.one_of(single, longer) if max_size >= 2 else single


@cache
def dns1123_labels(max_size: int = 63) -> st.SearchStrategy[str]:
    """Namespaces, port names: lowercase letters, digits, '-', alphanumeric at both ends."""
    return _label(_LOWER_DIGITS, max_size)


@cache
def dns1035_labels(max_size: int = 63) -> st.SearchStrategy[str]:
    """Service names: as a DNS-1123 label but starting with a letter."""
    return _label(string.ascii_lowercase, max_size)


@cache
def dns1123_subdomains(max_size: int = 253) -> st.SearchStrategy[str]:
    """EndpointSlice and Node names: dot-separated DNS-1123 labels."""
    return st.lists(dns1123_labels(20), min_size=1, max_size=4).map(".".join).filter(lambda s: len(s) <= max_size)


@cache
def namespaces() -> st.SearchStrategy[str]:
    # Mostly a small pool, so services of the same name in different namespaces and hash inputs
    # that share prefixes both turn up.
    return st.one_of(st.sampled_from(["default", "ns1", "kube-system", "a"]), dns1123_labels(20))


@cache
def service_names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["svc", "svc1", "web", "dns"]), dns1035_labels(20))


@cache
def port_names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["http", "https", "p80", "dns", "metrics"]), dns1123_labels(15))


# --- addresses -----------------------------------------------------------------------------------

@cache
def ips(family: str, pool: str) -> st.SearchStrategy[str]:
    """An address of a pool (never the network or last address of it)."""
    net = ipaddress.ip_network(POOLS[family][pool])
    return st.integers(1, net.num_addresses - 2).map(lambda i: str(net[i]))


@cache
def sloppy_cidrs(family: str) -> st.SearchStrategy[str]:
    """loadBalancerSourceRanges as users write them: canonical, with host bits, with spaces and
    (IPv4) leading zeros, all of which kube-proxy trims and canonicalises."""
    bits = 32 if family == "IPv4" else 128
    pool = st.one_of(ips(family, "external"), ips(family, "node"), ips(family, "pod"))

    @st.composite
    def draw_cidr(draw) -> str:
        ip = draw(pool)
        plen = draw(st.integers(bits - 12 if family == "IPv4" else bits - 24, bits))
        text = f"{ip}/{plen}"
        style = draw(st.sampled_from(["plain", "network", "space", "zeros"]))
        if style == "network":
            text = str(ipaddress.ip_network(text, strict=False))
        elif style == "space":
            text = " " + text + draw(st.sampled_from(["", " "]))
        elif style == "zeros" and family == "IPv4":
            text = ".".join(o.zfill(3) for o in ip.split(".")) + f"/{plen:03d}"
        return text

    return draw_cidr()


# --- services ------------------------------------------------------------------------------------
# Composites that take per-call arguments are plain helpers over ``draw`` (a new strategy object per
# call costs hypothesis a validation each time); strategies themselves are built once and cached.

PORTS = st.integers(1, 65535)
NODE_PORTS = st.one_of(st.just(0), st.integers(30000, 32767))
SERVICE_TYPES = st.sampled_from(["", "ClusterIP", "NodePort", "LoadBalancer"])
POLICIES = st.sampled_from(["", "Cluster", "Local"])
AFFINITIES = st.sampled_from(["", "None", "ClientIP"])
TIMEOUTS = st.one_of(st.just(0), st.integers(1, 86400))
DUAL = st.sampled_from(["single", "single", "primary", "secondary"])
TARGET_PORTS = st.sampled_from(["", "8080", "http"])
IP_MODES = st.sampled_from(["", "", "VIP", "Proxy"])


def draw_service_ports(draw, protocols: tuple[str, ...], with_node_ports: bool) -> tuple[ServicePortSpec, ...]:
    """1..3 ports; names unique (and required when there are several), (protocol, port) unique."""
    count = draw(st.integers(1, 3))
    if count == 1:
        names = [draw(st.one_of(st.just(""), port_names()))]
    else:
        names = draw(st.lists(port_names(), min_size=count, max_size=count, unique=True))
    out = []
    used: set[tuple[str, int]] = set()
    proto = st.sampled_from(protocols)
    for name in names:
        protocol = draw(proto)
        port = draw(PORTS)
        while (protocol, port) in used:
            port = port % 65535 + 1
        used.add((protocol, port))
        node_port = draw(NODE_PORTS) if with_node_ports else 0
        out.append(ServicePortSpec(name=name, protocol=protocol, port=port, node_port=node_port,
                                   target_port=draw(TARGET_PORTS)))
    return tuple(out)


def draw_service(draw, family: str, namespace: str, name: str,
                 protocols: tuple[str, ...] = ("TCP", "UDP", "SCTP")) -> Service:
    """A Service that has a cluster IP of ``family`` (and sometimes one of the other family first)."""
    other = other_family(family)
    svc_type = draw(SERVICE_TYPES)
    external = svc_type in ("NodePort", "LoadBalancer")
    own = draw(ips(family, "service"))
    dual = draw(DUAL)
    cluster_ips = (own,) if dual == "single" else (
        (own, draw(ips(other, "service"))) if dual == "primary" else (draw(ips(other, "service")), own))
    # Addresses of the other family are there to be dropped; most are of the family compiled.
    any_family = st.one_of(ips(family, "external"), ips(family, "external"), ips(other, "external"))
    external_ips = tuple(draw(st.lists(any_family, max_size=2, unique=True)))
    ingress: tuple[LoadBalancerIngress, ...] = ()
    ranges: tuple[str, ...] = ()
    if svc_type == "LoadBalancer":
        vips = draw(st.lists(any_family, min_size=draw(st.integers(0, 1)), max_size=2, unique=True))
        ingress = tuple(LoadBalancerIngress(ip, draw(IP_MODES)) for ip in vips)
        cidrs = st.one_of(sloppy_cidrs(family), sloppy_cidrs(family), sloppy_cidrs(other))
        ranges = tuple(draw(st.lists(cidrs, max_size=3)))
    affinity = draw(AFFINITIES)
    etp = draw(POLICIES)
    hc = draw(NODE_PORTS) if (svc_type == "LoadBalancer" and etp == "Local") else 0
    return Service(
        namespace=namespace,
        name=name,
        cluster_ips=cluster_ips,
        ports=draw_service_ports(draw, protocols, external),
        type=svc_type,
        external_ips=external_ips,
        load_balancer_ingress=ingress,
        load_balancer_source_ranges=ranges,
        session_affinity=affinity,
        session_affinity_timeout=draw(TIMEOUTS) if affinity == "ClientIP" else 0,
        external_traffic_policy=etp,
        internal_traffic_policy=draw(POLICIES),
        health_check_node_port=hc,
    )


@cache
def services(family: str, protocols: tuple[str, ...] = ("TCP", "UDP", "SCTP")) -> st.SearchStrategy[Service]:
    """One Service with a cluster IP of ``family`` (see draw_service)."""
    return st.composite(lambda draw: draw_service(draw, family, draw(namespaces()), draw(service_names()),
                                                  protocols))()


# --- endpoints -----------------------------------------------------------------------------------

CONDITION = (None, True, False)
NODES = (NODE_NAME, NODE_NAME, "", *OTHER_NODES)
# One integer per endpoint for its conditions, node and zone: it shrinks towards all-unset on this node.
_SHAPES = len(CONDITION) ** 3 * len(NODES) * len(ZONES)


def _endpoint_shape(code: int) -> dict:
    c1, code = code % 3, code // 3
    c2, code = code % 3, code // 3
    c3, code = code % 3, code // 3
    node, code = code % len(NODES), code // len(NODES)
    return {"ready": CONDITION[c1], "serving": CONDITION[c2], "terminating": CONDITION[c3],
            "node_name": NODES[node], "zone": ZONES[code % len(ZONES)]}


@cache
def endpoints(family: str) -> st.SearchStrategy[Endpoint]:
    """An endpoint of ``family``: usually one address, every combination of conditions (None
    included), on this node, another node or none."""
    addresses = st.one_of(ips(family, "pod").map(lambda ip: (ip,)),
                          st.tuples(ips(family, "pod"), ips(family, "pod")))
    return st.builds(lambda a, code: Endpoint(addresses=a, **_endpoint_shape(code)),
                     addresses, st.integers(0, _SHAPES - 1))


def draw_endpoint_slices(draw, svc: Service, family: str, max_endpoints: int = 12) -> list[EndpointSlice]:
    """0..2 slices of ``family`` for ``svc``: ports named as the Service's (sometimes one missing or
    with no port number), 0..max_endpoints endpoints, the second slice sometimes repeating the
    first one's addresses with other conditions or nodes."""
    out: list[EndpointSlice] = []
    pool: list[Endpoint] = []
    eps_strategy = st.lists(endpoints(family), max_size=max_endpoints)
    for i in range(draw(st.integers(0, 2))):
        ports = []
        for p in svc.ports:
            shape = draw(st.integers(0, 19))
            if shape == 19:
                continue  # a port the slice does not carry
            number = None if shape == 18 else draw(PORTS)
            ports.append(EndpointPort(name=p.name, port=number, protocol=p.protocol))
        eps = draw(eps_strategy)
        if pool and draw(st.booleans()):
            again = draw(st.lists(st.sampled_from(pool), max_size=3))
            eps += [Endpoint(addresses=e.addresses, **_endpoint_shape(draw(st.integers(0, _SHAPES - 1))))
                    for e in again]
        pool.extend(eps)
        out.append(EndpointSlice(
            namespace=svc.namespace, name=f"{svc.name}-{family.lower()}-{i}", service_name=svc.name,
            address_type=family, endpoints=tuple(eps), ports=tuple(ports)))
    return out


@cache
def cluster_states(family: str, *, protocols: tuple[str, ...] = ("TCP", "UDP", "SCTP"),
                   max_services: int = 15, max_endpoints: int = 12) -> st.SearchStrategy[ClusterState]:
    """Services (unique namespace/name) with their slices of both families, plus slices of a
    Service that does not exist and slices with no service-name label."""
    keys = st.lists(st.tuples(namespaces(), service_names()), max_size=max_services, unique=True)

    @st.composite
    def states(draw) -> ClusterState:
        svcs = [draw_service(draw, family, ns, name, protocols) for ns, name in draw(keys)]
        slices: list[EndpointSlice] = []
        for svc in svcs:
            slices += draw_endpoint_slices(draw, svc, family, max_endpoints)
            if len(svc.cluster_ips) == 2 and draw(st.booleans()):
                slices += draw_endpoint_slices(draw, svc, other_family(family), 3)
        if draw(st.integers(0, 4)) == 0:
            ghost = Service("ghost", "gone", (draw(ips(family, "service")),), (ServicePortSpec("", "TCP", 80),))
            for sl in draw_endpoint_slices(draw, ghost, family, 3):
                slices.append(sl)
                slices.append(EndpointSlice(sl.namespace, sl.name + "-unlabelled", "", sl.address_type,
                                            sl.endpoints, sl.ports))
        return ClusterState(services=tuple(svcs), endpoint_slices=tuple(slices))

    return states()


# --- compiler options ----------------------------------------------------------------------------

@cache
def iptables_options(family: str) -> st.SearchStrategy[IptablesOptions]:
    return _iptables_options(family)


@st.composite
def _iptables_options(draw, family: str) -> IptablesOptions:
    detector = draw(st.sampled_from(["none", "cidr", "interface", "prefix"]))
    det = {
        "none": LocalDetector(),
        "cidr": LocalDetector.by_cidr(POOLS[family]["cluster_cidr"]),
        "interface": LocalDetector.by_interface("cbr0"),
        "prefix": LocalDetector.by_interface("veth+"),
    }[detector]
    match_all = draw(st.booleans())
    node_ips = st.one_of(ips(family, "node"), ips(family, "external"), st.just(POOLS[family]["loopback"]))
    node_port_ips = () if match_all else tuple(draw(st.lists(node_ips, min_size=1, max_size=3, unique=True)))
    return IptablesOptions(
        family=family,
        masquerade_mark=masquerade_mark(draw(st.sampled_from([14, 14, 0, 1, 15, 30, 31]))),
        masquerade_all=draw(st.booleans()),
        localhost_node_ports=draw(st.booleans()),
        detector=det,
        node_port_match_all=match_all,
        node_port_ips=node_port_ips,
        node_ip=draw(st.one_of(st.none(), ips(family, "node"), ips(family, "external"))),
        random_fully=draw(st.booleans()),
        nfacct=frozenset(draw(st.sets(st.sampled_from([CT_INVALID_COUNTER, LOCALHOST_NODEPORT_COUNTER])))),
        tcp_be_liberal=draw(st.booleans()),
        large_cluster_threshold=draw(st.sampled_from([1000, 1000, 1000, 4])),
    )


@cache
def compile_inputs(*, kernel: bool = False, max_services: int = 15,
                   family: str | None = None) -> st.SearchStrategy[tuple[ClusterState, str, IptablesOptions]]:
    """(state, family, options). ``kernel=True`` keeps to TCP and UDP (no SCTP in this kernel)."""
    protocols = ("TCP", "UDP") if kernel else ("TCP", "UDP", "SCTP")
    per_family = [st.tuples(cluster_states(fam, protocols=protocols, max_services=max_services), st.just(fam),
                            iptables_options(fam))
                  for fam in ((family,) if family else FAMILIES)]
    return st.one_of(per_family)


# --- rulesets for the parser ---------------------------------------------------------------------

CHAIN_CHARS = string.ascii_uppercase + string.digits + "-_"
TARGETS_SIMPLE = ("ACCEPT", "DROP", "RETURN")


@cache
def chain_names() -> st.SearchStrategy[str]:
    """User chain names: 1..28 characters, starting with a letter, never a built-in name."""
    builtin = {c for cs in BUILTIN_CHAINS.values() for c in cs}
    return st.tuples(st.sampled_from(string.ascii_uppercase), st.text(CHAIN_CHARS, max_size=27)).map(
        "".join).filter(lambda n: n not in builtin and n not in TARGETS_SIMPLE)


# Comment text: spaces, quotes, backslashes, punctuation; never a newline (iptables cannot hold one).
COMMENT_ALPHABET = string.ascii_letters + string.digits + " \t\"\\/:.,;=()[]{}<>#*'_+@$%&|~^`?-!é"
comments = st.text(COMMENT_ALPHABET, max_size=60)


@cache
def _addr(family: str, with_prefix: bool) -> st.SearchStrategy[str]:
    pool = st.one_of(ips(family, "pod"), ips(family, "external"), ips(family, "node"))
    if not with_prefix:
        return pool
    bits = 32 if family == "IPv4" else 128
    return st.one_of(pool, st.tuples(pool, st.integers(0, bits)).map(lambda t: f"{t[0]}/{t[1]}"))


PORT = st.integers(0, 65535).map(str)
PORT_RANGE = st.one_of(PORT, st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(
    lambda t: f"{min(t)}:{max(t)}"))
HEX = st.integers(0, 0xFFFFFFFF).map(hex)
IFACE = st.sampled_from(["eth0", "lo", "cbr0", "veth+", "eth0.100", "br-1a2b"])


@cache
def module_values(family: str) -> dict[str, dict[str, st.SearchStrategy[str | None]]]:
    """For each module of canonical.MODULE_OPTIONS, plausible values of each option (None = flag)."""
    none = st.none()
    ctstate = st.lists(st.sampled_from(["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"]),
                       min_size=1, max_size=3, unique=True).map(",".join)
    addr = _addr(family, True)
    return {
        "tcp": {"--sport": PORT_RANGE, "--dport": PORT_RANGE,
                "--tcp-flags": st.sampled_from(["SYN,RST,ACK,FIN SYN", "ALL NONE", "SYN,ACK SYN"]),
                "--syn": none, "--tcp-option": st.integers(0, 255).map(str)},
        "udp": {"--sport": PORT_RANGE, "--dport": PORT_RANGE},
        "sctp": {"--sport": PORT_RANGE, "--dport": PORT_RANGE,
                 "--chunk-types": st.sampled_from(["all INIT", "any DATA,INIT", "only ABORT"])},
        "icmp": {"--icmp-type": st.sampled_from(["8", "echo-request", "3/4", "any"])},
        "icmp6": {"--icmpv6-type": st.sampled_from(["128", "echo-request", "1/4"])},
        "comment": {"--comment": comments},
        "addrtype": {"--src-type": st.sampled_from(["LOCAL", "UNICAST", "LOCAL,BROADCAST"]),
                     "--dst-type": st.sampled_from(["LOCAL", "MULTICAST", "BLACKHOLE"]),
                     "--limit-iface-in": none, "--limit-iface-out": none},
        "conntrack": {"--ctstate": ctstate, "--ctproto": st.sampled_from(["tcp", "udp", "6"]),
                      "--ctorigsrc": addr, "--ctorigdst": addr, "--ctreplsrc": addr, "--ctrepldst": addr,
                      "--ctorigsrcport": PORT_RANGE, "--ctorigdstport": PORT_RANGE,
                      "--ctreplsrcport": PORT_RANGE, "--ctrepldstport": PORT_RANGE,
                      "--ctstatus": st.sampled_from(["ASSURED", "EXPECTED,SEEN_REPLY", "CONFIRMED", "NONE"]),
                      "--ctexpire": st.sampled_from(["10", "10:20"]),
                      "--ctdir": st.sampled_from(["ORIGINAL", "REPLY"])},
        "state": {"--state": ctstate},
        "mark": {"--mark": st.one_of(HEX, st.tuples(HEX, HEX).map("/".join), st.integers(0, 999).map(str))},
        "statistic": {"--mode": st.sampled_from(["random", "nth"]),
                      "--probability": st.floats(0, 1).map(lambda p: f"{p:0.10f}"),
                      "--every": st.integers(1, 10).map(str), "--packet": st.integers(0, 9).map(str)},
        "recent": {"--set": none, "--rcheck": none, "--update": none, "--remove": none,
                   "--seconds": st.integers(1, 86400).map(str), "--reap": none,
                   "--hitcount": st.integers(1, 20).map(str), "--rttl": none,
                   "--name": st.one_of(chain_names(), st.just("DEFAULT")),
                   "--mask": st.sampled_from(["255.255.255.255", "255.255.0.0"] if family == "IPv4"
                                             else ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff::"]),
                   "--rsource": none, "--rdest": none},
        "nfacct": {"--nfacct-name": st.sampled_from([CT_INVALID_COUNTER, LOCALHOST_NODEPORT_COUNTER, "acct-1"])},
        "multiport": {"--sports": st.lists(PORT, min_size=1, max_size=4).map(",".join),
                      "--dports": st.lists(PORT_RANGE, min_size=1, max_size=4).map(",".join),
                      "--ports": st.lists(PORT, min_size=1, max_size=4).map(",".join)},
        "set": {"--match-set": st.tuples(chain_names(), st.sampled_from(["src", "dst", "dst,dst", "src,dst"])).map(
                    " ".join),
                "--return-nomatch": none, "--update-counters": none, "--update-subcounters": none,
                "--packets-eq": st.integers(0, 99).map(str), "--packets-lt": st.integers(0, 99).map(str),
                "--packets-gt": st.integers(0, 99).map(str), "--bytes-eq": st.integers(0, 99).map(str),
                "--bytes-lt": st.integers(0, 99).map(str), "--bytes-gt": st.integers(0, 99).map(str)},
        "physdev": {"--physdev-in": IFACE, "--physdev-is-in": none, "--physdev-out": IFACE,
                    "--physdev-is-out": none, "--physdev-is-bridged": none},
        "ipvs": {"--ipvs": none, "--vproto": st.sampled_from(["tcp", "udp"]), "--vaddr": addr,
                 "--vport": PORT, "--vdir": st.sampled_from(["ORIGINAL", "REPLY"]),
                 "--vmethod": st.sampled_from(["GATE", "IPIP", "MASQ"]), "--vportctl": PORT},
        "socket": {"--transparent": none, "--nowildcard": none, "--restore-skmark": none},
        "iprange": {"--src-range": st.tuples(ips(family, "pod"), ips(family, "pod")).map("-".join),
                    "--dst-range": st.tuples(ips(family, "pod"), ips(family, "pod")).map("-".join)},
        "limit": {"--limit": st.sampled_from(["5/sec", "10/minute", "1/hour", "3/day"]),
                  "--limit-burst": st.integers(1, 100).map(str)},
        "owner": {"--uid-owner": st.integers(0, 65535).map(str), "--gid-owner": st.integers(0, 65535).map(str),
                  "--socket-exists": none},
        "pkttype": {"--pkt-type": st.sampled_from(["unicast", "broadcast", "multicast"])},
    }


# Options that iptables lets a user negate, per module (used only to place '!' plausibly).
NEGATABLE = {"--sport", "--dport", "--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--mark",
             "--src-type", "--dst-type", "--state", "--sports", "--dports", "--match-set", "--physdev-in",
             "--physdev-out", "--src-range", "--dst-range", "--uid-owner", "--pkt-type", "--icmp-type"}


_BOOL = st.booleans()
_QUARTER = st.integers(0, 3)
_TENTH = st.integers(0, 9)
_PROTOS = st.sampled_from(["tcp", "udp", "sctp", "icmp", "17"])
_MODULES = st.lists(st.sampled_from(sorted(MODULE_OPTIONS)), max_size=3, unique=True)
_MODULE_FLAGS = {m: st.lists(st.sampled_from(f), min_size=1 if m == "comment" else 0, max_size=3, unique=True)
                 for m, f in MODULE_OPTIONS.items()}
_KINDS = st.sampled_from(["none", "simple", "REJECT", "DNAT", "SNAT", "MASQUERADE", "MARK", "LOG", "jump", "goto"])
_SIMPLE = st.sampled_from(TARGETS_SIMPLE)
_REJECT_WITH = {"IPv4": st.sampled_from(["icmp-port-unreachable", "tcp-reset", "icmp-host-prohibited"]),
                "IPv6": st.sampled_from(["icmp6-port-unreachable", "tcp-reset", "icmp6-adm-prohibited"])}
_MASQ_OPTS = st.lists(st.sampled_from([Opt("--random-fully"), Opt("--random"), Opt("--to-ports", "1024-65535")]),
                      max_size=2, unique=True)
_MARK_FLAGS = st.sampled_from(["--set-xmark", "--set-mark", "--or-mark", "--xor-mark", "--and-mark"])
_MARK_PAIR = st.one_of(HEX, st.tuples(HEX, HEX).map("/".join))
_LOG_PREFIX = st.text(string.ascii_letters + ": ", min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and "  " not in s)
_LOG_LEVEL = st.sampled_from(["4", "7", "debug"])
_POLICY = st.sampled_from(["ACCEPT", "DROP"])


@cache
def _host_ports(family: str) -> st.SearchStrategy[str]:
    ip = ips(family, "pod")
    return st.one_of(ip, st.tuples(ip, st.integers(1, 65535)).map(
        lambda t: f"[{t[0]}]:{t[1]}" if ":" in t[0] else f"{t[0]}:{t[1]}"))


def draw_rule(draw, family: str, jump_targets: tuple[str, ...] = ()) -> Rule:
    """A rule: core options in any order (some negated), 0..3 distinct match modules with a subset
    of their options, then a target (none, built-in, extension with options, jump or goto)."""
    values = module_values(family)
    addr = _addr(family, True)
    core: list[Opt] = []
    if draw(_BOOL):
        core.append(Opt("-s", draw(addr), draw(_BOOL)))
    if draw(_BOOL):
        core.append(Opt("-d", draw(addr), draw(_BOOL)))
    if draw(_QUARTER) == 0:
        core.append(Opt("-i", draw(IFACE), draw(_BOOL)))
    if draw(_QUARTER) == 0:
        core.append(Opt("-o", draw(IFACE), draw(_BOOL)))
    if draw(_BOOL):
        core.append(Opt("-p", draw(_PROTOS), draw(_BOOL)))
    if family == "IPv4" and draw(_TENTH) == 0:
        core.append(Opt("-f", None, draw(_BOOL)))
    if len(core) > 1:
        core = list(draw(st.permutations(core)))
    matches: list[Opt] = []
    for mod in draw(_MODULES):
        matches.append(Opt("-m", mod))
        for flag in draw(_MODULE_FLAGS[mod]):
            value = draw(values[mod][flag])
            neg = flag in NEGATABLE and draw(_QUARTER) == 0
            matches.append(Opt(flag, value, neg))
    # Core options may come before, between or after the modules, as users write them.
    split = draw(st.integers(0, len(core))) if core else 0
    all_matches = tuple(core[:split] + matches + core[split:])
    kind = draw(_KINDS)
    if kind in ("jump", "goto") and not jump_targets:
        kind = "none"
    target: str | None = None
    topts: tuple[Opt, ...] = ()
    goto = False
    if kind == "simple":
        target = draw(_SIMPLE)
    elif kind == "REJECT":
        target = "REJECT"
        if draw(_BOOL):
            topts = (Opt("--reject-with", draw(_REJECT_WITH[family])),)
    elif kind in ("DNAT", "SNAT"):
        target = kind
        flag = "--to-destination" if kind == "DNAT" else "--to-source"
        topts = (Opt(flag, draw(_host_ports(family))),)
        if draw(_QUARTER) == 0:
            topts += (Opt("--random"),)
    elif kind == "MASQUERADE":
        target = "MASQUERADE"
        topts = tuple(draw(_MASQ_OPTS))
    elif kind == "MARK":
        target = "MARK"
        flag = draw(_MARK_FLAGS)
        topts = (Opt(flag, draw(_MARK_PAIR if flag in ("--set-xmark", "--set-mark") else HEX)),)
    elif kind == "LOG":
        target = "LOG"
        topts = (Opt("--log-prefix", draw(_LOG_PREFIX)),)
        if draw(_BOOL):
            topts += (Opt("--log-level", draw(_LOG_LEVEL)),)
    elif kind in ("jump", "goto"):
        target = draw(st.sampled_from(jump_targets))
        goto = kind == "goto"
    return Rule(all_matches, target, topts, goto)


@cache
def rules(family: str, jump_targets: tuple[str, ...] = ()) -> st.SearchStrategy[Rule]:
    """One rule (see draw_rule)."""
    return st.composite(lambda draw: draw_rule(draw, family, jump_targets))()


_TABLE_NAMES = st.lists(st.sampled_from(sorted(BUILTIN_CHAINS)), min_size=1, max_size=3, unique=True)
_BUILTINS = {t: st.lists(st.sampled_from(c), max_size=2, unique=True) for t, c in BUILTIN_CHAINS.items()}


def draw_ruleset(draw, family: str, max_chains: int = 5, max_rules: int = 5) -> Ruleset:
    rs = Ruleset(family=family)
    users_strategy = st.lists(chain_names(), max_size=max_chains, unique=True)
    for tname in draw(_TABLE_NAMES):
        table = rs.table(tname)
        builtins = draw(_BUILTINS[tname])
        users = draw(users_strategy)
        declared = [(b, draw(_POLICY)) for b in builtins] + [(u, None) for u in users]
        if len(declared) > 1:
            declared = draw(st.permutations(declared))
        for name, policy in declared:
            table.chain(name, policy=policy)
        targets = tuple(users)
        for name in list(table.chains):
            count = draw(st.integers(0, max_rules))
            table.chains[name].rules = [draw_rule(draw, family, targets) for _ in range(count)]
        deleted = draw(st.lists(chain_names(), max_size=2, unique=True))
        table.deleted = [n for n in deleted if n not in table.chains]
    return rs


@cache
def rulesets(family: str | None = None, *, max_chains: int = 5, max_rules: int = 5) -> st.SearchStrategy[Ruleset]:
    """1..3 tables; each declares some built-in chains (with a policy) and user chains, fills them
    with rules that may jump to the table's user chains, and may delete chains it does not declare."""
    families = (family,) if family else FAMILIES
    return st.sampled_from(families).flatmap(
        lambda fam: st.composite(lambda draw: draw_ruleset(draw, fam, max_chains, max_rules))())


# --- manifests (what a user can write) -----------------------------------------------------------

NAME_ALPHABET = string.ascii_lowercase + string.digits + "-"


def longest_label(first: str = "", length: int = 63) -> str:
    """A valid label of ``length`` characters holding every allowed character (a-z, 0-9, '-', and
    '--'), starting with ``first`` (a letter for DNS-1035 names) and ending alphanumeric."""
    body = (first + ("0123456789--abcdefghijklmnopqrstuvwxyz-" * 2))[: length - 1]
    return body + "z" if length > 1 else "z"


def longest_subdomain(length: int = 253) -> str:
    """A valid DNS-1123 subdomain of ``length`` characters: 63-character labels joined by dots."""
    parts, total = [], 0
    while total < length:
        room = length - total - (1 if parts else 0)
        label = longest_label("", min(63, room)) if room > 1 else "x"
        parts.append(label)
        total += len(label) + (1 if len(parts) > 1 else 0)
    return ".".join(parts)


def service_manifest(namespace: str, name: str, ports: list[dict], *, cluster_ips: list[str], svc_type: str = "",
                     external_ips: list[str] = (), ingress: list[str] = (), source_ranges: list[str] = (),
                     affinity: str = "", etp: str = "", itp: str = "", health_check_node_port: int = 0) -> dict:
    """A v1 Service manifest as it comes out of YAML; empty fields are left out."""
    spec: dict = {"clusterIPs": list(cluster_ips), "ports": ports}
    for key, value in (("type", svc_type), ("externalIPs", list(external_ips)),
                       ("loadBalancerSourceRanges", list(source_ranges)), ("sessionAffinity", affinity),
                       ("externalTrafficPolicy", etp), ("internalTrafficPolicy", itp),
                       ("healthCheckNodePort", health_check_node_port)):
        if value:
            spec[key] = value
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": namespace, "name": name}, "spec": spec}
    if ingress:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]}}
    return obj


def endpoint_slice_manifest(namespace: str, name: str, service: str, address_type: str, endpoints: list[dict],
                            ports: list[dict]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": namespace, "name": name, "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type, "endpoints": endpoints, "ports": ports}
