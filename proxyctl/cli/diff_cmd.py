"""``proxyctl diff``: what a node should have against what it has. Exit 0 same, 1 different, 2 error."""

from __future__ import annotations

import json
import sys

import click

from proxyctl.cli.common import input_options
from proxyctl.diff.report import render_json, render_text
from proxyctl.errors import ProxyctlError


@click.command("diff")
@input_options
@click.option("--netns", metavar="NAME", help="Compare the rules of this network namespace (default: this host).")
@click.option("--live-rules", "live_rules", metavar="FILE",
              help="Compare against a dump (iptables-save -c; ip6tables-save -c may follow) taken elsewhere.")
@click.option("--iptables-backend", type=click.Choice(["auto", "nft", "legacy"]), default="auto", show_default=True)
@click.option("--ip-family", type=click.Choice(["IPv4", "IPv6"]), help="One family only (default: both).")
@click.option("--all-chains", is_flag=True, help="Also list chains that are not kube-proxy's (never a difference).")
@click.option("--counters", is_flag=True, help="Show how many packets each extra or stale rule still matched.")
@click.option("--conntrack/--no-conntrack", default=True, show_default=True,
              help="Look for stale UDP conntrack entries (live node or namespace only).")
@click.option("--kubeconfig", metavar="FILE", help="Take the desired side from the cluster (one list through "
              "the API) instead of -f; the kubeconfig as `proxyctl run` finds it when omitted with --from-cluster.")
@click.option("--from-cluster", is_flag=True, help="Take the desired side from the cluster's API server.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(manifests, config_path, node_facts_path, strict, hostname_override, node_ips, service_proxy_name,
            netns, live_rules, iptables_backend, ip_family, all_chains, counters, conntrack, kubeconfig, from_cluster,
            output):
    """Diff the rules kube-proxy would program for MANIFESTS against a node's rules, per Service."""
    from proxyctl.diff.run import diff_node as _diff

    from_cluster = from_cluster or bool(kubeconfig)
    if not manifests and not from_cluster:
        raise click.UsageError("give the cluster's objects with -f FILE (a file, a directory, or - for stdin), "
                               "or --from-cluster / --kubeconfig FILE to list them from the API server")
    if manifests and from_cluster:
        raise click.UsageError("give either -f or --from-cluster/--kubeconfig, not both")
    if live_rules and not node_facts_path:
        raise click.UsageError("--live-rules needs --node-facts: a dump taken elsewhere has none of its node's "
                               "addresses")
    if live_rules and netns:
        raise click.UsageError("give either --live-rules or --netns, not both")
    try:
        report, warnings = _diff(
            manifests=manifests, config_path=config_path, node_facts_path=node_facts_path, strict=strict,
            hostname_override=hostname_override, node_ips=node_ips, service_proxy_name=service_proxy_name,
            netns=netns, live_rules=live_rules, backend=iptables_backend, family=ip_family,
            all_chains=all_chains, conntrack=conntrack, kubeconfig=kubeconfig, from_cluster=from_cluster)
    except ProxyctlError as e:
        e.exit_code = 2  # like kubectl diff: 1 means "differences", every failure is 2
        raise
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    if output == "json":
        click.echo(json.dumps(render_json(report), indent=2))
    else:
        sys.stdout.write(render_text(report, counters=counters))
    raise click.exceptions.Exit(1 if report.differs else 0)
