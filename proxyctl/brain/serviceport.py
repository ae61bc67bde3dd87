"""ServicePortName, endpoints as kube-proxy sees them, and the per-service-port view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, order=True)
class ServicePortName:
    """kube-proxy's key for a service port; ``str()`` is what its rule comments and hashes use."""

    namespace: str
    name: str
    port: str  # the port's name, "" for an unnamed port
    protocol: str  # "TCP" | "UDP" | "SCTP"

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"


class EndpointInfo(NamedTuple):
    """One endpoint of one service port, with kube-proxy's reading of its conditions.

    A named tuple because a 10k-service cluster has 100k of them; ``addr`` is ``ip:port`` (or
    ``[ip]:port`` for IPv6), the DNAT target and the hash input, computed once.
    """

    addr: str
    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    is_local: bool
    node_name: str = ""
    zone_hints: frozenset[str] = frozenset()
    node_hints: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return self.addr

    @classmethod
    def make(cls, ip: str, port: int, **kw) -> EndpointInfo:
        return cls(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}", ip, port, **kw)


@dataclass(frozen=True)
class EndpointSets:
    """The result of categorising a port's endpoints for this node (see categorize.py)."""

    cluster: tuple[EndpointInfo, ...] = ()
    local: tuple[EndpointInfo, ...] = ()
    all_reachable: tuple[EndpointInfo, ...] = ()
    has_any: bool = False
    topology_mode: str = ""  # "", "PreferSameZone", "PreferSameNode"


@dataclass(frozen=True)
class ServicePortView:
    """Everything a backend needs about one service port in one IP family."""

    name: ServicePortName
    family: str  # "IPv4" | "IPv6"
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_vips: tuple[str, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()  # canonical CIDRs of this family
    health_check_node_port: int = 0
    affinity_timeout: int = 0  # seconds; 0 means no ClientIP affinity
    external_policy_local: bool = False
    internal_policy_local: bool = False
    endpoints: tuple[EndpointInfo, ...] = ()  # every endpoint, sorted by str()
    sets: EndpointSets = EndpointSets()

    @property
    def protocol(self) -> str:
        return self.name.protocol

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.load_balancer_vips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # eTP=Local still needs cluster endpoints to short-circuit pod traffic.
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (self.external_policy_local and self.externally_accessible)

    @property
    def session_affinity(self) -> bool:
        return self.affinity_timeout > 0
