"""``proxyctl trace``: where a packet goes through a node's rules, with every branch and why."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from proxyctl.cli.common import gather_from_flags, input_options
from proxyctl.compiler import effective_mode, node_tables
from proxyctl.errors import InputError
from proxyctl.node.load import load_node_facts
from proxyctl.rules.iptables.parse import ParsedRules, parse_dumps
from proxyctl.trace.explain import explain, find_destination
from proxyctl.trace.packet import PROTOCOLS, Packet, parse_destination
from proxyctl.trace.result import to_json
from proxyctl.trace.session import TraceSession, default_source, from_inputs, from_parsed


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as e:
        raise InputError(f"{path}: cannot read the rules: {e.strerror or e}") from e


def _service_destination(session: TraceSession, text: str) -> tuple[str, int | None, str | None]:
    """``ns/name[:port]`` → (cluster IP, port, protocol) of that service port."""
    svc, _, port = text.partition(":")
    matches = []
    for views in session.views.values():
        for v in views:
            if v.name.service_key != svc:
                continue
            if port and port not in (v.name.port, str(v.port)):
                continue
            matches.append(v)
    if not matches:
        raise InputError(f"no service port {text!r} in the given objects (want namespace/name[:port])")
    v = matches[0]
    return v.cluster_ip, v.port, v.protocol.lower()


@click.command("trace")
@click.argument("destination", required=False)
@input_options
@click.option("--rules", "rules_path", metavar="FILE", help="An iptables-save dump to trace (- for stdin).")
@click.option("--node", "live_node", is_flag=True, help="Trace the live rules of this host (or of --netns).")
@click.option("--netns", metavar="NAME", help="With --node: the network namespace whose rules to trace.")
@click.option("--iptables-backend", type=click.Choice(["auto", "nft", "legacy"]), default="auto", show_default=True,
              help="With --node: which iptables backend holds the rules.")
@click.option("--src", metavar="IP", help="Source address (default: a pod address from the cluster CIDR).")
@click.option("--proto", type=click.Choice(PROTOCOLS), default=None, help="Protocol (default tcp).")
@click.option("--sport", type=click.IntRange(1, 65535), default=40000, show_default=True)
@click.option("--in-interface", metavar="IF", help="The interface the packet arrives on (for -i matches).")
@click.option("--affinity", "affinity", multiple=True, metavar="CHAIN",
              help="Model a returning client already in this recent list (a KUBE-SEP- chain name).")
@click.option("--all", "trace_all", is_flag=True, help="Trace every service port from a pod, the node and outside.")
@click.option("--graph", metavar="FILE", help="Write the path as FILE.dot and FILE.html.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
# -- live mode: real probes in a lab (proxyctl lab up) or any two namespaces -------------------------
@click.option("--live", is_flag=True, help="Send real probes and compare them with the prediction for the node's "
              "live rules (in a lab, or --client-netns/--node-netns).")
@click.option("--from", "sender", metavar="POD|NODE|EXTERNAL", help="--live: who sends (a name in the lab).")
@click.option("-n", "--probes", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="--live: how many probes (full TCP connections or UDP datagrams).")
@click.option("--lab", "lab_name", metavar="NAME", help="--live: which lab (default: the only one that is up).")
@click.option("--client-netns", metavar="NS", help="--live without a lab: the namespace that sends.")
@click.option("--node-netns", metavar="NS", help="--live without a lab: the namespace whose rules decide.")
@click.option("--raw", is_flag=True, help="--live: crafted packets (scapy) instead of sockets.")
def command(destination, manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
            service_proxy_name, rules_path, src, proto, sport, in_interface, affinity, trace_all, graph, output,
            live, sender, probes, lab_name, client_netns, node_netns, raw, live_node=False, netns=None,
            iptables_backend="auto"):
    """Follow a packet to DEST[:PORT] ([IPv6]:PORT, or ns/name[:port]) through a node's iptables rules.

    With --live, send real probes instead (see `proxyctl lab up`): exit 0 when the kernel agrees
    with the prediction, 3 when it does not.
    """
    if live:
        if not destination:
            raise click.UsageError("give a destination: IP:PORT, [IPv6]:PORT or namespace/name[:port]")
        from proxyctl.cli.lab_cmd import run_live

        run_live(destination, sender=sender, lab_name=lab_name, client_netns=client_netns, node_netns=node_netns,
                 proto=proto, probes=probes, raw=raw, output=output)
        return
    if sender or lab_name or client_netns or node_netns or raw:
        raise click.UsageError("--from, --lab, --client-netns, --node-netns and --raw go with --live")
    config = None
    if netns and not live_node:
        raise click.UsageError("--netns goes with --node (trace the live rules of that namespace)")
    if live_node:
        session, config = _live_session(netns, iptables_backend, node_facts_path, manifests, config_path, strict,
                                        hostname_override, node_ips, service_proxy_name)
    elif rules_path:
        if not node_facts_path:
            raise click.UsageError("--rules needs --node-facts: the trace must know the node's addresses")
        facts = load_node_facts(node_facts_path)
        session = from_parsed(parse_dumps(_read(rules_path), source=rules_path), facts, rules_path)
        if manifests:  # the dump's rules, explained (and --all, ns/name) by the cluster's objects
            inputs = gather_from_flags(manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
                                       service_proxy_name)
            config = inputs.config
            session.views = from_inputs(inputs, session.rulesets).views
    elif manifests:
        inputs = gather_from_flags(manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
                                   service_proxy_name)
        effective_mode(inputs, None)
        config = inputs.config
        parsed = {fam: ParsedRules(node_tables(inputs, fam)) for fam in ("IPv4", "IPv6")}
        session = from_inputs(inputs, parsed)
    else:
        raise click.UsageError("say which rules to trace: --rules FILE (an iptables-save dump), --node (the live "
                               "rules) or -f MANIFESTS (compiled on the fly)")
    session.recent_hits = frozenset(affinity)

    if trace_all:
        from proxyctl.cli.trace_all import run_all

        if not session.views:
            raise click.UsageError("--all traces every service port, so it needs the cluster's objects: add -f "
                                   "MANIFESTS (with --rules or --node, they say which services to trace)")

        run_all(session, config, output)
        return
    if not destination:
        raise click.UsageError("give a destination: IP[:PORT], [IPv6]:PORT or namespace/name[:port]")
    if "/" in destination and not destination.startswith("["):
        dst, dport, sproto = _service_destination(session, destination)
        proto = proto or sproto
    else:
        dst, dport = parse_destination(destination)
    proto = proto or "tcp"
    family = "IPv6" if ":" in dst else "IPv4"
    if src is None:
        src = default_source(config, session.facts, family)
        if src is None:
            raise click.UsageError("give --src IP: without a cluster CIDR there is no typical pod address to use")
    packet = Packet(src, dst, proto, sport, dport, in_interface)
    result = session.trace(packet)
    why = []
    if session.views.get(family):
        d = find_destination(session.views[family], dst, dport, proto, session.facts.is_local(dst))
        if d is not None:
            why = explain(d)
    if graph:
        from proxyctl.trace.graph import write_graph

        for path in write_graph(result, graph):
            click.echo(f"wrote {path}", err=True)
    if output == "json":
        data = to_json(result)
        if why:
            data["why"] = why
        click.echo(json.dumps(data, indent=2))
        return
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    origin = "from the node" if session.facts.is_local(src) else "arriving at the node"
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 100_000)
    console.print(_tree(result, origin, why))


def _live_session(netns, backend, node_facts_path, manifests, config_path, strict, hostname_override, node_ips,
                  service_proxy_name):
    """The node's own rules (iptables-save of both families), its discovered addresses, and, when
    manifests are given too, the views that explain the endpoints."""
    from proxyctl.diff.run import read_live
    from proxyctl.node.discover import discover_node_facts

    live, _backend = read_live(netns=netns, backend=backend, families=("IPv4", "IPv6"))
    if manifests:
        inputs = gather_from_flags(manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
                                   service_proxy_name)
        return from_inputs(inputs, live), inputs.config
    facts = load_node_facts(node_facts_path) if node_facts_path else discover_node_facts(netns)
    where = f"netns {netns}" if netns else "this host"
    return from_parsed(list(live.values()), facts, where), None


def _tree(result, origin, why):
    from proxyctl.trace.report import trace_tree

    return trace_tree(result, origin, why)
