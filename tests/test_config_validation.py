"""Validation as kube-proxy v1.36 does it (plus userspace): one failing case per rule, exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyctl.config import default_config, read_config, validate
from proxyctl.config.kubeproxy import KubeProxyConfiguration

HEADER = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "kp.yaml"
    path.write_text(HEADER + text)
    result = read_config(str(path))
    prefix = f"{path}: "
    lines = [str(p) for p in result.problems]
    assert all(line.startswith(prefix) for line in lines)
    return [line[len(prefix):] for line in lines]


CASES = [
    # mode
    ('mode: foo', 'mode: "foo" is not a proxy mode; use iptables, ipvs, nftables or userspace '
                  '(blank means iptables)'),
    ('mode: kernelspace', 'mode: "kernelspace" is not a proxy mode; use iptables, ipvs, nftables or userspace '
                          "(blank means iptables) (kernelspace is kube-proxy's Windows mode)"),
    # masquerade bits
    ("iptables: {masqueradeBit: 40}", "iptables.masqueradeBit: 40 is out of range 0..31"),
    ("iptables: {masqueradeBit: -1}", "iptables.masqueradeBit: -1 is out of range 0..31"),
    ("mode: nftables\nnftables: {masqueradeBit: 32}", "nftables.masqueradeBit: 32 is out of range 0..31"),
    # sync periods of the active section
    ("iptables: {syncPeriod: -1s}", "iptables.syncPeriod: -1s must be greater than 0"),
    ("iptables: {minSyncPeriod: -1s}", "iptables.minSyncPeriod: -1s must not be negative"),
    ("iptables: {minSyncPeriod: 1m}",
     "iptables.minSyncPeriod: 1m0s is longer than iptables.syncPeriod (30s); it must be at most that"),
    ("mode: userspace\niptables: {syncPeriod: -30s}", "iptables.syncPeriod: -30s must be greater than 0"),
    ("mode: ipvs\nipvs: {syncPeriod: -5s}", "ipvs.syncPeriod: -5s must be greater than 0"),
    ("mode: ipvs\nipvs: {minSyncPeriod: -5s}", "ipvs.minSyncPeriod: -5s must not be negative"),
    ("mode: ipvs\nipvs: {minSyncPeriod: 45s}",
     "ipvs.minSyncPeriod: 45s is longer than ipvs.syncPeriod (30s); it must be at most that"),
    ("mode: nftables\nnftables: {syncPeriod: -1m}", "nftables.syncPeriod: -1m0s must be greater than 0"),
    ("mode: nftables\nnftables: {minSyncPeriod: 2m}",
     "nftables.minSyncPeriod: 2m0s is longer than nftables.syncPeriod (30s); it must be at most that"),
    # the rest of the ipvs section, in ipvs mode
    ("mode: ipvs\nipvs: {scheduler: fifo}",
     'ipvs.scheduler: "fifo" is not an IPVS scheduler; use one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, '
     "sed, nq (blank means rr)"),
    ("mode: ipvs\nipvs: {excludeCIDRs: [10.0.0.0/8, 10.0.0.300/32]}",
     'ipvs.excludeCIDRs[1]: "10.0.0.300/32" is not a CIDR (e.g. 10.0.0.0/8 or fd00::/64)'),
    ("mode: ipvs\nipvs: {tcpTimeout: -1s}", "ipvs.tcpTimeout: -1s must not be negative"),
    ("mode: ipvs\nipvs: {tcpFinTimeout: -1s}", "ipvs.tcpFinTimeout: -1s must not be negative"),
    ("mode: ipvs\nipvs: {udpTimeout: -1s}", "ipvs.udpTimeout: -1s must not be negative"),
    # conntrack
    ("conntrack: {maxPerCore: -1}", "conntrack.maxPerCore: -1 must not be negative"),
    ("conntrack: {min: -1}", "conntrack.min: -1 must not be negative"),
    ("conntrack: {tcpEstablishedTimeout: -1s}", "conntrack.tcpEstablishedTimeout: -1s must not be negative"),
    ("conntrack: {tcpCloseWaitTimeout: -1s}", "conntrack.tcpCloseWaitTimeout: -1s must not be negative"),
    ("conntrack: {udpTimeout: -1s}", "conntrack.udpTimeout: -1s must not be negative"),
    ("conntrack: {udpStreamTimeout: -1s}", "conntrack.udpStreamTimeout: -1s must not be negative"),
    # process and client
    ("oomScoreAdj: 1001", "oomScoreAdj: 1001 is out of range -1000..1000"),
    ("oomScoreAdj: -1001", "oomScoreAdj: -1001 is out of range -1000..1000"),
    ("clientConnection: {burst: -1}", "clientConnection.burst: -1 must not be negative"),
    ("configSyncPeriod: -15m", "configSyncPeriod: -15m0s must be greater than 0"),
    # addresses
    ("bindAddress: localhost", 'bindAddress: "localhost" is not an IP address'),
    ("healthzBindAddress: node1:10256", 'healthzBindAddress: "node1:10256": "node1" is not an IP address'),
    ("healthzBindAddress: 0.0.0.0:0", 'healthzBindAddress: "0.0.0.0:0": port "0" is not a port number (1..65535)'),
    ("metricsBindAddress: 127.0.0.1:99999",
     'metricsBindAddress: "127.0.0.1:99999": port "99999" is not a port number (1..65535)'),
    ("metricsBindAddress: 127.0.0.1:http",
     'metricsBindAddress: "127.0.0.1:http": port "http" is not a port number (1..65535)'),
    ("metricsBindAddress: '::1:10249'",
     'metricsBindAddress: "::1:10249" is not IP:port (too many colons in address); e.g. 0.0.0.0:10256 or '
     "[::]:10256"),
    ("metricsBindAddress: localhost",
     'metricsBindAddress: "localhost" is not IP:port (missing port in address); e.g. 0.0.0.0:10256 or '
     "[::]:10256"),
    # portRange
    ("portRange: abc", 'portRange: "abc" is not a port range; use N, N-M or N+M, e.g. 30000-32767'),
    ("portRange: 1-2-3", 'portRange: "1-2-3" is not a port range; use N, N-M or N+M, e.g. 30000-32767'),
    ('portRange: "70000"', 'portRange: "70000" goes beyond port 65535'),
    ("portRange: 65000+1000", 'portRange: "65000+1000" goes beyond port 65535'),
    ("portRange: 20-10", 'portRange: "20-10" ends before it starts; use N, N-M or N+M, e.g. 30000-32767'),
    # nodePortAddresses
    ("nodePortAddresses: [10.0.0.0/8, eth0]",
     'nodePortAddresses[1]: "eth0" is not a CIDR (e.g. 10.0.0.0/8 or fd00::/64) or exactly ["primary"]'),
    ("nodePortAddresses: [10.0.0.0/8, primary]",
     'nodePortAddresses[1]: "primary" cannot be combined with CIDRs; give either ["primary"] or a list of CIDRs'),
    ("nodePortAddresses: [primary, 10.0.0.0/8]",
     'nodePortAddresses[0]: "primary" cannot be combined with CIDRs; give either ["primary"] or a list of CIDRs'),
    # clusterCIDR (detectLocalMode ClusterCIDR, the default)
    ('clusterCIDR: "10.0.0.0/8,fd00::/48,10.1.0.0/16"',
     'clusterCIDR: "10.0.0.0/8,fd00::/48,10.1.0.0/16" has 3 CIDRs; give one CIDR or a dual-stack pair '
     "(e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"),
    ('clusterCIDR: "10.0.0.0/8,10.1.0.0/16"',
     'clusterCIDR: "10.0.0.0/8,10.1.0.0/16" is two IPv4 CIDRs; a dual-stack pair is one IPv4 and one IPv6 '
     "CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"),
    ("clusterCIDR: 10.0.0.0",
     'clusterCIDR: "10.0.0.0": "10.0.0.0" is not a CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)'),
    ('clusterCIDR: "10.0.0.0/8, fd00::/48"',
     'clusterCIDR: "10.0.0.0/8, fd00::/48": " fd00::/48" is not a CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)'),
    # detect-local
    ("detectLocalMode: PodCIDR",
     'detectLocalMode: "PodCIDR" is not a detect-local mode; use ClusterCIDR, NodeCIDR, BridgeInterface, '
     "InterfaceNamePrefix (blank means ClusterCIDR)"),
    ("detectLocalMode: BridgeInterface",
     "detectLocal.bridgeInterface: is empty; detectLocalMode BridgeInterface needs it set"),
    ("detectLocalMode: InterfaceNamePrefix",
     "detectLocal.interfaceNamePrefix: is empty; detectLocalMode InterfaceNamePrefix needs it set"),
    # metrics and logging
    ('showHiddenMetricsForVersion: "1.30"',
     'showHiddenMetricsForVersion: "1.30" is not allowed; leave it empty or give the previous minor version, '
     '"1.35"'),
    ("logging: {format: xml}", 'logging.format: "xml" is not a log format; use text or json'),
]


@pytest.mark.parametrize(("text", "message"), CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_each_rule(tmp_path: Path, text: str, message: str) -> None:
    assert problems(tmp_path, text + "\n") == [message]


@pytest.mark.parametrize("text", [
    "mode: iptables",
    "mode: ipvs",
    "mode: nftables",
    "mode: userspace",
    # sections of other modes are not checked, as in kube-proxy
    "nftables: {masqueradeBit: 40, syncPeriod: -1s}",
    "ipvs: {scheduler: fifo, syncPeriod: -1s, excludeCIDRs: [bad]}",
    "mode: ipvs\niptables: {syncPeriod: -1s}",
    "mode: ipvs\nipvs: {scheduler: sed, excludeCIDRs: [10.0.0.0/8, 'fd00::/64']}",
    "iptables: {minSyncPeriod: 30s, syncPeriod: 30s}",
    "portRange: 30000-32767",
    "portRange: 30000+100",
    "portRange: '8080'",
    "nodePortAddresses: [primary]",
    "nodePortAddresses: [127.0.0.0/8, '::1/128']",
    "nodePortAddresses: [010.000.0.0/8]",  # leading zeros, as ParseCIDRSloppy reads them
    'clusterCIDR: "10.0.0.0/8,fd00::/48"',
    "clusterCIDR: fd00:10::/64",
    "detectLocalMode: NodeCIDR\nclusterCIDR: nonsense",  # clusterCIDR is only read in ClusterCIDR mode
    "detectLocalMode: BridgeInterface\ndetectLocal: {bridgeInterface: cbr0}",
    "detectLocalMode: InterfaceNamePrefix\ndetectLocal: {interfaceNamePrefix: veth}",
    "bindAddress: '::'",
    "healthzBindAddress: '[::1]:10256'",
    "oomScoreAdj: -1000",
    'showHiddenMetricsForVersion: "1.35"',
    "logging: {format: json}",
])
def test_valid(tmp_path: Path, text: str) -> None:
    assert problems(tmp_path, text + "\n") == []


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    assert problems(tmp_path, "iptables: {masqueradeBit: 32}\noomScoreAdj: 5000\nbindAddress: x\n") == [
        "iptables.masqueradeBit: 32 is out of range 0..31",
        "oomScoreAdj: 5000 is out of range -1000..1000",
        'bindAddress: "x" is not an IP address',
    ]


def test_validate_takes_a_built_configuration() -> None:
    data = default_config().data
    data["iptables"]["masqueradeBit"] = 40
    found = validate(KubeProxyConfiguration(data))
    assert [(p.field, p.message, p.source) for p in found] == [
        ("iptables.masqueradeBit", "40 is out of range 0..31", "")]
    assert str(found[0]) == "iptables.masqueradeBit: 40 is out of range 0..31"
