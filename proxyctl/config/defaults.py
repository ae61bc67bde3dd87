"""kube-proxy v1.36's v1alpha1 defaulting, applied to typed values (durations in nanoseconds).

A field is defaulted when it is unset: a pointer field left null, or a plain field left at its zero
value. So ``iptables.minSyncPeriod: 0s`` in a file becomes 1s, as it does in kube-proxy, while
``conntrack.tcpEstablishedTimeout: 0s`` (a pointer) stays 0s and means "leave the sysctl alone".
"""

from __future__ import annotations

from proxyctl.config.addresses import is_ipv4, parse_ip, split_host_port
from proxyctl.config.duration import HOUR, MINUTE, SECOND

HEALTHZ_PORT = 10256  # ports.ProxyHealthzPort
METRICS_PORT = 10249  # ports.ProxyStatusPort
OOM_SCORE_ADJ = -999  # qos.KubeProxyOOMScoreAdj
MASQUERADE_BIT = 14
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


def apply_defaults(c: dict) -> None:
    """Fill in every unset field of a decoded configuration, in place."""
    if not c["bindAddress"]:
        c["bindAddress"] = "0.0.0.0"
    healthz_host, metrics_host = _default_hosts(c["bindAddress"])
    c["healthzBindAddress"] = _with_port(c["healthzBindAddress"], healthz_host, HEALTHZ_PORT)
    c["metricsBindAddress"] = _with_port(c["metricsBindAddress"], metrics_host, METRICS_PORT)
    _if_null(c, "oomScoreAdj", OOM_SCORE_ADJ)
    _if_zero(c, "configSyncPeriod", 15 * MINUTE)

    _if_zero(c["iptables"], "syncPeriod", 30 * SECOND)
    _if_zero(c["iptables"], "minSyncPeriod", 1 * SECOND)
    _if_null(c["iptables"], "masqueradeBit", MASQUERADE_BIT)
    _if_null(c["iptables"], "localhostNodePorts", True)
    _if_zero(c["ipvs"], "syncPeriod", 30 * SECOND)
    _if_zero(c["nftables"], "syncPeriod", 30 * SECOND)
    _if_zero(c["nftables"], "minSyncPeriod", 1 * SECOND)
    _if_null(c["nftables"], "masqueradeBit", MASQUERADE_BIT)

    conntrack = c["conntrack"]
    _if_null(conntrack, "maxPerCore", 32 * 1024)
    _if_null(conntrack, "min", 128 * 1024)
    _if_null(conntrack, "tcpEstablishedTimeout", 24 * HOUR)
    _if_null(conntrack, "tcpCloseWaitTimeout", 1 * HOUR)

    client = c["clientConnection"]
    _if_zero(client, "contentType", CONTENT_TYPE)
    _if_zero(client, "qps", 5)
    _if_zero(client, "burst", 10)

    logging = c["logging"]
    _if_zero(logging, "format", "text")
    _if_zero(logging, "flushFrequency", 5 * SECOND)
    for routing in logging["options"].values():
        _if_zero(routing, "infoBufferSize", "0")


def _if_null(section: dict, name: str, value: object) -> None:
    """Default a Go pointer field: only when the file left it out or wrote null."""
    if section[name] is None:
        section[name] = value


def _if_zero(section: dict, name: str, value: object) -> None:
    """Default a plain field: whenever it holds its zero value ("", 0, 0s)."""
    if section[name] in ("", 0):
        section[name] = value


def _default_hosts(bind_address: str) -> tuple[str, str]:
    """healthz and metrics hosts in bindAddress's family; IPv6 unless it reads as IPv4."""
    if is_ipv4(bind_address):
        return "0.0.0.0", "127.0.0.1"
    return "[::]", "[::1]"


def _with_port(address: str, default_host: str, port: int) -> str:
    """kube-proxy's AppendPortIfNeeded: a bare IP gets ``port``; anything else is left for validation."""
    if not address:
        return f"{default_host}:{port}"
    try:
        split_host_port(address)
        return address  # already has a port
    except ValueError:
        pass
    try:
        parse_ip(address)
    except ValueError:
        return address
    return f"{address}:{port}" if is_ipv4(address) else f"[{address}]:{port}"
