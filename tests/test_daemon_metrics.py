"""The kubeproxy_* metrics, held against what a real kube-proxy v1.36.2 served (names, types, help, labels, buckets).

Both expositions are parsed with prometheus_client's parser; values differ, shapes must not.
"""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxyctl.daemon.metrics import (
    LONG_SYNC_BUCKETS,
    NETWORK_PROGRAMMING_BUCKETS,
    SYNC_BUCKETS,
    ProxyMetrics,
    go_float,
    parse_nfacct_packets,
)
from proxyctl.errors import KernelError
from tests.test_daemon_metrics_fixture import IPTABLES_NFT, NFTABLES

NFACCT_ZERO = {"ct_state_invalid_dropped_pkts": 0, "localhost_nps_accepted_pkts": 0}


def families(text: str, prefix: str = "kubeproxy_") -> dict:
    return {f.name: f for f in text_string_to_metric_families(text) if f.name.startswith(prefix)}


def shape(family) -> tuple:
    """What must match: type, help, the label names of each kind of sample, and the bucket bounds as written."""
    samples = {(s.name[len(family.name):], tuple(sorted(k for k in s.labels if k != "le"))) for s in family.samples}
    buckets = sorted({s.labels["le"] for s in family.samples if "le" in s.labels}, key=float)
    return family.type, family.documentation, samples, buckets


def exercise_like_the_fixture_run(m: ProxyMetrics) -> None:
    """What the fixture's kube-proxy lived through: one full sync per family, a /healthz probe, a reconcile."""
    m.changes_seen(endpoints=9, services=20)
    m.changes_pending(endpoints=0, services=0)
    for family in ("IPv4", "IPv6"):
        m.sync_queued(family)
        m.sync_finished(family, 0.07, full=True)
        m.sync_succeeded(family)
        m.no_local_endpoints(family, internal=0, external=1 if family == "IPv4" else 0)
        if m.mode == "iptables":
            filter_rules, nat_rules = (8, 108) if family == "IPv4" else (3, 5)
            m.rules_counted(family, "filter", total=filter_rules, last=filter_rules)
            m.rules_counted(family, "nat", total=nat_rules, last=nat_rules)
    m.conntrack_reconciled("IPv4", 0.004, 0)
    m.healthz_answered(200)


@pytest.mark.parametrize(("mode", "fixture"), [("iptables", IPTABLES_NFT), ("nftables", NFTABLES)])
def test_the_same_run_exposes_the_same_kubeproxy_families_as_kube_proxy_v1_36(mode, fixture):
    m = ProxyMetrics(mode, nfacct=lambda: NFACCT_ZERO)
    exercise_like_the_fixture_run(m)
    ours, theirs = families(m.exposition().decode()), families(fixture)
    assert sorted(ours) == sorted(theirs)
    for name, family in theirs.items():
        assert shape(ours[name]) == shape(family), name


def masked(text: str) -> list[str]:
    """The kubeproxy_* lines with every sample value replaced by V."""
    return [re.sub(r"^([^#]\S*(?:\{.*\})?) \S+$", r"\1 V", line) for line in text.splitlines() if "kubeproxy_" in line]


@pytest.mark.parametrize(("mode", "fixture"), [("iptables", IPTABLES_NFT), ("nftables", NFTABLES)])
def test_the_exposition_is_written_line_for_line_as_kube_proxy_writes_it(mode, fixture):
    # Go's number spelling (le="16.384", 0 not 0.0), children sorted, _sum before _count, families sorted.
    m = ProxyMetrics(mode, nfacct=lambda: NFACCT_ZERO)
    exercise_like_the_fixture_run(m)
    assert masked(m.exposition().decode()) == masked(fixture)


def test_the_fixture_values_we_can_reproduce_are_reproduced():
    m = ProxyMetrics("iptables", nfacct=lambda: NFACCT_ZERO)
    exercise_like_the_fixture_run(m)
    ours, theirs = families(m.exposition().decode()), families(IPTABLES_NFT)
    for name in ("kubeproxy_sync_proxy_rules_endpoint_changes", "kubeproxy_sync_proxy_rules_service_changes",
                 "kubeproxy_sync_proxy_rules_iptables_total", "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                 "kubeproxy_proxy_healthz", "kubeproxy_conntrack_reconciler_deleted_entries"):
        values = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in theirs[name].samples}
        assert {(s.name, tuple(sorted(s.labels.items()))): s.value for s in ours[name].samples} == values, name


# Families the fixture's kube-proxy had no sample of, as kube-proxy's pkg/proxy/metrics declares them
# (with v1.36's ip_family label): type, help, labels, buckets.
UNSEEN = {
    "kubeproxy_sync_partial_proxy_rules_duration_seconds": (
        "histogram", "[ALPHA] SyncProxyRules latency in seconds for partial resyncs", ("ip_family",), SYNC_BUCKETS),
    "kubeproxy_network_programming_duration_seconds": (
        "histogram", "[ALPHA] In Cluster Network Programming Latency in seconds", ("ip_family",),
        NETWORK_PROGRAMMING_BUCKETS),
    "kubeproxy_proxy_livez": ("counter", "[ALPHA] Cumulative proxy livez HTTP status", ("code",), ()),
    "kubeproxy_sync_proxy_rules_iptables_restore_failures": (
        "counter", "[ALPHA] Cumulative proxy iptables restore failures", ("ip_family",), ()),
    "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures": (
        "counter", "[ALPHA] Cumulative proxy iptables partial restore failures", ("ip_family",), ()),
    "kubeproxy_sync_proxy_rules_nftables_sync_failures": (
        "counter", "[ALPHA] Cumulative proxy nftables sync failures", ("ip_family",), ()),
    "kubeproxy_sync_proxy_rules_nftables_cleanup_failures": (
        "counter", "[ALPHA] Cumulative proxy nftables cleanup failures", ("ip_family",), ()),
}


def test_families_the_fixture_never_showed_are_declared_as_in_kube_proxy():
    iptables, nftables = ProxyMetrics("iptables"), ProxyMetrics("nftables")
    for m in (iptables, nftables):
        m.sync_finished("IPv4", 0.002, full=False)
        m.network_programmed("IPv4", 1.5)
        m.livez_answered(503)
    iptables.restore_failed("IPv4", partial=True)
    nftables.nftables_sync_failed("IPv6")
    nftables.nftables_cleanup_failed("IPv6")
    seen = {**families(iptables.exposition().decode()), **families(nftables.exposition().decode())}
    for name, (kind, doc, labels, buckets) in UNSEEN.items():
        family = seen[name]
        assert (family.type, family.documentation) == (kind, doc), name
        assert {tuple(sorted(k for k in s.labels if k != "le")) for s in family.samples} == {labels}, name
        assert sorted({float(s.labels["le"]) for s in family.samples if "le" in s.labels}) == \
            [*buckets, float("inf")] * bool(buckets), name


def test_kube_proxy_buckets():
    assert SYNC_BUCKETS == (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
                            4.096, 8.192, 16.384)
    assert NETWORK_PROGRAMMING_BUCKETS[:5] == (0.0, 0.25, 0.5, 1.0, 2.0)
    assert NETWORK_PROGRAMMING_BUCKETS[-8:] == (115.0, 120.0, 150.0, 180.0, 210.0, 240.0, 270.0, 300.0)
    assert len(NETWORK_PROGRAMMING_BUCKETS) == 1 + 2 + 59 + 12 + 7


def test_proxyctl_sync_histograms_go_on_where_kube_proxys_stop():
    assert LONG_SYNC_BUCKETS[:15] == SYNC_BUCKETS
    assert LONG_SYNC_BUCKETS[-1] == 1048.576
    m = ProxyMetrics("iptables")
    m.sync_finished("IPv4", 499.0, full=True)  # kube-proxy's 5k-service full sync on the nft backend
    m.sync_finished("IPv4", 0.03, full=False)
    family = families(m.exposition().decode(), "proxyctl_")["proxyctl_sync_duration_seconds"]
    assert family.type == "histogram"
    counts = {(s.labels["sync"], s.labels["le"]): s.value for s in family.samples if s.name.endswith("_bucket")}
    assert counts[("full", "262.144")] == 0 and counts[("full", "524.288")] == 1
    assert counts[("partial", "0.032")] == 1
    kube_proxy = families(m.exposition().decode())["kubeproxy_sync_full_proxy_rules_duration_seconds"]
    assert max(float(s.labels["le"]) for s in kube_proxy.samples if "le" in s.labels) == float("inf")
    assert {s.value for s in kube_proxy.samples if s.labels.get("le") == "16.384"} == {0}  # lost in +Inf


@pytest.mark.parametrize(("mode", "present", "absent"), [
    ("iptables", {"kubeproxy_sync_proxy_rules_iptables_restore_failures", "kubeproxy_sync_proxy_rules_iptables_total",
                  "kubeproxy_iptables_ct_state_invalid_dropped_packets"},
     {"kubeproxy_sync_proxy_rules_nftables_sync_failures"}),
    ("nftables", {"kubeproxy_sync_proxy_rules_nftables_sync_failures",
                  "kubeproxy_sync_full_proxy_rules_duration_seconds"},
     {"kubeproxy_sync_proxy_rules_iptables_restore_failures", "kubeproxy_sync_proxy_rules_iptables_total",
      "kubeproxy_iptables_ct_state_invalid_dropped_packets"}),
    ("ipvs", {"kubeproxy_sync_proxy_rules_iptables_restore_failures"},
     {"kubeproxy_sync_full_proxy_rules_duration_seconds", "kubeproxy_sync_proxy_rules_iptables_total",
      "kubeproxy_sync_proxy_rules_nftables_sync_failures"}),
    ("userspace", {"kubeproxy_sync_proxy_rules_duration_seconds"},
     {"kubeproxy_conntrack_reconciler_sync_duration_seconds", "kubeproxy_sync_proxy_rules_iptables_restore_failures"}),
])
def test_what_is_registered_depends_on_the_mode(mode, present, absent):
    m = ProxyMetrics(mode, nfacct=lambda: NFACCT_ZERO)
    for family in ("IPv4",):
        m.sync_finished(family, 0.01, full=True)
        m.restore_failed(family, partial=False)
        m.rules_counted(family, "nat", total=1, last=1)
        m.nftables_sync_failed(family)
        m.conntrack_reconciled(family, 0.001, 1)
    names = set(families(m.exposition().decode()))
    assert present <= names
    assert not absent & names


def test_an_empty_mode_is_iptables():
    assert ProxyMetrics("").mode == "iptables"
    with pytest.raises(ValueError, match="iptables, ipvs, nftables, userspace"):
        ProxyMetrics("kernelspace")


def test_a_failed_partial_restore_is_also_a_restore_failure():
    m = ProxyMetrics("iptables")
    m.restore_failed("IPv6", partial=True)
    m.restore_failed("IPv6", partial=False)
    assert m.iptables_restore_failures_total.labels("IPv6")._value.get() == 2
    assert m.iptables_partial_restore_failures_total.labels("IPv6")._value.get() == 1


def test_like_go_no_created_series_no_empty_family_and_families_sorted():
    m = ProxyMetrics("iptables")
    text = m.exposition().decode()
    assert "_created" not in text
    assert "kubeproxy_proxy_livez_total" not in text  # no child yet: client_golang shows nothing
    assert "kubeproxy_sync_proxy_rules_endpoint_changes_total 0\n" in text  # unlabelled: shown at 0
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert names == sorted(names)


def test_timestamps_come_from_the_wall_clock():
    m = ProxyMetrics("iptables", wall_clock=lambda: 1_796_003_319.5)
    m.sync_queued("IPv4")
    m.sync_succeeded("IPv4")
    assert m.sync_proxy_rules_last_queued_timestamp.labels("IPv4")._value.get() == 1_796_003_319.5
    assert m.sync_proxy_rules_last_timestamp.labels("IPv4")._value.get() == 1_796_003_319.5


def test_nfacct_counters_are_read_at_each_scrape_and_left_out_when_they_cannot_be():
    packets = {"ct_state_invalid_dropped_pkts": 3}
    m = ProxyMetrics("iptables", nfacct=lambda: packets)
    assert "kubeproxy_iptables_ct_state_invalid_dropped_packets_total 3\n" in m.exposition().decode()
    assert "localhost_nodeports" not in m.exposition().decode()  # that counter does not exist
    packets["ct_state_invalid_dropped_pkts"] = 5
    assert "kubeproxy_iptables_ct_state_invalid_dropped_packets_total 5\n" in m.exposition().decode()

    def broken():
        raise KernelError("nfacct list failed")

    assert "ct_state_invalid" not in ProxyMetrics("iptables", nfacct=broken).exposition().decode()


def test_nfacct_list_output_is_read_for_packets():
    text = ("{ pkts = 00000000000000000012, bytes = 00000000000000000840 } = ct_state_invalid_dropped_pkts;\n"
            "{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = localhost_nps_accepted_pkts;\n")
    assert parse_nfacct_packets(text) == {"ct_state_invalid_dropped_pkts": 12, "localhost_nps_accepted_pkts": 0}


def test_gzip_exposition():
    import gzip

    m = ProxyMetrics("iptables", process_metrics=False)
    assert gzip.decompress(m.exposition(gzipped=True)) == m.exposition()


def test_process_metrics_are_there_when_asked():
    assert "process_cpu_seconds_total" in ProxyMetrics("iptables").exposition().decode()
    assert "process_" not in ProxyMetrics("iptables", process_metrics=False).exposition().decode()


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (1.0, "1"), (108.0, "108"), (131072.0, "131072"), (1048576.0, "1.048576e+06"),
    (16.384, "16.384"), (0.004127736, "0.004127736"), (0.0001, "0.0001"), (2.578e-06, "2.578e-06"),
    (1796003319.4528427, "1.7960033194528427e+09"), (61923328.0, "6.1923328e+07"), (-3.5, "-3.5"),
    (float("inf"), "+Inf"), (float("nan"), "NaN"),
])
def test_numbers_are_spelled_as_go_spells_them(value, text):
    assert go_float(value) == text
