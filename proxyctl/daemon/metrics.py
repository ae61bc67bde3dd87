"""kube-proxy v1.36's ``kubeproxy_*`` metrics (and proxyctl's own), on a prometheus-client registry.

Names, types, help texts (with component-base's ``[ALPHA]`` prefix), labels and buckets are
kube-proxy's; ``tests/test_daemon_metrics.py`` holds them against what a real v1.36.2 served. As in
kube-proxy (``metrics.RegisterMetrics(mode)``), what is registered depends on the proxy mode:

    every mode      sync_proxy_rules_duration_seconds{ip_family}, ..._last_timestamp_seconds{ip_family},
                    ..._last_queued_timestamp_seconds{ip_family}, ..._endpoint_changes_pending/_total,
                    ..._service_changes_pending/_total, proxy_healthz_total{code}, proxy_livez_total{code},
                    network_programming_duration_seconds{ip_family},
                    sync_proxy_rules_no_local_endpoints_total{ip_family,traffic_policy}
    iptables        sync_full/partial_proxy_rules_duration_seconds{ip_family},
                    sync_proxy_rules_iptables_restore_failures_total{ip_family}, ..._partial_restore_failures_total,
                    sync_proxy_rules_iptables_total/_last{ip_family,table}, and the nfacct counters
                    iptables_ct_state_invalid_dropped_packets_total, iptables_localhost_nodeports_accepted_packets_total
    ipvs            sync_proxy_rules_iptables_restore_failures_total{ip_family}
    nftables        sync_full/partial_proxy_rules_duration_seconds{ip_family} (a v1.36.2 in nftables mode
                    serves them, though the RegisterMetrics we read lists them for iptables only),
                    sync_proxy_rules_nftables_sync_failures_total / _cleanup_failures_total{ip_family}
    iptables, ipvs, nftables: conntrack_reconciler_sync_duration_seconds / _deleted_entries_total{ip_family}

Every mode also gets ``proxyctl_sync_duration_seconds{ip_family,sync="full"|"partial"}``: kube-proxy's
sync histograms stop at 16.384 s, and an nft restore at scale takes minutes, so this one goes on
to 1048.576 s.

The exposition is written as client_golang writes it, so it matches kube-proxy's line for line but
for the values: families sorted by name, children by label values, ``_sum`` before ``_count``,
numbers in Go's spelling (``le="16.384"``, ``0``, ``1.048576e+06``), no ``_created`` series, and no
family without a sample (a labelled metric appears once it has a child). The methods below are
kube-proxy's call sites; the metric objects are public for anything else.
"""

from __future__ import annotations

import gzip
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from proxyctl.backends.iptables.options import CT_INVALID_COUNTER, LOCALHOST_NODEPORT_COUNTER
from proxyctl.errors import KernelError
from proxyctl.node.netns import run_tool

# What Go's promhttp answers a scraper that asks for nothing in particular.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Prometheus' ExponentialBuckets: ``start``, then each bucket ``factor`` times the one before."""
    out = []
    for _ in range(count):
        out.append(start)
        start *= factor
    return tuple(out)


def linear_buckets(start: float, width: float, count: int) -> tuple[float, ...]:
    """Prometheus' LinearBuckets: ``start``, then each bucket ``width`` more than the one before."""
    out = []
    for _ in range(count):
        out.append(start)
        start += width
    return tuple(out)


SYNC_BUCKETS = exponential_buckets(0.001, 2, 15)  # 1 ms .. 16.384 s
LONG_SYNC_BUCKETS = exponential_buckets(0.001, 2, 21)  # 1 ms .. 1048.576 s
# component-base's MergeBuckets starts with a 0 bucket, then 0.25 s, 0.5 s, 1..59 s, 60..115 s, 2..5 min.
NETWORK_PROGRAMMING_BUCKETS = (0.0, *linear_buckets(0.25, 0.25, 2), *linear_buckets(1, 1, 59),
                               *linear_buckets(60, 5, 12), *linear_buckets(120, 30, 7))

MODES = ("iptables", "ipvs", "nftables", "userspace")
NfacctReader = Callable[[], Mapping[str, int]]  # counter name -> packets


class ProxyMetrics:
    """The metrics of one proxyctl daemon, in their own registry (``registry``)."""

    def __init__(self, mode: str = "iptables", *, nfacct: NfacctReader | None = None,
                 process_metrics: bool = True, wall_clock: Callable[[], float] = time.time):
        mode = mode or "iptables"  # v1.36: "" means iptables
        if mode not in MODES:
            raise ValueError(f"proxy mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self._wall_clock = wall_clock
        self._define()
        registered = self._core() + self._for_mode(mode)
        if mode != "userspace":
            registered += [self.conntrack_reconciler_sync_duration, self.conntrack_reconciler_deleted_entries_total]
        collectors: list[Collector] = list(registered)
        if mode == "iptables" and nfacct is not None:
            collectors.append(_NfacctCollector(nfacct))
        if process_metrics:
            collectors.append(ProcessCollector(registry=None))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_GoStyle(collectors))

    def _define(self) -> None:
        family, table, policy, code = ("ip_family",), ("ip_family", "table"), ("ip_family", "traffic_policy"), ("code",)
        self.sync_proxy_rules_latency = _histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", family, SYNC_BUCKETS)
        self.sync_full_proxy_rules_latency = _histogram(
            "kubeproxy_sync_full_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for full resyncs",
            family, SYNC_BUCKETS)
        self.sync_partial_proxy_rules_latency = _histogram(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs", family, SYNC_BUCKETS)
        self.sync_proxy_rules_last_timestamp = _gauge(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "The last time proxy rules were successfully synced",
            family)
        self.sync_proxy_rules_last_queued_timestamp = _gauge(
            "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
            "The last time a sync of proxy rules was queued", family)
        self.network_programming_latency = _histogram(
            "kubeproxy_network_programming_duration_seconds", "In Cluster Network Programming Latency in seconds",
            family, NETWORK_PROGRAMMING_BUCKETS)
        self.endpoint_changes_pending = _gauge(
            "kubeproxy_sync_proxy_rules_endpoint_changes_pending", "Pending proxy rules Endpoint changes")
        self.endpoint_changes_total = _counter(
            "kubeproxy_sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes")
        self.service_changes_pending = _gauge(
            "kubeproxy_sync_proxy_rules_service_changes_pending", "Pending proxy rules Service changes")
        self.service_changes_total = _counter(
            "kubeproxy_sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes")
        self.iptables_restore_failures_total = _counter(
            "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", "Cumulative proxy iptables restore failures",
            family)
        self.iptables_partial_restore_failures_total = _counter(
            "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
            "Cumulative proxy iptables partial restore failures", family)
        self.iptables_rules_total = _gauge(
            "kubeproxy_sync_proxy_rules_iptables_total", "Total number of iptables rules owned by kube-proxy", table)
        self.iptables_rules_last_sync = _gauge(
            "kubeproxy_sync_proxy_rules_iptables_last", "Number of iptables rules written by kube-proxy in last sync",
            table)
        self.nftables_sync_failures_total = _counter(
            "kubeproxy_sync_proxy_rules_nftables_sync_failures_total", "Cumulative proxy nftables sync failures",
            family)
        self.nftables_cleanup_failures_total = _counter(
            "kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total", "Cumulative proxy nftables cleanup failures",
            family)
        self.proxy_healthz_total = _counter(
            "kubeproxy_proxy_healthz_total", "Cumulative proxy healthz HTTP status", code)
        self.proxy_livez_total = _counter("kubeproxy_proxy_livez_total", "Cumulative proxy livez HTTP status", code)
        self.sync_proxy_rules_no_local_endpoints_total = _gauge(
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
            "Number of services with a Local traffic policy and no endpoints", policy)
        self.conntrack_reconciler_sync_duration = _histogram(
            "kubeproxy_conntrack_reconciler_sync_duration_seconds", "ReconcileConntrackFlowsLatency latency in seconds",
            family, SYNC_BUCKETS)
        self.conntrack_reconciler_deleted_entries_total = _counter(
            "kubeproxy_conntrack_reconciler_deleted_entries_total",
            "Cumulative conntrack flows deleted by conntrack reconciler", family)
        self.proxyctl_sync_duration = Histogram(
            "proxyctl_sync_duration_seconds",
            "How long a sync of the proxy rules took, by IP family and kind of sync (full or partial); "
            "unlike kube-proxy's sync histograms its buckets go on past 16 s, to 1048.576 s",
            ("ip_family", "sync"), buckets=LONG_SYNC_BUCKETS, registry=None)

    def _core(self) -> list:
        return [self.sync_proxy_rules_latency, self.sync_proxy_rules_last_queued_timestamp,
                self.sync_proxy_rules_last_timestamp, self.endpoint_changes_pending, self.endpoint_changes_total,
                self.service_changes_pending, self.service_changes_total, self.proxy_healthz_total,
                self.proxy_livez_total, self.network_programming_latency,
                self.sync_proxy_rules_no_local_endpoints_total, self.proxyctl_sync_duration]

    def _for_mode(self, mode: str) -> list:
        if mode == "iptables":
            return [self.sync_full_proxy_rules_latency, self.sync_partial_proxy_rules_latency,
                    self.iptables_restore_failures_total, self.iptables_partial_restore_failures_total,
                    self.iptables_rules_total, self.iptables_rules_last_sync]
        if mode == "ipvs":
            return [self.iptables_restore_failures_total]
        if mode == "nftables":
            return [self.sync_full_proxy_rules_latency, self.sync_partial_proxy_rules_latency,
                    self.nftables_sync_failures_total, self.nftables_cleanup_failures_total]
        return []

    # kube-proxy's call sites, in the order a sync meets them.

    def changes_seen(self, *, endpoints: int = 0, services: int = 0) -> None:
        """The change trackers recorded this many EndpointSlice / Service changes."""
        self.endpoint_changes_total.inc(endpoints)
        self.service_changes_total.inc(services)

    def changes_pending(self, *, endpoints: int, services: int) -> None:
        """How many changes wait for the next sync (set after each change and after each sync)."""
        self.endpoint_changes_pending.set(endpoints)
        self.service_changes_pending.set(services)

    def sync_queued(self, family: str) -> None:
        """A sync of ``family`` was asked for (kube-proxy's ``Sync()``; call ProxyHealth.queued_update too)."""
        self.sync_proxy_rules_last_queued_timestamp.labels(family).set(self._wall_clock())

    def sync_finished(self, family: str, seconds: float, *, full: bool) -> None:
        """A sync attempt of ``family`` took ``seconds``, whether or not it succeeded."""
        self.sync_proxy_rules_latency.labels(family).observe(seconds)
        kind = self.sync_full_proxy_rules_latency if full else self.sync_partial_proxy_rules_latency
        kind.labels(family).observe(seconds)
        self.proxyctl_sync_duration.labels(family, "full" if full else "partial").observe(seconds)

    def sync_succeeded(self, family: str) -> None:
        """The rules of ``family`` are in the kernel (call ProxyHealth.updated too)."""
        self.sync_proxy_rules_last_timestamp.labels(family).set(self._wall_clock())

    def restore_failed(self, family: str, *, partial: bool) -> None:
        """iptables-restore failed; a failed partial restore also counts as a restore failure."""
        if partial:
            self.iptables_partial_restore_failures_total.labels(family).inc()
        self.iptables_restore_failures_total.labels(family).inc()

    def rules_counted(self, family: str, table: str, *, total: int, last: int) -> None:
        """iptables rules owned in ``table`` (total), and written by the last sync (last)."""
        self.iptables_rules_total.labels(family, table).set(total)
        self.iptables_rules_last_sync.labels(family, table).set(last)

    def no_local_endpoints(self, family: str, *, internal: int, external: int) -> None:
        """Services with a Local internal / external traffic policy and no local endpoint."""
        self.sync_proxy_rules_no_local_endpoints_total.labels(family, "internal").set(internal)
        self.sync_proxy_rules_no_local_endpoints_total.labels(family, "external").set(external)

    def network_programmed(self, family: str, seconds: float) -> None:
        """From an EndpointSlice's last-change-trigger-time to its rules being in the kernel."""
        self.network_programming_latency.labels(family).observe(seconds)

    def conntrack_reconciled(self, family: str, seconds: float, deleted: int) -> None:
        self.conntrack_reconciler_sync_duration.labels(family).observe(seconds)
        self.conntrack_reconciler_deleted_entries_total.labels(family).inc(deleted)

    def nftables_sync_failed(self, family: str) -> None:
        self.nftables_sync_failures_total.labels(family).inc()

    def nftables_cleanup_failed(self, family: str) -> None:
        self.nftables_cleanup_failures_total.labels(family).inc()

    def healthz_answered(self, code: int) -> None:
        self.proxy_healthz_total.labels(str(code)).inc()

    def livez_answered(self, code: int) -> None:
        self.proxy_livez_total.labels(str(code)).inc()

    def exposition(self, *, gzipped: bool = False) -> bytes:
        """The text exposition format, written as client_golang writes it (``/metrics``)."""
        text = go_text_format(self.registry.collect()).encode()
        return gzip.compress(text) if gzipped else text


# component-base prefixes every help text with the metric's stability level.
def _histogram(name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Histogram:
    return Histogram(name, f"[ALPHA] {doc}", labels, buckets=buckets, registry=None)


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name, f"[ALPHA] {doc}", labels, registry=None)


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, f"[ALPHA] {doc}", labels, registry=None)


class _GoStyle:
    """Collects everything once, the way client_golang gathers: sorted, no _created, no empty family."""

    def __init__(self, collectors: Iterable[Collector]):
        self._collectors = tuple(collectors)

    def collect(self) -> Iterable[Metric]:
        families = []
        for collector in self._collectors:
            for family in collector.collect():
                family.samples = [s for s in family.samples if not s.name.endswith("_created")]
                if family.samples:
                    families.append(family)
        return sorted(families, key=lambda f: f.name + ("_total" if f.type == "counter" else ""))


def go_float(value: float) -> str:
    """A number as client_golang writes it: strconv's shortest ``'g'`` form (``256``, ``1.048576e+06``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    mantissa = "".join(map(str, digits))
    exp10 = len(mantissa) + exponent - 1  # the power of ten of the first digit
    if exp10 < -4 or exp10 >= 6:  # %e, as Go decides it for the shortest representation
        text = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "") + f"e{exp10:+03d}"
    elif exponent >= 0:
        text = mantissa + "0" * exponent
    elif exp10 >= 0:
        text = mantissa[:exp10 + 1] + "." + mantissa[exp10 + 1:]
    else:
        text = "0." + "0" * (-exp10 - 1) + mantissa
    return ("-" if sign else "") + text


def go_text_format(families: Iterable[Metric]) -> str:
    """The text exposition format with Go's spelling of numbers and order of samples (sum before count)."""
    rank = {"_bucket": 0, "_sum": 1, "_count": 2}
    out = []
    for family in families:
        name = family.name + "_total" if family.type == "counter" else family.name
        kind = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary"}.get(
            family.type, "untyped")
        out.append(f"# HELP {name} {_escape(family.documentation, quote=False)}\n# TYPE {name} {kind}\n")

        def order(item: tuple[int, Sample], family: Metric = family) -> tuple:
            index, sample = item
            child = tuple(v for k, v in sample.labels.items() if k != "le")
            return child, rank.get(sample.name[len(family.name):], 0), index

        for _, sample in sorted(enumerate(family.samples), key=order):
            labels = ",".join(f'{k}="{go_float(float(v)) if k == "le" else _escape(v, quote=True)}"'
                              for k, v in sample.labels.items())
            out.append(f"{sample.name}{{{labels}}} " if labels else f"{sample.name} ")
            out.append(go_float(sample.value) + "\n")
    return "".join(out)


def _escape(text: str, *, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


class _NfacctCollector:
    """kube-proxy's nfacct counters, read at each scrape (kube-proxy asks netlink; we ask ``reader``)."""

    def __init__(self, reader: NfacctReader):
        self._reader = reader

    def collect(self) -> Iterable[Metric]:
        try:
            packets = self._reader()
        except KernelError:
            return []  # kube-proxy logs and leaves the metric out
        out = []
        for counter, name, doc in (
                (CT_INVALID_COUNTER, "kubeproxy_iptables_ct_state_invalid_dropped_packets",
                 "packets dropped by iptables to work around conntrack problems"),
                (LOCALHOST_NODEPORT_COUNTER, "kubeproxy_iptables_localhost_nodeports_accepted_packets",
                 "Number of packets accepted on nodeports of loopback interface")):
            if counter in packets:
                out.append(CounterMetricFamily(name, f"[ALPHA] {doc}", value=packets[counter]))
        return out


_NFACCT_PACKETS = re.compile(r"^\{\s*pkts\s*=\s*(\d+)\s*,\s*bytes\s*=\s*\d+\s*\}\s*=\s*(\S+?);\s*$")


def parse_nfacct_packets(text: str) -> dict[str, int]:
    """``nfacct list`` output to {counter name: packets}."""
    out = {}
    for line in text.splitlines():
        m = _NFACCT_PACKETS.match(line.strip())
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def nfacct_reader(*, netns: str | None, timeout: float = 2.0) -> NfacctReader:
    """A reader of the node's nfacct counters with ``nfacct list`` (in ``netns``), one call per scrape."""
    return lambda: parse_nfacct_packets(run_tool(("nfacct", "list"), netns=netns, timeout=timeout))
