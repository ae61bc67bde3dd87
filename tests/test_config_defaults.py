"""kube-proxy's v1alpha1 defaults, and how a file's values combine with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxyctl.config import default_config, load_config, validate
from proxyctl.config.yamlfile import dump_yaml

# kubernetes pkg/proxy/apis/config/scheme/testdata/KubeProxyConfiguration/roundtrip/default/v1alpha1.yaml
# at 15b08666 (about v1.26-v1.28): an empty v1alpha1 object after defaulting. A copy of the shared
# fixture fixtures/kube-proxy/config_defaults/v1alpha1_roundtrip_default.yaml, so the suite runs alone.
ROUNDTRIP_DEFAULT = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 10
  contentType: application/vnd.kubernetes.protobuf
  kubeconfig: ""
  qps: 5
clusterCIDR: ""
configSyncPeriod: 15m0s
conntrack:
  maxPerCore: 32768
  min: 131072
  tcpCloseWaitTimeout: 1h0m0s
  tcpEstablishedTimeout: 24h0m0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: 0.0.0.0:10256
hostnameOverride: ""
iptables:
  localhostNodePorts: true
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 1s
  syncPeriod: 30s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 30s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
metricsBindAddress: 127.0.0.1:10249
mode: ""
nodePortAddresses: null
oomScoreAdj: -999
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
"""

# What releases after the fixture added, with their defaults.
ADDED_SINCE_FIXTURE = {
    "conntrack": {"tcpBeLiberal": False, "udpTimeout": "0s", "udpStreamTimeout": "0s"},
    "logging": {
        "flushFrequency": "5s",
        "format": "text",
        "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
        "verbosity": 0,
    },
    "nftables": {"masqueradeAll": False, "masqueradeBit": 14, "minSyncPeriod": "1s", "syncPeriod": "30s"},
}


def expected_defaults() -> dict:
    expected = yaml.safe_load(ROUNDTRIP_DEFAULT)
    for key, value in ADDED_SINCE_FIXTURE.items():
        expected.setdefault(key, {}).update(value)
    return expected


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kube-proxy.yaml"
    path.write_text("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n" + text)
    return str(path)


def test_every_fixture_key_has_the_fixture_value() -> None:
    data = default_config().data
    fixture = yaml.safe_load(ROUNDTRIP_DEFAULT)

    def check(want: dict, got: dict, path: str) -> None:
        for key, value in want.items():
            assert key in got, f"{path}{key} missing"
            if isinstance(value, dict):
                check(value, got[key], f"{path}{key}.")
            else:
                assert got[key] == value, f"{path}{key}"

    check(fixture, data, "")


def test_defaults_are_the_fixture_plus_what_v1_36_added() -> None:
    assert default_config().data == expected_defaults()


def test_defaults_are_valid() -> None:
    assert validate(default_config()) == []


def test_no_file_means_defaults_and_no_warnings() -> None:
    config, warnings = load_config(None)
    assert config == default_config()
    assert warnings == []


def test_defaults_print_like_the_fixture() -> None:
    text = dump_yaml(default_config().data)
    # Every line of the fixture appears, written the same way (sorted keys, "" for empty strings).
    lines = text.splitlines()
    for line in ROUNDTRIP_DEFAULT.splitlines():
        assert line in lines
    assert '      infoBufferSize: "0"' in lines
    top_level = [line.split(":")[0] for line in lines if not line.startswith(" ")]
    assert top_level == sorted(top_level)


def test_file_with_only_header_is_the_defaults(tmp_path: Path) -> None:
    config, warnings = load_config(write(tmp_path, ""))
    assert config.data == default_config().data
    assert warnings == []


@pytest.mark.parametrize(("text", "section", "key", "value"), [
    # A zero duration is "unset" and gets the default, as in kube-proxy: 0s cannot be configured.
    ("iptables:\n  minSyncPeriod: 0s\n", "iptables", "minSyncPeriod", "1s"),
    ("iptables:\n  syncPeriod: 0s\n", "iptables", "syncPeriod", "30s"),
    ("nftables:\n  minSyncPeriod: 0s\n", "nftables", "minSyncPeriod", "1s"),
    # Pointer fields keep an explicit zero; null means unset.
    ("conntrack:\n  tcpEstablishedTimeout: 0s\n", "conntrack", "tcpEstablishedTimeout", "0s"),
    ("conntrack:\n  maxPerCore: 0\n", "conntrack", "maxPerCore", 0),
    ("conntrack:\n  maxPerCore: null\n", "conntrack", "maxPerCore", 32768),
    ("iptables:\n  masqueradeBit: 0\n", "iptables", "masqueradeBit", 0),
    ("iptables:\n  localhostNodePorts: false\n", "iptables", "localhostNodePorts", False),
    ("clientConnection:\n  burst: 0\n", "clientConnection", "burst", 10),
    ("clientConnection:\n  qps: 0.5\n", "clientConnection", "qps", 0.5),
    # Durations come out in Go's form whatever way they went in.
    ("iptables:\n  syncPeriod: 90s\n", "iptables", "syncPeriod", "1m30s"),
    ("iptables:\n  syncPeriod: 1.5h\n", "iptables", "syncPeriod", "1h30m0s"),
    ("logging:\n  flushFrequency: 2000000000\n", "logging", "flushFrequency", "2s"),
])
def test_file_values_and_defaults(tmp_path: Path, text: str, section: str, key: str, value: object) -> None:
    config, _ = load_config(write(tmp_path, text))
    assert config.data[section][key] == value


def test_oom_score_adj_zero_is_kept(tmp_path: Path) -> None:
    config, _ = load_config(write(tmp_path, "oomScoreAdj: 0\n"))
    assert config.data["oomScoreAdj"] == 0


@pytest.mark.parametrize(("text", "healthz", "metrics"), [
    ("", "0.0.0.0:10256", "127.0.0.1:10249"),
    ("bindAddress: 10.0.0.1\n", "0.0.0.0:10256", "127.0.0.1:10249"),
    ("bindAddress: 2001:db8::1\n", "[::]:10256", "[::1]:10249"),
    ("bindAddress: '::'\n", "[::]:10256", "[::1]:10249"),
    ("healthzBindAddress: 127.0.0.1\n", "127.0.0.1:10256", "127.0.0.1:10249"),
    ("healthzBindAddress: '::1'\nmetricsBindAddress: 0.0.0.0\n", "[::1]:10256", "0.0.0.0:10249"),
    ("healthzBindAddress: 127.0.0.1:8080\n", "127.0.0.1:8080", "127.0.0.1:10249"),
])
def test_bind_addresses_follow_bind_address_family(tmp_path: Path, text: str, healthz: str, metrics: str) -> None:
    config, _ = load_config(write(tmp_path, text))
    assert (config.healthz_bind_address, config.metrics_bind_address) == (healthz, metrics)


def test_feature_gates_are_written_only_when_set(tmp_path: Path) -> None:
    assert "featureGates" not in default_config().data
    config, _ = load_config(write(tmp_path, "featureGates:\n  SomeGate: true\n"))
    assert config.data["featureGates"] == {"SomeGate": True}


def test_empty_list_stays_a_list(tmp_path: Path) -> None:
    config, _ = load_config(write(tmp_path, "nodePortAddresses: []\n"))
    assert config.data["nodePortAddresses"] == []
    assert config.node_port_addresses is None


def test_properties_of_the_defaults() -> None:
    c = default_config()
    assert (c.mode, c.effective_mode) == ("", "iptables")
    assert (c.masquerade_bit, c.masquerade_all, c.localhost_node_ports) == (14, False, True)
    assert (c.sync_period, c.min_sync_period) == (30.0, 1.0)
    assert c.cluster_cidrs == ()
    assert c.detect_local_mode == "ClusterCIDR"
    assert (c.bridge_interface, c.interface_name_prefix) == ("", "")
    assert c.node_port_addresses is None
    assert (c.hostname_override, c.bind_address) == ("", "0.0.0.0")
    assert c.ipvs_scheduler == ""
    assert c.conntrack == {"maxPerCore": 32768, "min": 131072, "tcpBeLiberal": False,
                           "tcpCloseWaitTimeout": 3600.0, "tcpEstablishedTimeout": 86400.0,
                           "udpStreamTimeout": 0.0, "udpTimeout": 0.0}


@pytest.mark.parametrize(("mode", "bit", "masquerade_all", "sync", "min_sync"), [
    ("", 1, False, 10.0, 2.0),
    ("iptables", 1, False, 10.0, 2.0),
    ("userspace", 1, False, 10.0, 2.0),
    ("ipvs", 1, False, 20.0, 0.0),
    ("nftables", 2, True, 40.0, 4.0),
])
def test_properties_read_the_active_section(tmp_path: Path, mode: str, bit: int, masquerade_all: bool,
                                            sync: float, min_sync: float) -> None:
    text = f"""\
mode: "{mode}"
iptables: {{masqueradeBit: 1, syncPeriod: 10s, minSyncPeriod: 2s}}
ipvs: {{syncPeriod: 20s}}
nftables: {{masqueradeBit: 2, masqueradeAll: true, syncPeriod: 40s, minSyncPeriod: 4s}}
"""
    c, _ = load_config(write(tmp_path, text))
    assert (c.masquerade_bit, c.masquerade_all, c.sync_period, c.min_sync_period) == (
        bit, masquerade_all, sync, min_sync)


def test_list_properties(tmp_path: Path) -> None:
    text = """\
clusterCIDR: "10.0.0.0/8,fd00::/48"
nodePortAddresses: [primary]
detectLocalMode: BridgeInterface
detectLocal: {bridgeInterface: cbr0}
"""
    c, _ = load_config(write(tmp_path, text))
    assert c.cluster_cidrs == ("10.0.0.0/8", "fd00::/48")
    assert c.node_port_addresses == ("primary",)
    assert (c.detect_local_mode, c.bridge_interface) == ("BridgeInterface", "cbr0")
