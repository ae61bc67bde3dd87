"""Chain names: kube-proxy's fixed chains and its hashed per-service chains.

The hash is base32(sha256(service-port-name + protocol [+ endpoint]))[:16], so that a chain's
name survives restarts and differs per port, protocol and endpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

KUBELET_FIREWALL = "KUBE-FIREWALL"  # kubelet's chain; kube-proxy writes a duplicate of its rule
KUBE_PREFIX = "KUBE-"
# Our own prefix when we serve only Services labelled service.kubernetes.io/service-proxy-name:
# kube-proxy redeclares (flushes) KUBE-SERVICES on every sync and deletes every KUBE-SVC-/SEP-/...
# chain it does not own, so beside it we must not use its names.
PROXYCTL_PREFIX = "PXCTL-"


def prefix_for(service_proxy_name: str | None) -> str:
    return PROXYCTL_PREFIX if service_proxy_name else KUBE_PREFIX

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_PAIRS = [a + b for a in _B32 for b in _B32]  # 10 bits → two base32 digits


def port_proto_hash(spn: str, protocol: str, endpoint: str = "") -> str:
    """The first 16 base32 digits (80 bits) of the sha256; base64.b32encode gives the same digits
    but is pure Python and was a third of the compile time at 10k services."""
    n = int.from_bytes(hashlib.sha256((spn + protocol.lower() + endpoint).encode()).digest()[:10], "big")
    p = _PAIRS
    return (p[n >> 70] + p[(n >> 60) & 1023] + p[(n >> 50) & 1023] + p[(n >> 40) & 1023]
            + p[(n >> 30) & 1023] + p[(n >> 20) & 1023] + p[(n >> 10) & 1023] + p[n & 1023])


@dataclass(frozen=True)
class ChainNames:
    """Every chain name proxyctl writes, under one prefix (``KUBE-`` to stand in for kube-proxy)."""

    prefix: str = KUBE_PREFIX

    @property
    def stands_in_for_kube_proxy(self) -> bool:
        """Under kube-proxy's own names we also write its duplicate of kubelet's KUBE-FIREWALL."""
        return self.prefix == KUBE_PREFIX

    @property
    def services(self) -> str:
        return self.prefix + "SERVICES"

    @property
    def external_services(self) -> str:
        return self.prefix + "EXTERNAL-SERVICES"

    @property
    def nodeports(self) -> str:
        return self.prefix + "NODEPORTS"

    @property
    def postrouting(self) -> str:
        return self.prefix + "POSTROUTING"

    @property
    def mark_masq(self) -> str:
        return self.prefix + "MARK-MASQ"

    @property
    def forward(self) -> str:
        return self.prefix + "FORWARD"

    @property
    def proxy_firewall(self) -> str:
        return self.prefix + "PROXY-FIREWALL"

    @property
    def canary(self) -> str:
        return self.prefix + "PROXY-CANARY"

    @cached_property
    def service_prefixes(self) -> tuple[str, ...]:
        """Prefixes of the per-service chains: a chain with one of these is ours to delete."""
        return tuple(self.prefix + p for p in ("SVC-", "SVL-", "EXT-", "FW-", "SEP-"))

    def svc(self, h: str) -> str:
        return f"{self.prefix}SVC-{h}"

    def svl(self, h: str) -> str:
        return f"{self.prefix}SVL-{h}"

    def ext(self, h: str) -> str:
        return f"{self.prefix}EXT-{h}"

    def fw(self, h: str) -> str:
        return f"{self.prefix}FW-{h}"

    def sep(self, h: str) -> str:
        return f"{self.prefix}SEP-{h}"
