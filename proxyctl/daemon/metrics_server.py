"""kube-proxy's metrics server on metricsBindAddress (default 127.0.0.1:10249).

Paths, as v1.36's ``serveMetrics`` installs them:

    /metrics        the registry of ``ProxyMetrics`` (text exposition; gzipped when the scraper asks)
    /proxyMode      the proxy mode in use, plain text without a newline (``iptables``)
    /configz        the effective configuration as component-base's configz serves it:
                    ``{"kubeproxy.config.k8s.io": {...}}`` holding kube-proxy's *internal*
                    KubeProxyConfiguration marshalled by Go (field names as in Go: ``Linux``,
                    ``IPTables``, ``SyncPeriod``; durations as strings)
    /healthz        the generic component healthz, ``ok`` (also ``/healthz/ping``)
    /debug/pprof/   only with enableProfiling. A Python process has no Go profiles: ``goroutine``
                    answers with the stacks of proxyctl's threads; every other profile is a 404
                    that says so (use py-spy for CPU profiles).

Not served: ``/metrics/slis`` (component-base SLI metrics) and ``/debug/flags/v``.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Mapping

from proxyctl.config.kubeproxy import KubeProxyConfiguration
from proxyctl.daemon.healthz_server import (
    JSON,
    NOSNIFF,
    NOT_FOUND,
    TEXT,
    BackgroundHTTPServer,
    Response,
    go_json,
)
from proxyctl.daemon.metrics import CONTENT_TYPE, ProxyMetrics

CONFIGZ_GROUP = "kubeproxy.config.k8s.io"
PPROF_NOTE = (b"proxyctl is a Python process: Go's pprof profiles do not exist here. "
              b"/debug/pprof/goroutine shows the stacks of its threads; for CPU profiles use py-spy "
              b"(py-spy record --pid PID).\n")


class MetricsServer(BackgroundHTTPServer):
    """``/metrics``, ``/proxyMode``, ``/configz`` (and ``/debug/pprof``) on metricsBindAddress.

    ``mode`` is the proxy mode in use (after defaulting and any fallback), as ``/proxyMode`` shows it.
    """

    def __init__(self, address: str, *, metrics: ProxyMetrics, mode: str, config: KubeProxyConfiguration,
                 enable_profiling: bool = False, netns: str | None = None):
        super().__init__(address, self.respond, field="metricsBindAddress", netns=netns)
        self.metrics = metrics
        self.mode = mode
        self.enable_profiling = enable_profiling
        self._configz = go_json({CONFIGZ_GROUP: internal_config(config, mode=mode)})

    def respond(self, method: str, path: str, headers: Mapping[str, str]) -> Response:
        if path == "/metrics":
            gzipped = "gzip" in headers.get("Accept-Encoding", "")
            extra = (("Content-Encoding", "gzip"),) if gzipped else ()
            return Response(200, self.metrics.exposition(gzipped=gzipped), (("Content-Type", CONTENT_TYPE), *extra))
        if path == "/proxyMode":
            return Response(200, self.mode.encode(), (("Content-Type", TEXT), NOSNIFF))
        if path == "/configz":
            return Response(200, self._configz, (("Content-Type", JSON), NOSNIFF))
        if path in ("/healthz", "/healthz/ping"):
            return Response(200, b"ok", (("Content-Type", TEXT), NOSNIFF))
        if self.enable_profiling and (path == "/debug/pprof" or path.startswith("/debug/pprof/")):
            if path == "/debug/pprof/goroutine":
                return Response(200, thread_stacks().encode(), (("Content-Type", TEXT), NOSNIFF))
            return Response(404, PPROF_NOTE, (("Content-Type", TEXT), NOSNIFF))
        return NOT_FOUND


def thread_stacks() -> str:
    """Every thread's stack, the closest a Python process has to Go's goroutine dump."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f"thread {ident} [{names.get(ident, '?')}]:\n{''.join(traceback.format_stack(frame))}")
    return "\n".join(parts)


def internal_config(config: KubeProxyConfiguration, *, mode: str) -> dict:
    """kube-proxy's internal KubeProxyConfiguration, as Go marshals it, from our v1alpha1 data.

    The v1alpha1 conversion moves the written mode's syncPeriod/minSyncPeriod and masqueradeAll to
    the top level and ``Linux``, conntrack and oomScoreAdj under ``Linux``, and splits clusterCIDR;
    then ``platformApplyDefaults`` fills the mode, detectLocalMode (ClusterCIDR) and, in nftables
    mode, nodePortAddresses (["primary"]). Keys follow the Go struct's field order.
    """
    d = config.data
    written = d["mode"] or "iptables"
    syncs = d["ipvs"] if written == "ipvs" else d["nftables"] if written == "nftables" else d["iptables"]
    masquerade_all = (d["nftables"] if written == "nftables" else d["iptables"])["masqueradeAll"]
    conntrack, ipvs, winkernel = d["conntrack"], d["ipvs"], d["winkernel"]
    client = d["clientConnection"]
    node_port_addresses = d["nodePortAddresses"]
    if mode == "nftables" and not node_port_addresses:
        node_port_addresses = ["primary"]
    return {
        "Linux": {
            "Conntrack": {
                "MaxPerCore": conntrack["maxPerCore"],
                "Min": conntrack["min"],
                "TCPEstablishedTimeout": conntrack["tcpEstablishedTimeout"],
                "TCPCloseWaitTimeout": conntrack["tcpCloseWaitTimeout"],
                "TCPBeLiberal": conntrack["tcpBeLiberal"],
                "UDPTimeout": conntrack["udpTimeout"] or "0s",
                "UDPStreamTimeout": conntrack["udpStreamTimeout"] or "0s",
            },
            "MasqueradeAll": masquerade_all,
            "OOMScoreAdj": d["oomScoreAdj"],
        },
        "Windows": {"RunAsService": d.get("windowsRunAsService", False)},
        "FeatureGates": dict(sorted((d.get("featureGates") or {}).items())),
        "ClientConnection": {
            "Kubeconfig": client["kubeconfig"],
            "AcceptContentTypes": client["acceptContentTypes"],
            "ContentType": client["contentType"],
            "QPS": _go_float(client["qps"]),
            "Burst": client["burst"],
        },
        "Logging": d["logging"],
        "HostnameOverride": d["hostnameOverride"],
        "BindAddress": d["bindAddress"],
        "HealthzBindAddress": d["healthzBindAddress"],
        "MetricsBindAddress": d["metricsBindAddress"],
        "BindAddressHardFail": d["bindAddressHardFail"],
        "EnableProfiling": d["enableProfiling"],
        "ShowHiddenMetricsForVersion": d["showHiddenMetricsForVersion"],
        "Mode": mode,
        "IPTables": {"MasqueradeBit": d["iptables"]["masqueradeBit"],
                     "LocalhostNodePorts": d["iptables"]["localhostNodePorts"]},
        "IPVS": {
            "Scheduler": ipvs["scheduler"],
            "ExcludeCIDRs": ipvs["excludeCIDRs"],
            "StrictARP": ipvs["strictARP"],
            "TCPTimeout": ipvs["tcpTimeout"],
            "TCPFinTimeout": ipvs["tcpFinTimeout"],
            "UDPTimeout": ipvs["udpTimeout"],
        },
        "Winkernel": {
            "NetworkName": winkernel["networkName"],
            "SourceVip": winkernel["sourceVip"],
            "EnableDSR": winkernel["enableDSR"],
            "RootHnsEndpointName": winkernel["rootHnsEndpointName"],
            "ForwardHealthCheckVip": winkernel["forwardHealthCheckVip"],
        },
        "NFTables": {"MasqueradeBit": d["nftables"]["masqueradeBit"]},
        "DetectLocalMode": d["detectLocalMode"] or "ClusterCIDR",
        "DetectLocal": {
            "BridgeInterface": d["detectLocal"]["bridgeInterface"],
            "ClusterCIDRs": d["clusterCIDR"].split(",") if d["clusterCIDR"] else None,
            "InterfaceNamePrefix": d["detectLocal"]["interfaceNamePrefix"],
        },
        "NodePortAddresses": node_port_addresses,
        "SyncPeriod": syncs["syncPeriod"],
        "MinSyncPeriod": syncs["minSyncPeriod"],
        "ConfigSyncPeriod": d["configSyncPeriod"],
    }


def _go_float(value: float) -> float | int:
    """A float32 as Go's JSON writes it: 5, not 5.0."""
    return int(value) if float(value).is_integer() else value
