"""Synthetic clusters for the benchmarks (compile, and later parse, trace, diff, sync).

``make_cluster(services, endpoints_per_service)`` builds a :class:`ClusterState` directly (no YAML,
so the benchmark measures the compiler, not the loader) with a realistic mix:

- mostly ClusterIP services; some NodePort and LoadBalancer (with status ingress IPs), some of
  those with ``externalIPs``, half the LoadBalancers with ``loadBalancerSourceRanges`` (one of
  which sometimes covers the node IP, kube-proxy's hairpin case), a few ClusterIP services with
  ``externalIPs``;
- some ``externalTrafficPolicy: Local`` (LoadBalancers get a ``healthCheckNodePort``), a few
  ``internalTrafficPolicy: Local``, some ``sessionAffinity: ClientIP``, a few UDP and two-port
  services;
- endpoints spread at random over ``Mix.nodes`` nodes (the benchmark node is one of them, so about
  one endpoint in ``nodes`` is local), each in its node's pod CIDR; a few terminating (serving,
  not ready) and a few not ready at all.

Everything is a pure function of the arguments (``seed`` included): the same call gives the same
cluster, so runs and machines can be compared. ``bench_node_facts()`` and ``bench_config()`` are
the node and KubeProxyConfiguration that match it (cluster CIDR, node IP, nfacct counters).

Addresses: service cluster IPs from 10.96.0.0/12 (fd00:96::/108), pods from 10.128.0.0/9
(fd00:128::/56, a /64 per node), node IPs 192.168.0.10 onwards, load-balancer ingress IPs from
198.18.0.0/16 and external IPs from 198.19.0.0/16 (the benchmarking range, RFC 2544). Node ports
are handed out in order from 30000 and wrap after 32767 (a real API server would refuse more than
2768 of them; the rules have the same shape either way).

Also here, for benchmarks that need them: ``churn()`` (the same cluster after some endpoint
changes, for diff and sync), ``cluster_manifests()``/``write_inputs()`` (the cluster as the YAML
``proxyctl -f`` reads, with a matching ``--config`` and ``--node-facts``).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import random
from dataclasses import dataclass, replace

from proxyctl.cluster.objects import (
    SERVICE_NAME_LABEL,
    TOPOLOGY_ZONE_LABEL,
    ClusterState,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    LoadBalancerIngress,
    Node,
    Service,
    ServicePortSpec,
)
from proxyctl.config import KubeProxyConfiguration, default_config, validate
from proxyctl.node.facts import NodeFacts

BENCH_NODE = "bench-node"
SERVICE_CIDR = {"IPv4": "10.96.0.0/12", "IPv6": "fd00:96::/108"}
CLUSTER_CIDR = {"IPv4": "10.128.0.0/9", "IPv6": "fd00:128::/56"}
NODE_IP_BASE = {"IPv4": "192.168.0.10", "IPv6": "fd00:192:168::10"}
NODE_PREFIX = {"IPv4": 16, "IPv6": 64}
LB_INGRESS_BASE = {"IPv4": "198.18.0.0", "IPv6": "fd00:198:18::"}
EXTERNAL_IP_BASE = {"IPv4": "198.19.0.0", "IPv6": "fd00:198:19::"}
ZONES = ("zone-a", "zone-b", "zone-c")
NFACCT_COUNTERS = ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")
NODE_PORT_RANGE = (30000, 32767)
MAX_SLICE_ENDPOINTS = 100  # the EndpointSlice controller's default maxEndpointsPerSlice

_APPS = ("api", "web", "auth", "cache", "search", "billing", "orders", "users", "media", "events",
         "metrics", "gateway", "inventory", "catalog", "notify", "reports", "queue", "ledger")
# (port name, port, target port): the ports a service exposes, first one most common.
_TCP_PORTS = (("http", 80, 8080), ("", 80, 8080), ("https", 443, 8443), ("grpc", 9090, 9090),
              ("metrics", 9100, 9100))
_UDP_PORT = ("dns", 53, 5353)
_SECOND_PORT = ("metrics", 9102, 9102)


@dataclass(frozen=True)
class Mix:
    """What fraction of services (or endpoints) get each feature. Fractions of services unless said."""

    node_port: float = 0.08  # type NodePort
    load_balancer: float = 0.04  # type LoadBalancer, with one status ingress IP
    cluster_ip_external_ips: float = 0.01  # ClusterIP services with spec.externalIPs
    external_ips: float = 0.25  # of NodePort/LoadBalancer services: also spec.externalIPs
    source_ranges: float = 0.5  # of LoadBalancer services: loadBalancerSourceRanges
    etp_local: float = 0.3  # of NodePort/LoadBalancer (and ClusterIP+externalIPs): eTP=Local
    itp_local: float = 0.01  # internalTrafficPolicy: Local
    client_ip_affinity: float = 0.05  # sessionAffinity: ClientIP
    udp: float = 0.02  # a UDP port (dns) instead of TCP
    two_ports: float = 0.02  # a second TCP port (metrics)
    topology_hints: float = 0.0  # trafficDistribution PreferSameZone, every endpoint hinted for its zone
    terminating: float = 0.01  # of endpoints: terminating and still serving (not ready)
    not_ready: float = 0.01  # of endpoints: not ready, not serving
    nodes: int = 50  # nodes the endpoints run on; the benchmark node is the first


DEFAULT_MIX = Mix()
CLUSTER_IP_ONLY = Mix(node_port=0, load_balancer=0, cluster_ip_external_ips=0, etp_local=0, itp_local=0,
                      client_ip_affinity=0, udp=0, two_ports=0, terminating=0, not_ready=0)


def node_names(count: int, node_name: str = BENCH_NODE) -> list[str]:
    """The cluster's nodes: the benchmark node first, then ``node-001``..."""
    return [node_name] + [f"node-{i:03d}" for i in range(1, count)]


def _nth(base: str, n: int) -> str:
    return str(ipaddress.ip_address(base) + n)


class _Pods:
    """Pod IPs per node, each node with its own pod CIDR sized to hold what it will get."""

    def __init__(self, family: str, nodes: int, expected_per_node: int) -> None:
        net = ipaddress.ip_network(CLUSTER_CIDR[family])
        if family == "IPv4":
            prefix = 24
            while (1 << (32 - prefix)) < 2 * expected_per_node + 16 and prefix > 10:
                prefix -= 1
            if (net.num_addresses >> (32 - prefix)) < nodes:
                raise ValueError(f"{nodes} nodes x {expected_per_node} pods do not fit in {net}")
        else:
            prefix = 64
        self.cidrs = list(itertools.islice(net.subnets(new_prefix=prefix), nodes))
        self.capacity = self.cidrs[0].num_addresses - 2
        self.used = [0] * nodes

    def take(self, node: int) -> tuple[int, str]:
        """The next pod IP on ``node`` (or, when it is full, on the next node with room)."""
        for k in [node] + list(range(len(self.cidrs))):
            if self.used[k] < self.capacity:
                self.used[k] += 1
                return k, str(self.cidrs[k].network_address + self.used[k])
        raise ValueError("every node's pod CIDR is full")


class _NodePorts:
    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        lo, hi = NODE_PORT_RANGE
        port = lo + self.next % (hi - lo + 1)
        self.next += 1
        return port


def make_cluster(services: int, endpoints_per_service: int, *, node_name: str = BENCH_NODE, seed: int = 0,
                 mix: Mix = DEFAULT_MIX, families: tuple[str, ...] = ("IPv4",),
                 services_per_namespace: int = 40) -> ClusterState:
    """A cluster of ``services`` services, each with ``endpoints_per_service`` endpoints
    (one EndpointSlice per 100 endpoints and family), plus its ``mix.nodes`` Nodes.

    ``families`` ("IPv4", "IPv6" or both, primary first) makes every service single- or dual-stack.
    """
    if services < 0 or endpoints_per_service < 0:
        raise ValueError("services and endpoints_per_service must be >= 0")
    if services > 1 << 20:
        raise ValueError("at most 1048576 services fit in the service CIDR")
    rng = random.Random(seed)
    names = node_names(max(mix.nodes, 1), node_name)
    expected = services * endpoints_per_service // len(names) + 1
    pods = {fam: _Pods(fam, len(names), expected) for fam in families}
    node_ports = _NodePorts()
    svc_base = {fam: ipaddress.ip_network(SERVICE_CIDR[fam]).network_address for fam in families}

    out_services: list[Service] = []
    out_slices: list[EndpointSlice] = []
    lb_count = ext_count = 0
    for i in range(services):
        namespace = f"team-{i // services_per_namespace:04d}"
        name = f"{_APPS[rng.randrange(len(_APPS))]}-{i:06d}"

        roll = rng.random()
        if roll < mix.load_balancer:
            svc_type = "LoadBalancer"
        elif roll < mix.load_balancer + mix.node_port:
            svc_type = "NodePort"
        else:
            svc_type = "ClusterIP"
        external_ips: tuple[str, ...] = ()
        if (svc_type != "ClusterIP" and rng.random() < mix.external_ips) or (
                svc_type == "ClusterIP" and rng.random() < mix.cluster_ip_external_ips):
            ext_count += 1
            external_ips = tuple(_nth(EXTERNAL_IP_BASE[fam], ext_count % 65534 + 1) for fam in families)
        ingress: tuple[LoadBalancerIngress, ...] = ()
        source_ranges: tuple[str, ...] = ()
        if svc_type == "LoadBalancer":
            lb_count += 1
            ingress = tuple(LoadBalancerIngress(_nth(LB_INGRESS_BASE[fam], lb_count % 65534 + 1))
                            for fam in families)
            if rng.random() < mix.source_ranges:
                source_ranges = tuple(rng.sample(("203.0.113.0/24", "198.51.100.0/24", "192.168.0.0/16",
                                                  "100.64.0.0/10"), rng.randint(1, 2)))
                if "IPv6" in families:
                    source_ranges += ("2001:db8::/32",)
        accessible = svc_type != "ClusterIP" or bool(external_ips)
        etp = "Local" if accessible and rng.random() < mix.etp_local else ("Cluster" if accessible else "")
        itp = "Local" if rng.random() < mix.itp_local else "Cluster"
        affinity = "ClientIP" if rng.random() < mix.client_ip_affinity else "None"
        hints = rng.random() < mix.topology_hints

        if rng.random() < mix.udp:
            port_defs = [(_UDP_PORT, "UDP")]
        else:
            port_defs = [(_TCP_PORTS[min(int(rng.expovariate(1.5)), len(_TCP_PORTS) - 1)], "TCP")]
            if rng.random() < mix.two_ports:
                if port_defs[0][0][0] == "":
                    port_defs[0] = (_TCP_PORTS[0], "TCP")  # a multi-port service names every port
                port_defs.append((_SECOND_PORT, "TCP"))
        ports = tuple(ServicePortSpec(pname, proto, port, node_ports.take() if svc_type != "ClusterIP" else 0,
                                      str(target))
                      for (pname, port, target), proto in port_defs)
        out_services.append(Service(
            namespace=namespace,
            name=name,
            cluster_ips=tuple(str(svc_base[fam] + i + 1) for fam in families),
            ports=ports,
            type=svc_type,
            labels={"app": name},
            external_ips=external_ips,
            load_balancer_ingress=ingress,
            load_balancer_source_ranges=source_ranges,
            session_affinity=affinity,
            session_affinity_timeout=10800 if affinity == "ClientIP" else 0,
            external_traffic_policy=etp,
            internal_traffic_policy=itp,
            health_check_node_port=node_ports.take() if svc_type == "LoadBalancer" and etp == "Local" else 0,
            traffic_distribution="PreferSameZone" if hints else "",
        ))

        # Endpoints: one pod per endpoint, on a random node; the same pods in every family.
        placed = []
        for _ in range(endpoints_per_service):
            node = rng.randrange(len(names))
            r = rng.random()
            if r < mix.terminating:
                cond = (False, True, True)
            elif r < mix.terminating + mix.not_ready:
                cond = (False, False, False)
            else:
                cond = (True, True, False)
            placed.append((node, cond))
        slice_ports = tuple(EndpointPort(pname, target, proto) for (pname, _, target), proto in port_defs)
        for fam in families:
            endpoints = []
            for node, (ready, serving, terminating) in placed:
                node, ip = pods[fam].take(node)
                zone = ZONES[node % len(ZONES)]
                endpoints.append(Endpoint((ip,), ready, serving, terminating, names[node], zone,
                                          hints_for_zones=(zone,) if hints else ()))
            for part in range(0, max(len(endpoints), 1), MAX_SLICE_ENDPOINTS):
                suffix = "" if fam == "IPv4" else "-v6"
                out_slices.append(EndpointSlice(
                    namespace=namespace,
                    name=f"{name}{suffix}-{part // MAX_SLICE_ENDPOINTS:x}{rng.getrandbits(20):05x}",
                    service_name=name,
                    address_type=fam,
                    endpoints=tuple(endpoints[part:part + MAX_SLICE_ENDPOINTS]),
                    ports=slice_ports,
                    labels={SERVICE_NAME_LABEL: name, "endpointslice.kubernetes.io/managed-by": "bench"},
                ))

    nodes = tuple(
        Node(name=n, labels={TOPOLOGY_ZONE_LABEL: ZONES[k % len(ZONES)], "kubernetes.io/hostname": n},
             internal_ips=tuple(_nth(NODE_IP_BASE[fam], k) for fam in families),
             pod_cidrs=tuple(str(pods[fam].cidrs[k]) for fam in families))
        for k, n in enumerate(names))
    return ClusterState(services=tuple(out_services), endpoint_slices=tuple(out_slices), nodes=nodes)


def churn(state: ClusterState, changes: int, *, seed: int = 1) -> ClusterState:
    """``state`` after ``changes`` endpoint updates, as a rolling deployment makes them: in each of
    ``changes`` slices (picked at random, at most one change per slice) one endpoint is replaced by a
    new pod on the same node. Addresses come from the top of the node's pod CIDR, so they are new."""
    rng = random.Random(seed)
    slices = list(state.endpoint_slices)
    candidates = [i for i, sl in enumerate(slices) if sl.endpoints]
    picked = rng.sample(candidates, min(changes, len(candidates)))
    pod_cidrs = {n.name: n.pod_cidrs for n in state.nodes}
    taken: dict[str, int] = {}
    for i in picked:
        sl = slices[i]
        j = rng.randrange(len(sl.endpoints))
        ep = sl.endpoints[j]
        cidr = next((c for c in pod_cidrs.get(ep.node_name, ()) if (":" in c) == (sl.address_type == "IPv6")),
                    CLUSTER_CIDR[sl.address_type])
        taken[cidr] = taken.get(cidr, 0) + 1
        net = ipaddress.ip_network(cidr)
        new_ip = str(net.broadcast_address - taken[cidr])
        endpoints = sl.endpoints[:j] + (replace(ep, addresses=(new_ip,), ready=True, serving=True,
                                                terminating=False),) + sl.endpoints[j + 1:]
        slices[i] = replace(sl, endpoints=endpoints)
    return replace(state, endpoint_slices=tuple(slices))


def bench_node_facts(node_name: str = BENCH_NODE, *, families: tuple[str, ...] = ("IPv4",),
                     nfacct: bool = True, random_fully: bool = True) -> NodeFacts:
    """The benchmark node (the first node of ``make_cluster``): its IPs, and both nfacct counters
    kube-proxy uses, so the payload has the rules that name them."""
    node_ips = {fam: _nth(NODE_IP_BASE[fam], 0) for fam in families}
    return NodeFacts(
        name=node_name,
        node_ips=node_ips,
        addresses={"lo": ("127.0.0.1/8", "::1/128"),
                   "eth0": tuple(f"{ip}/{NODE_PREFIX[fam]}" for fam, ip in node_ips.items())},
        random_fully=random_fully,
        nfacct=NFACCT_COUNTERS if nfacct else (),
        tcp_be_liberal=False,
    )


def bench_config_yaml(families: tuple[str, ...] = ("IPv4",), node_name: str = BENCH_NODE) -> str:
    """The KubeProxyConfiguration file of the benchmark node (iptables mode, ClusterCIDR detection)."""
    cidrs = ",".join(CLUSTER_CIDR[fam] for fam in families)
    return ("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n"
            f"hostnameOverride: {node_name}\nclusterCIDR: {cidrs}\n")


def bench_config(families: tuple[str, ...] = ("IPv4",), node_name: str = BENCH_NODE) -> KubeProxyConfiguration:
    """``bench_config_yaml`` as a configuration object (the defaults plus those fields)."""
    base = default_config()
    data = dict(base.data)
    data.update(mode="iptables", hostnameOverride=node_name,
                clusterCIDR=",".join(CLUSTER_CIDR[fam] for fam in families))
    cfg = KubeProxyConfiguration(data=data, source="bench")
    problems = validate(cfg)
    if problems:
        raise ValueError(f"bench configuration is invalid: {problems}")
    return cfg


def bench_node(state: ClusterState, node_name: str = BENCH_NODE) -> Node | None:
    return next((n for n in state.nodes if n.name == node_name), None)


# --- the cluster as manifests, for benchmarks that go through the loader or the CLI ---

def service_manifest(svc: Service) -> dict:
    spec: dict = {"type": svc.type or "ClusterIP", "clusterIP": svc.cluster_ips[0],
                  "clusterIPs": list(svc.cluster_ips), "selector": {"app": svc.name},
                  "ports": [{**({"name": p.name} if p.name else {}), "protocol": p.protocol, "port": p.port,
                             "targetPort": int(p.target_port) if p.target_port.isdigit() else p.target_port,
                             **({"nodePort": p.node_port} if p.node_port else {})} for p in svc.ports]}
    if svc.external_ips:
        spec["externalIPs"] = list(svc.external_ips)
    if svc.load_balancer_source_ranges:
        spec["loadBalancerSourceRanges"] = list(svc.load_balancer_source_ranges)
    if svc.session_affinity:
        spec["sessionAffinity"] = svc.session_affinity
        if svc.session_affinity == "ClientIP":
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": svc.session_affinity_timeout}}
    for key, value in (("externalTrafficPolicy", svc.external_traffic_policy),
                       ("internalTrafficPolicy", svc.internal_traffic_policy),
                       ("healthCheckNodePort", svc.health_check_node_port),
                       ("trafficDistribution", svc.traffic_distribution)):
        if value:
            spec[key] = value
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": svc.name, "namespace": svc.namespace, "labels": dict(svc.labels)}, "spec": spec}
    if svc.load_balancer_ingress:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": i.ip, **({"ipMode": i.ip_mode} if i.ip_mode else {})}
                                                      for i in svc.load_balancer_ingress]}}
    return obj


def endpoint_slice_manifest(sl: EndpointSlice) -> dict:
    def endpoint(ep: Endpoint) -> dict:
        out: dict = {"addresses": list(ep.addresses)}
        cond = {k: v for k, v in (("ready", ep.ready), ("serving", ep.serving), ("terminating", ep.terminating))
                if v is not None}
        if cond:
            out["conditions"] = cond
        if ep.node_name:
            out["nodeName"] = ep.node_name
        if ep.zone:
            out["zone"] = ep.zone
        hints = {}
        if ep.hints_for_zones:
            hints["forZones"] = [{"name": z} for z in ep.hints_for_zones]
        if ep.hints_for_nodes:
            hints["forNodes"] = [{"name": n} for n in ep.hints_for_nodes]
        if hints:
            out["hints"] = hints
        return out

    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": sl.name, "namespace": sl.namespace, "labels": dict(sl.labels)},
            "addressType": sl.address_type,
            "endpoints": [endpoint(ep) for ep in sl.endpoints],
            "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in sl.ports]}


def node_manifest(node: Node) -> dict:
    addresses = [{"type": "InternalIP", "address": ip} for ip in node.internal_ips]
    addresses += [{"type": "ExternalIP", "address": ip} for ip in node.external_ips]
    spec: dict = {}
    if node.pod_cidrs:
        spec = {"podCIDR": node.pod_cidrs[0], "podCIDRs": list(node.pod_cidrs)}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node.name, "labels": dict(node.labels)},
            "spec": spec, "status": {"addresses": addresses}}


def cluster_manifests(state: ClusterState) -> list[dict]:
    """Every object of ``state`` as a Kubernetes manifest: Nodes, then each Service and its slices."""
    slices: dict[tuple[str, str], list[EndpointSlice]] = {}
    for sl in state.endpoint_slices:
        slices.setdefault((sl.namespace, sl.service_name), []).append(sl)
    out = [node_manifest(n) for n in state.nodes]
    for svc in state.services:
        out.append(service_manifest(svc))
        out.extend(endpoint_slice_manifest(sl) for sl in slices.pop((svc.namespace, svc.name), []))
    for rest in slices.values():
        out.extend(endpoint_slice_manifest(sl) for sl in rest)
    return out


def write_inputs(directory: str, state: ClusterState, *, families: tuple[str, ...] = ("IPv4",),
                 node_name: str = BENCH_NODE) -> dict[str, str]:
    """Write ``cluster.yaml``, ``kube-proxy-config.yaml`` and ``node.yaml`` (node facts) under
    ``directory``; returns their paths by role (``manifests``, ``config``, ``node_facts``), ready for
    ``proxyctl compile -f ... --config ... --node-facts ...``."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    os.makedirs(directory, exist_ok=True)
    paths = {role: os.path.join(directory, name) for role, name in
             (("manifests", "cluster.yaml"), ("config", "kube-proxy-config.yaml"), ("node_facts", "node.yaml"))}
    with open(paths["manifests"], "w", encoding="utf-8") as f:
        yaml.dump_all(cluster_manifests(state), f, Dumper=dumper, sort_keys=False, default_flow_style=None)
    with open(paths["config"], "w", encoding="utf-8") as f:
        f.write(bench_config_yaml(families, node_name))
    facts = bench_node_facts(node_name, families=families)
    with open(paths["node_facts"], "w", encoding="utf-8") as f:
        yaml.dump({"kind": "NodeFacts", "name": facts.name, "nodeIPs": dict(facts.node_ips),
                   "addresses": {k: list(v) for k, v in facts.addresses.items()},
                   "iptables": {"randomFully": facts.random_fully, "nfacct": list(facts.nfacct)},
                   "conntrack": {"tcpBeLiberal": facts.tcp_be_liberal}}, f, Dumper=dumper, sort_keys=False)
    return paths
