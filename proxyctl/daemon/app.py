"""``proxyctl run`` wired together: watch → runner → proxier → kernel, with health and metrics.

Threads: the watch's informers deliver changes (``on_change``) which only mark the runner; the
runner thread does every sync and conntrack clean-up; the HTTP servers answer from their own
threads reading thread-safe state. The main thread waits for a signal (SIGTERM/SIGINT stop the
watch and exit 0, leaving the rules in place, as kube-proxy does) or a change of the config file
(exit, so a ConfigMap update restarts the pod).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from proxyctl.backends.iptables.names import prefix_for
from proxyctl.daemon.conntrack_reconciler import reconcile
from proxyctl.daemon.proxier import IptablesProxier, SyncStats
from proxyctl.daemon.runner import Schedule, SyncRunner
from proxyctl.errors import ProxyctlError

log = logging.getLogger("proxyctl.run")


@dataclass
class RunOptions:
    config_path: str | None
    kubeconfig: str | None
    hostname_override: str | None
    node_ips: tuple[str, ...]
    netns: str | None
    backend: str
    service_proxy_name: str | None
    once: bool
    mode_fallback: bool
    sync_timeout: float = 600.0


class RunError(ProxyctlError):
    exit_code = 1


def run(opts: RunOptions) -> int:
    from proxyctl.cluster.kubeconfig import load_api_client
    from proxyctl.cluster.watch import ClusterWatch
    from proxyctl.config import load_config
    from proxyctl.daemon.health import ProxyHealth
    from proxyctl.daemon.healthz_server import HealthzServer
    from proxyctl.daemon.metrics import ProxyMetrics, nfacct_reader
    from proxyctl.daemon.metrics_server import MetricsServer
    from proxyctl.daemon.mode import probe_kernel, select_mode
    from proxyctl.daemon.node_settings import apply as apply_sysctls
    from proxyctl.daemon.node_settings import planned
    from proxyctl.dataplane.backend_detect import detect_backend
    from proxyctl.dataplane.iptables import ShellIptables
    from proxyctl.dataplane.nfacct import ensure_counters
    from proxyctl.dataplane.nft_fast import FastNftIptables
    from proxyctl.node.discover import discover_node_facts
    from proxyctl.node.resolve import resolve_node_facts

    config, warnings = load_config(opts.config_path)
    for w in warnings:
        log.warning("%s", w)
    mode, why = select_mode(config.mode, probe_kernel(), fallback=opts.mode_fallback)
    log.info("using proxy mode mode=%s reason=%r", mode, why)

    facts = resolve_node_facts(hostname_override_flag=opts.hostname_override, node_ip_flags=opts.node_ips,
                               config_hostname_override=config.hostname_override,
                               config_bind_address=config.bind_address,
                               discover=lambda: discover_node_facts(opts.netns))
    # Like kube-proxy, program both families whenever the kernel has both, whatever the node's IPs.
    families = ("IPv4", "IPv6") if os.path.exists("/proc/sys/net/ipv6") else ("IPv4",)
    backend = opts.backend if opts.backend != "auto" else detect_backend(netns=opts.netns).backend.value
    ipt = FastNftIptables(ShellIptables(backend, netns=opts.netns, timeout=opts.sync_timeout))
    nfacct = ensure_counters(netns=opts.netns)
    facts = type(facts)(**{**facts.__dict__, "nfacct": tuple(nfacct.existing)})
    log.info("node name=%s ips=%s backend=%s families=%s nfacct=%s", facts.name, facts.node_ips, backend,
             families, list(nfacct.existing))
    written = apply_sysctls(planned(config, in_netns=opts.netns is not None), netns=opts.netns)
    for w in written:
        log.info("set sysctl %s", w)
    if opts.service_proxy_name:
        log.info("beside kube-proxy (service proxy name %s): other modes' rules are kube-proxy's, left alone",
                 opts.service_proxy_name)
    else:
        _cleanup_other_modes(mode, opts.netns)

    api = load_api_client(opts.kubeconfig, config.data["clientConnection"].get("kubeconfig", ""),
                          qps=float(config.data["clientConnection"].get("qps", 5)),
                          burst=int(config.data["clientConnection"].get("burst", 10)),
                          content_type=config.data["clientConnection"].get("contentType", ""))
    metrics = ProxyMetrics(mode, nfacct=nfacct_reader(netns=opts.netns) if nfacct.supported else None)
    health = ProxyHealth.for_sync_period(config.sync_period)
    runner_box: dict[str, SyncRunner] = {}

    def on_change(event) -> None:
        if getattr(event, "topology_changed", False):
            runner_box["runner"].force_full()
        if event.kind == "Node":
            health.sync_node(watch.node())
        for family in families:
            health.queued_update(family)
            metrics.sync_queued(family)
        runner_box["runner"].request()

    watch = ClusterWatch(api, node_name=facts.name, service_proxy_name=opts.service_proxy_name, on_change=on_change,
                         logger=logging.getLogger("proxyctl.watch"))

    def synced(stats: SyncStats) -> None:
        for family in stats.views:
            health.updated(family)
            metrics.sync_finished(family, stats.seconds, full=stats.full)
            metrics.sync_succeeded(family)
        reconcile(stats.views, facts.is_local, netns=opts.netns,
                  on_done=lambda fam, secs, n: metrics.conntrack_reconciled(fam, secs, n))
        log.info("synced full=%s seconds=%.3f written=%s", stats.full, stats.seconds, stats.families)

    def failed(family: str, partial: bool, error: Exception) -> None:
        metrics.restore_failed(family, partial=partial)

    proxier = IptablesProxier(config=config, facts=facts, ipt=ipt, families=families, snapshot=watch.snapshot,
                              node=watch.node, prefix=prefix_for(opts.service_proxy_name), on_synced=synced,
                              on_failed=failed)
    runner = SyncRunner(proxier.sync, proxier.canary_ok, Schedule(config.min_sync_period, config.sync_period))
    runner_box["runner"] = runner

    watch.start()
    try:
        log.info("waiting for the initial lists of Services and EndpointSlices")
        if not watch.wait_synced(timeout=None if not opts.once else 120.0):
            raise RunError("the API server did not answer the initial lists within 120 s; check --kubeconfig")
        health.sync_node(watch.node())
        if opts.once:
            return 0 if proxier.sync(full=True) else 1
        healthz, metrics_at = serving_addresses(config, opts.service_proxy_name)
        servers = [HealthzServer(healthz, health, metrics=metrics, netns=opts.netns),
                   MetricsServer(metrics_at, metrics=metrics, mode=mode, config=config, netns=opts.netns)]
        for s in servers:
            s.start()
        runner.start()
        runner.request()
        _wait_for_stop(opts.config_path)
        runner.stop()
        for s in servers:
            s.stop()
        return 0
    finally:
        watch.stop()


BESIDE_KUBE_PROXY_PORTS = {"10256": "10356", "10249": "10349"}  # kube-proxy's healthz and metrics ports + 100


def serving_addresses(config, service_proxy_name: str | None) -> tuple[str, str]:
    """healthz and metrics addresses; beside kube-proxy (a service proxy name) its default ports are
    taken, so ours move up by 100 unless the configuration names other ports."""
    out = []
    for address in (config.healthz_bind_address, config.metrics_bind_address):
        host, _, port = address.rpartition(":")
        if service_proxy_name and port in BESIDE_KUBE_PROXY_PORTS:
            address = f"{host}:{BESIDE_KUBE_PROXY_PORTS[port]}"
        out.append(address)
    return out[0], out[1]


def _cleanup_other_modes(mode: str, netns: str | None) -> None:
    """kube-proxy's platform cleanup: the other modes' leftovers (nftables tables, kube-ipvs0)."""
    from proxyctl.dataplane.cleanup import cleanup_ipvs_link, cleanup_nftables

    for step in (lambda: cleanup_nftables(netns=netns, timeout=10.0),
                 lambda: cleanup_ipvs_link(netns=netns, timeout=10.0)):
        try:
            for line in step():
                log.info("removed leftover of another mode: %s", line)
        except ProxyctlError as e:
            log.warning("could not remove another mode's leftovers error=%s", e)


def _wait_for_stop(config_path: str | None) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    mtime = os.stat(config_path).st_mtime if config_path else None
    while not stop.wait(1.0):
        if config_path and os.path.exists(config_path) and os.stat(config_path).st_mtime != mtime:
            log.info("configuration file changed, exiting so that it is read again path=%s", config_path)
            return
    log.info("stopping: rules stay in place")
    time.sleep(0)
