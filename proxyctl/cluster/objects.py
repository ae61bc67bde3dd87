"""Typed, immutable views of the Kubernetes objects kube-proxy reads.

Only the fields kube-proxy looks at are kept. Values are *not* API-defaulted: an empty
``type`` or traffic policy stays "", as the Go zero value does in kube-proxy's own tests;
the live watch hands us objects the API server already defaulted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TOPOLOGY_ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class ServicePortSpec:
    """One entry of ``spec.ports``."""

    name: str
    protocol: str  # "TCP" | "UDP" | "SCTP"
    port: int
    node_port: int = 0
    target_port: str = ""  # as written (number or name); kube-proxy ignores it


@dataclass(frozen=True)
class LoadBalancerIngress:
    ip: str  # canonical text form; hostname-only ingresses are dropped by the loader
    ip_mode: str = ""  # "", "VIP" or "Proxy"


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...]  # spec.clusterIPs, else (spec.clusterIP,); canonical IP text
    ports: tuple[ServicePortSpec, ...]
    type: str = ""  # "", ClusterIP, NodePort, LoadBalancer, ExternalName
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    external_ips: tuple[str, ...] = ()
    load_balancer_ingress: tuple[LoadBalancerIngress, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()  # as written (kube-proxy trims and canonicalises later)
    session_affinity: str = ""  # "", "None", "ClientIP"
    session_affinity_timeout: int = 0  # seconds; 0 when unset
    external_traffic_policy: str = ""  # "", "Cluster", "Local"
    internal_traffic_policy: str = ""  # "", "Cluster", "Local"
    health_check_node_port: int = 0
    traffic_distribution: str = ""  # "", "PreferClose", "PreferSameZone", "PreferSameNode"
    headless: bool = False  # clusterIP "None" (or no cluster IP at all)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Endpoint:
    """One entry of an EndpointSlice's ``endpoints``; conditions keep None for "unset"."""

    addresses: tuple[str, ...]  # canonical IP text
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None
    node_name: str = ""
    zone: str = ""
    hints_for_zones: tuple[str, ...] = ()
    hints_for_nodes: tuple[str, ...] = ()

    # kube-proxy's reading of unset conditions (endpointslicecache.go):
    @property
    def is_ready(self) -> bool:
        return self.ready is None or self.ready

    @property
    def is_serving(self) -> bool:
        return self.serving is None or self.serving

    @property
    def is_terminating(self) -> bool:
        return bool(self.terminating)


@dataclass(frozen=True)
class EndpointPort:
    name: str
    port: int | None  # None when unset: kube-proxy ignores such ports
    protocol: str  # "TCP" | "UDP" | "SCTP"


@dataclass(frozen=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str  # the kubernetes.io/service-name label; "" when absent (kube-proxy ignores the slice)
    address_type: str  # "IPv4" | "IPv6" | "FQDN"
    endpoints: tuple[Endpoint, ...]
    ports: tuple[EndpointPort, ...]
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Node:
    name: str
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    internal_ips: tuple[str, ...] = ()  # status.addresses of type InternalIP, in order
    external_ips: tuple[str, ...] = ()
    pod_cidrs: tuple[str, ...] = ()  # spec.podCIDRs, else (spec.podCIDR,)
    being_deleted: bool = False  # metadata.deletionTimestamp set
    taints: tuple[str, ...] = ()  # taint keys

    @property
    def zone(self) -> str:
        return self.labels.get(TOPOLOGY_ZONE_LABEL, "")


@dataclass(frozen=True)
class ClusterState:
    """Everything a backend compiles from; the brain reads only this."""

    services: tuple[Service, ...] = ()
    endpoint_slices: tuple[EndpointSlice, ...] = ()
    nodes: tuple[Node, ...] = ()
