"""The metrics server over loopback HTTP: /metrics, /proxyMode, /configz, /healthz, /debug/pprof."""

from __future__ import annotations

import gzip
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxyctl.config import default_config, load_config
from proxyctl.daemon.healthz_server import ListenError
from proxyctl.daemon.metrics import ProxyMetrics
from proxyctl.daemon.metrics_server import MetricsServer, internal_config
from tests.test_daemon_health_server import http_get

# The field order of kube-proxy's internal KubeProxyConfiguration (pkg/proxy/apis/config/types.go), which
# is the order Go's json.Marshal writes, and configz serves.
INTERNAL_FIELDS = [
    "Linux", "Windows", "FeatureGates", "ClientConnection", "Logging", "HostnameOverride", "BindAddress",
    "HealthzBindAddress", "MetricsBindAddress", "BindAddressHardFail", "EnableProfiling",
    "ShowHiddenMetricsForVersion", "Mode", "IPTables", "IPVS", "Winkernel", "NFTables", "DetectLocalMode",
    "DetectLocal", "NodePortAddresses", "SyncPeriod", "MinSyncPeriod", "ConfigSyncPeriod",
]


@pytest.fixture
def metrics() -> ProxyMetrics:
    return ProxyMetrics("iptables", process_metrics=False)


def serve(metrics, *, mode="iptables", config=None, enable_profiling=False) -> MetricsServer:
    server = MetricsServer("127.0.0.1:0", metrics=metrics, mode=mode, config=config or default_config(),
                           enable_profiling=enable_profiling)
    server.start()
    return server


@pytest.fixture
def server(metrics):
    s = serve(metrics)
    yield s
    s.stop()


def test_metrics_are_served_in_the_text_format(server, metrics):
    metrics.sync_finished("IPv4", 0.05, full=True)
    status, headers, body = http_get(server.port, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert "kubeproxy_sync_full_proxy_rules_duration_seconds" in names


def test_metrics_are_gzipped_for_a_scraper_that_asks(server):
    status, headers, body = http_get(server.port, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert b"kubeproxy_sync_proxy_rules_endpoint_changes_total" in gzip.decompress(body)


def test_proxy_mode_is_plain_text_without_a_newline(metrics):
    s = serve(metrics, mode="nftables")
    try:
        status, headers, body = http_get(s.port, "/proxyMode")
    finally:
        s.stop()
    assert (status, body) == (200, b"nftables")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_configz_serves_the_default_configuration_as_kube_proxy_does(server):
    status, headers, body = http_get(server.port, "/configz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    configz = json.loads(body)
    assert list(configz) == ["kubeproxy.config.k8s.io"]
    cfg = configz["kubeproxy.config.k8s.io"]
    assert list(cfg) == INTERNAL_FIELDS
    assert cfg["Mode"] == "iptables"  # "" after platformApplyDefaults
    assert cfg["DetectLocalMode"] == "ClusterCIDR"
    assert cfg["Linux"] == {
        "Conntrack": {"MaxPerCore": 32768, "Min": 131072, "TCPEstablishedTimeout": "24h0m0s",
                      "TCPCloseWaitTimeout": "1h0m0s", "TCPBeLiberal": False, "UDPTimeout": "0s",
                      "UDPStreamTimeout": "0s"},
        "MasqueradeAll": False, "OOMScoreAdj": -999}
    assert cfg["ClientConnection"] == {"Kubeconfig": "", "AcceptContentTypes": "",
                                       "ContentType": "application/vnd.kubernetes.protobuf", "QPS": 5, "Burst": 10}
    assert (cfg["SyncPeriod"], cfg["MinSyncPeriod"], cfg["ConfigSyncPeriod"]) == ("30s", "1s", "15m0s")
    assert cfg["IPTables"] == {"MasqueradeBit": 14, "LocalhostNodePorts": True}
    assert cfg["DetectLocal"] == {"BridgeInterface": "", "ClusterCIDRs": None, "InterfaceNamePrefix": ""}
    assert cfg["NodePortAddresses"] is None
    assert cfg["FeatureGates"] == {}
    assert b'"QPS":5,' in body and b" " not in body.replace(b"vnd.kubernetes", b"")  # Go's compact JSON


def test_configz_converts_the_written_modes_sections(tmp_path):
    path = tmp_path / "kube-proxy.yaml"
    path.write_text(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        "kind: KubeProxyConfiguration\n"
        "mode: nftables\n"
        "clusterCIDR: 10.244.0.0/16,fd00:10:244::/48\n"
        "featureGates: {Zeta: true, Alpha: false}\n"
        "clientConnection: {qps: 2.5}\n"
        "iptables: {syncPeriod: 10s, masqueradeAll: false}\n"
        "nftables: {syncPeriod: 1m, minSyncPeriod: 2s, masqueradeAll: true}\n")
    config, _ = load_config(str(path))
    cfg = internal_config(config, mode="nftables")
    assert (cfg["SyncPeriod"], cfg["MinSyncPeriod"]) == ("1m0s", "2s")  # from the nftables section
    assert cfg["Linux"]["MasqueradeAll"] is True
    assert cfg["NodePortAddresses"] == ["primary"]  # nftables' default
    assert cfg["DetectLocal"]["ClusterCIDRs"] == ["10.244.0.0/16", "fd00:10:244::/48"]
    assert list(cfg["FeatureGates"]) == ["Alpha", "Zeta"]  # Go sorts map keys
    assert cfg["ClientConnection"]["QPS"] == 2.5


def test_the_component_healthz_answers_ok(server):
    for path in ("/healthz", "/healthz/ping"):
        status, headers, body = http_get(server.port, path)
        assert (status, body) == (200, b"ok")
        assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_pprof_is_not_there_without_enable_profiling(server):
    status, _, body = http_get(server.port, "/debug/pprof/")
    assert (status, body) == (404, b"404 page not found\n")


def test_pprof_with_enable_profiling_gives_thread_stacks_and_says_what_a_python_process_lacks(metrics):
    s = serve(metrics, enable_profiling=True)
    try:
        status, _, body = http_get(s.port, "/debug/pprof/goroutine?debug=2")
        assert status == 200
        assert b"thread " in body and b"serve_forever" in body
        status, _, body = http_get(s.port, "/debug/pprof/profile?seconds=5")
        assert status == 404
        assert b"Python process" in body and b"py-spy" in body
    finally:
        s.stop()


def test_unknown_paths_get_gos_404(server):
    status, _, body = http_get(server.port, "/proxymode")  # paths are case-sensitive
    assert (status, body) == (404, b"404 page not found\n")


def test_metrics_bind_address_is_named_when_the_port_is_taken(server, metrics):
    taken = f"127.0.0.1:{server.port}"
    other = MetricsServer(taken, metrics=metrics, mode="iptables", config=default_config())
    with pytest.raises(ListenError, match=f"metricsBindAddress {taken}.*set metricsBindAddress to a free port"):
        other.start()
