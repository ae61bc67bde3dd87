"""ServicePortViews → the iptables Ruleset of kube-proxy's first full sync on an empty node.

Sections follow kube-proxy's syncProxyRules in order (top-level chains, then per service port:
cluster IP, external IPs, load-balancer IPs, node ports, health-check ports, then the SVC/SVL,
EXT, FW and SEP chains, then the tail rules), each a function returning nothing but rules.
Services are visited in name order so the output is deterministic (kube-proxy's is map order).
"""

from __future__ import annotations

import ipaddress
from functools import cache, lru_cache

from proxyctl.backends.iptables.fragments import Fragment, FragmentCache, Recorder, replay
from proxyctl.backends.iptables.names import KUBELET_FIREWALL, port_proto_hash
from proxyctl.backends.iptables.options import (
    CT_INVALID_COUNTER,
    LOCALHOST_NODEPORT_COUNTER,
    IptablesOptions,
)
from proxyctl.brain.serviceport import EndpointInfo, ServicePortView
from proxyctl.rules.bulk import bulk_allocation
from proxyctl.rules.iptables.model import Opt, Rule, Ruleset, Table

M_COMMENT = Opt("-m", "comment")
M_ADDRTYPE = Opt("-m", "addrtype")
M_CONNTRACK = Opt("-m", "conntrack")
M_MARK = Opt("-m", "mark")
M_STATISTIC = Opt("-m", "statistic")
M_RECENT = Opt("-m", "recent")
M_NFACCT = Opt("-m", "nfacct")
MODE_RANDOM = Opt("--mode", "random")
DST_LOCAL = Opt("--dst-type", "LOCAL")
SRC_LOCAL = Opt("--src-type", "LOCAL")
RCHECK = Opt("--rcheck")
REAP = Opt("--reap")
SET = Opt("--set")

FILTER_TOP_CHAINS = ("services", "external_services", "forward", "nodeports", "proxy_firewall")
NAT_TOP_CHAINS = ("services", "nodeports", "postrouting", "mark_masq")


_new_tuple = tuple.__new__


def R(matches: tuple[Opt, ...], target: str | None = None, target_opts: tuple[Opt, ...] = ()) -> Rule:
    """A Rule without NamedTuple's Python-level __new__ (a 10k-service sync builds 350k)."""
    return _new_tuple(Rule, (matches, target, target_opts, False, None))


@cache
def _proto(protocol: str) -> tuple[Opt, Opt]:
    p = protocol.lower()
    return Opt("-m", p), Opt("-p", p)


def _comment(text: str) -> tuple[Opt, Opt]:
    return M_COMMENT, Opt("--comment", text)


@lru_cache(maxsize=4096)
def probability(n: int) -> str:
    """kube-proxy's ``%0.10f`` of 1/n: the chance of the first of n remaining endpoints."""
    return f"{1.0 / n:0.10f}"


def compile_ruleset(views: list[ServicePortView], opts: IptablesOptions,
                    cache: FragmentCache | None = None) -> Ruleset:
    """The restore payload of a full sync, as a Ruleset with tables filter then nat.

    With a ``cache`` (the daemon keeps one), service ports whose view is unchanged reuse last
    sync's rules instead of being compiled again.
    """
    with bulk_allocation():
        return _compile(views, opts, cache)


def _compile(views: list[ServicePortView], opts: IptablesOptions, cache: FragmentCache | None) -> Ruleset:
    rs = Ruleset(family=opts.family)
    flt, nat = rs.table("filter"), rs.table("nat")
    n = opts.names
    for attr in FILTER_TOP_CHAINS:
        flt.chain(getattr(n, attr))
    for attr in NAT_TOP_CHAINS:
        nat.chain(getattr(n, attr))
    _postrouting(nat, opts)
    if not opts.ipv6 and opts.localhost_node_ports and opts.names.stands_in_for_kube_proxy:
        _kubelet_firewall(flt)
    large = sum(len(v.endpoints) for v in views) > opts.large_cluster_threshold
    if cache is None:
        for view in views:
            _service_port(flt, nat, view, opts, large)
    else:
        shared = frozenset(flt.chains) | frozenset(nat.chains)
        for view in views:
            frag = cache.get(view, opts, large)
            if frag is None:
                frag = Fragment()
                _service_port(Recorder("filter", frag), Recorder("nat", frag), view, opts, large)
                cache.put(view, opts, large, frag)
            replay(frag, rs.tables, shared)
        cache.rotate()
    _nodeports_tail(nat, opts)
    _forward(flt, opts)
    return rs


def _postrouting(nat: Table, opts: IptablesOptions) -> None:
    n, mark = opts.names, opts.masquerade_mark
    nat.append(n.postrouting, R((M_MARK, Opt("--mark", f"{mark}/{mark}", True)), "RETURN"))
    nat.append(n.postrouting, R((), "MARK", (Opt("--xor-mark", mark),)))
    masq = (Opt("--random-fully"),) if opts.random_fully else ()
    nat.append(n.postrouting, R(_comment("kubernetes service traffic requiring SNAT"), "MASQUERADE", masq))
    nat.append(n.mark_masq, R((), "MARK", (Opt("--or-mark", mark),)))


def _kubelet_firewall(flt: Table) -> None:
    """route_localnet lets 127.0.0.1 NodePorts work and opens a hole (kubernetes issue 90259);
    this duplicate of kubelet's rule closes it."""
    flt.append(KUBELET_FIREWALL, R(
        _comment("block incoming localnet connections") + (
            Opt("-d", "127.0.0.0/8"), Opt("-s", "127.0.0.0/8", True),
            M_CONNTRACK, Opt("--ctstate", "RELATED,ESTABLISHED,DNAT", True)),
        "DROP"))


def _nodeports_tail(nat: Table, opts: IptablesOptions) -> None:
    n = opts.names
    comment = _comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    if opts.node_port_match_all:
        dest: tuple[Opt, ...] = (M_ADDRTYPE, DST_LOCAL)
        if opts.ipv6:
            dest += (Opt("-d", "::1/128", True),)
        elif not opts.localhost_node_ports:
            dest += (Opt("-d", "127.0.0.0/8", True),)
        nat.append(n.services, R(comment + dest, n.nodeports))
        return
    for ip in opts.node_port_ips:
        loopback = ip == "::1" or ip.startswith("127.")
        if loopback and (opts.ipv6 or not opts.localhost_node_ports):
            continue
        nat.append(n.services, R(comment + (Opt("-d", ip),), n.nodeports))


def _forward(flt: Table, opts: IptablesOptions) -> None:
    n, mark = opts.names, opts.masquerade_mark
    if not opts.tcp_be_liberal:
        # Without be_liberal, an out-of-window packet marked INVALID would reset the connection.
        acct = (M_NFACCT, Opt("--nfacct-name", CT_INVALID_COUNTER)) if CT_INVALID_COUNTER in opts.nfacct else ()
        flt.append(n.forward, R((M_CONNTRACK, Opt("--ctstate", "INVALID")) + acct, "DROP"))
    flt.append(n.forward, R(_comment("kubernetes forwarding rules") + (M_MARK, Opt("--mark", f"{mark}/{mark}")),
                               "ACCEPT"))
    flt.append(n.forward, R(_comment("kubernetes forwarding conntrack rule") + (
        M_CONNTRACK, Opt("--ctstate", "RELATED,ESTABLISHED")), "ACCEPT"))


def _service_port(flt: Table, nat: Table, v: ServicePortView, opts: IptablesOptions, large: bool) -> None:
    n = opts.names
    spn = str(v.name)
    proto = v.protocol.lower()
    h = port_proto_hash(spn, proto)
    svc_chain, svl_chain, ext_chain, fw_chain = n.svc(h), n.svl(h), n.ext(h), n.fw(h)
    sets = v.sets
    has_endpoints = sets.has_any

    uses_cluster_chain = bool(sets.cluster) and v.uses_cluster_endpoints
    uses_local_chain = bool(sets.local) and v.uses_local_endpoints
    internal_chain, has_internal = svc_chain, has_endpoints
    if v.internal_policy_local:
        internal_chain = svl_chain
        has_internal = has_endpoints and bool(sets.local)
    external_policy_chain, has_external = svc_chain, has_endpoints
    if v.external_policy_local:
        external_policy_chain = svl_chain
        has_external = has_endpoints and bool(sets.local)
    uses_ext_chain = has_endpoints and v.externally_accessible
    uses_fw = has_endpoints and bool(v.load_balancer_vips) and bool(v.load_balancer_source_ranges)
    lb_chain = fw_chain if uses_fw else ext_chain

    if not has_endpoints:
        int_filter = ext_filter = ("REJECT", f"{spn} has no endpoints")
    else:
        int_filter = ext_filter = ("DROP", f"{spn} has no local endpoints")
    m_p = _proto(proto)
    dport = Opt("--dport", str(v.port))

    def vip_match(comment: str, ip: str) -> tuple[Opt, ...]:
        return _comment(comment) + (m_p[0], m_p[1], Opt("-d", ip), dport)

    # Capture the cluster IP.
    if has_internal:
        nat.append(n.services, R(vip_match(f"{spn} cluster IP", v.cluster_ip), internal_chain))
    else:
        flt.append(n.services, R(vip_match(int_filter[1], v.cluster_ip), int_filter[0]))

    # Capture external IPs.
    for ip in v.external_ips:
        if has_endpoints:
            nat.append(n.services, R(vip_match(f"{spn} external IP", ip), ext_chain))
        if not has_external:
            flt.append(n.external_services, R(vip_match(ext_filter[1], ip), ext_filter[0]))

    # Capture load-balancer IPs.
    for ip in v.load_balancer_vips:
        if has_endpoints:
            nat.append(n.services, R(vip_match(f"{spn} loadbalancer IP", ip), lb_chain))
        if uses_fw:
            flt.append(n.proxy_firewall, R(vip_match(f"{spn} traffic not accepted by {fw_chain}", ip), "DROP"))
    if not has_external:
        for ip in v.load_balancer_vips:
            flt.append(n.external_services, R(vip_match(ext_filter[1], ip), ext_filter[0]))

    # Capture node ports (not subject to loadBalancerSourceRanges, as in kube-proxy).
    if v.node_port:
        np = Opt("--dport", str(v.node_port))
        if has_endpoints:
            if not opts.ipv6 and opts.localhost_node_ports and LOCALHOST_NODEPORT_COUNTER in opts.nfacct:
                acct = (M_NFACCT, Opt("--nfacct-name", LOCALHOST_NODEPORT_COUNTER))
                loopback = (m_p[0], m_p[1], Opt("-d", "127.0.0.0/8"), np) + acct
                nat.append(n.nodeports, R(_comment(spn) + loopback, ext_chain))
            nat.append(n.nodeports, R(_comment(spn) + (m_p[0], m_p[1], np), ext_chain))
        if not has_external:
            flt.append(n.external_services, R(_comment(ext_filter[1]) + (M_ADDRTYPE, DST_LOCAL, m_p[0], m_p[1], np),
                                                 ext_filter[0]))

    # Health-check node port: accepted whether or not this node has local endpoints.
    if v.health_check_node_port:
        tcp = _proto("tcp")
        flt.append(n.nodeports, R(_comment(f"{spn} health check node port") + (
            tcp[0], tcp[1], Opt("--dport", str(v.health_check_node_port))), "ACCEPT"))

    # Masquerade off-cluster traffic to the cluster IP (it may be routed to any node).
    if has_internal:
        base = vip_match(f"{spn} cluster IP", v.cluster_ip)
        if opts.masquerade_all:
            nat.append(internal_chain, R(base, n.mark_masq))
        elif opts.detector.implemented:
            nat.append(internal_chain, R(base + opts.detector.if_not_local, n.mark_masq))

    if uses_ext_chain:
        _external_chain(nat, v, opts, ext_chain, svc_chain, external_policy_chain, has_external)
    if uses_fw:
        _firewall_chain(nat, v, opts, fw_chain, ext_chain)
    seps = {ep.addr: n.sep(port_proto_hash(spn, proto, ep.addr)) for ep in sets.all_reachable}
    if uses_cluster_chain:
        _balance(nat, v, spn, svc_chain, sets.cluster, seps, large)
    if uses_local_chain:
        _balance(nat, v, spn, svl_chain, sets.local, seps, large)
    for ep in sets.all_reachable:
        _endpoint_chain(nat, v, spn, ep, seps[ep.addr], opts, large)


def _external_chain(nat: Table, v: ServicePortView, opts: IptablesOptions, ext_chain: str, svc_chain: str,
                    policy_chain: str, has_external: bool) -> None:
    spn, n = str(v.name), opts.names
    chain = nat.chain(ext_chain)
    if not v.external_policy_local:
        chain.rules.append(R(_comment(f"masquerade traffic for {spn} external destinations"), n.mark_masq))
    else:
        if opts.detector.implemented:
            # Pod traffic to an external destination skips traffic policy, as if it went out
            # to the load balancer and came back.
            chain.rules.append(R(_comment(f"pod traffic for {spn} external destinations")
                                    + opts.detector.if_local, svc_chain))
        chain.rules.append(R(_comment(f"masquerade LOCAL traffic for {spn} external destinations")
                                + (M_ADDRTYPE, SRC_LOCAL), n.mark_masq))
        chain.rules.append(R(_comment(f"route LOCAL traffic for {spn} external destinations")
                                + (M_ADDRTYPE, SRC_LOCAL), svc_chain))
    if has_external:
        chain.rules.append(R((), policy_chain))


def _firewall_chain(nat: Table, v: ServicePortView, opts: IptablesOptions, fw_chain: str, ext_chain: str) -> None:
    spn = str(v.name)
    chain = nat.chain(fw_chain)
    comment = _comment(f"{spn} loadbalancer IP")
    allow_from_node = False
    node_ip = ipaddress.ip_address(opts.node_ip) if opts.node_ip else None
    for cidr in v.load_balancer_source_ranges:
        chain.rules.append(R(comment + (Opt("-s", cidr),), ext_chain))
        if node_ip is not None and node_ip in ipaddress.ip_network(cidr):
            allow_from_node = True
    if allow_from_node:
        # A node reaching a VIP that is routed locally arrives with the VIP as its source.
        for ip in v.load_balancer_vips:
            chain.rules.append(R(comment + (Opt("-s", ip),), ext_chain))
    chain.rules.append(R(_comment(f"other traffic to {spn} will be dropped by {opts.names.proxy_firewall}")))


def _balance(nat: Table, v: ServicePortView, spn: str, chain_name: str, endpoints: tuple[EndpointInfo, ...],
             seps: dict[str, str], large: bool) -> None:
    chain = nat.chain(chain_name)
    if v.session_affinity:
        seconds = Opt("--seconds", str(v.affinity_timeout))
        for ep in endpoints:
            sep = seps[ep.addr]
            head = () if large else _comment(f"{spn} -> {ep.addr}")
            chain.rules.append(R(head + (M_RECENT, Opt("--name", sep), RCHECK, seconds, REAP), sep))
    count = len(endpoints)
    for i, ep in enumerate(endpoints):
        head = () if large else _comment(f"{spn} -> {ep.addr}")
        if i < count - 1:
            head += (M_STATISTIC, MODE_RANDOM, _probability_opt(count - i))
        chain.rules.append(R(head, seps[ep.addr]))


@lru_cache(maxsize=4096)
def _probability_opt(n: int) -> Opt:
    return Opt("--probability", probability(n))


def _endpoint_chain(nat: Table, v: ServicePortView, spn: str, ep: EndpointInfo, sep: str, opts: IptablesOptions,
                    large: bool) -> None:
    chain = nat.chain(sep)
    head = () if large else _comment(spn)
    # Hairpin: a pod reaching itself through its service must be masqueraded to get the reply.
    chain.rules.append(R(head + (Opt("-s", ep.ip),), opts.names.mark_masq))
    affinity = (M_RECENT, Opt("--name", sep), SET) if v.session_affinity else ()
    m_p = _proto(v.protocol)
    chain.rules.append(R(head + affinity + (m_p[0], m_p[1]), "DNAT", (Opt("--to-destination", ep.addr),)))
