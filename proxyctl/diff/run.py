"""``proxyctl diff`` end to end: gather the desired side, read the live side, compare, look at conntrack."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from proxyctl.backends.iptables.names import ChainNames
from proxyctl.brain.build import build_views
from proxyctl.compiler import FAMILIES, effective_mode, node_tables
from proxyctl.diff.compare import DiffReport, Finding, compare
from proxyctl.diff.conntrack import stale_entries
from proxyctl.diff.ownership import Ownership
from proxyctl.errors import InputError
from proxyctl.inputs import gather
from proxyctl.rules.iptables.parse import ParsedRules, parse_dumps, parse_rules


def read_live(*, netns: str | None, backend: str, families: Sequence[str], timeout: float = 120.0
              ) -> tuple[dict[str, ParsedRules], str]:
    """``iptables-save -c`` of each family, parsed; and the backend used."""
    from proxyctl.dataplane.backend_detect import detect_backend
    from proxyctl.dataplane.iptables import tool
    from proxyctl.dataplane.runner import DEFAULT_RUNNER

    chosen = backend if backend != "auto" else detect_backend(netns=netns).backend.value
    out = {}
    for fam in families:
        text = DEFAULT_RUNNER((tool(chosen, fam, "save"), "-c"), netns=netns, timeout=timeout)
        out[fam] = parse_rules(text, source=f"{tool(chosen, fam, 'save')} -c", family=fam)
    return out, chosen


def list_cluster(kubeconfig: str | None, config_path: str | None, node_name: str, service_proxy_name: str | None,
                 timeout: float = 60.0):
    """One consistent list of Services, EndpointSlices and the Node from the API server."""
    from proxyctl.cluster.kubeconfig import load_api_client
    from proxyctl.cluster.watch import ClusterWatch
    from proxyctl.config import load_config

    config, _ = load_config(config_path)
    cc = config.data.get("clientConnection", {})
    api = load_api_client(kubeconfig, cc.get("kubeconfig", ""), qps=float(cc.get("qps", 5)),
                          burst=int(cc.get("burst", 10)))
    watch = ClusterWatch(api, node_name=node_name, service_proxy_name=service_proxy_name)
    watch.start()
    try:
        if not watch.wait_synced(timeout):
            raise InputError(f"the API server ({getattr(api, 'source', 'kubeconfig')}) did not list Services and "
                             f"EndpointSlices within {timeout:g} s; check --kubeconfig and the cluster")
        return watch.snapshot()
    finally:
        watch.stop()


def diff_node(*, manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
              service_proxy_name, netns, live_rules, backend, family, all_chains, conntrack,
              kubeconfig: str | None = None, from_cluster: bool = False) -> tuple[DiffReport, list[str]]:
    from proxyctl.node.discover import discover_node_facts

    cluster = None
    if from_cluster:
        node_name = hostname_override or discover_node_facts(netns).name
        cluster = list_cluster(kubeconfig, config_path, node_name, service_proxy_name)
    inputs = gather(manifests, config_path=config_path, node_facts_path=node_facts_path, strict=strict,
                    hostname_override=hostname_override, node_ips=node_ips, service_proxy_name=service_proxy_name,
                    discover=lambda: discover_node_facts(netns), cluster=cluster)
    effective_mode(inputs, None)
    warnings = list(inputs.warnings) + [f"skipped: {p}" for p in inputs.problems]
    families = (family,) if family else FAMILIES
    prefix = inputs.chain_prefix
    names = ChainNames(prefix)

    if live_rules:
        try:
            text = open(live_rules, encoding="utf-8").read() if live_rules != "-" else sys.stdin.read()
        except OSError as e:
            raise InputError(f"{live_rules}: cannot read the dump: {e.strerror or e}") from e
        live = {p.ruleset.family: p for p in parse_dumps(text, source=live_rules)}
        for fam in families:
            if fam not in live and not family:
                warnings.append(f"{live_rules} has no {fam} dump: {fam} is not compared")
        families = tuple(f for f in families if f in live)
        if family and family not in live:
            raise InputError(f"{live_rules} holds no {family} dump")
    else:
        live, _ = read_live(netns=netns, backend=backend, families=families)

    report = DiffReport()
    zone = inputs.node.zone if inputs.node else ""
    all_views = {}
    for fam in families:
        views = build_views(inputs.state, fam, inputs.facts.name, zone)
        all_views[fam] = views
        desired = node_tables(inputs, fam, prefix=prefix)
        sub = compare(desired, live[fam].ruleset, Ownership.from_views(names, views), all_chains=all_chains)
        report.findings.extend(sub.findings)

    if conntrack and not live_rules:
        from proxyctl.dataplane.conntrack import list_entries

        entries = list_entries(netns=netns, protocol="udp")
        for fam in families:
            for service, e in stale_entries([e for e in entries if e.family == fam], all_views[fam],
                                            inputs.facts.is_local):
                report.findings.append(Finding(fam, service, "stale-conntrack", "", "",
                                               f"udp {e.orig_src}:{e.orig_sport} → {e.orig_dst}:{e.orig_dport} "
                                               f"still goes to {e.dnat_target}, no longer an endpoint"))
    return report, warnings
