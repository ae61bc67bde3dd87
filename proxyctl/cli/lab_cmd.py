"""``proxyctl lab up|down|list``, and the printing of ``proxyctl trace --live``."""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from proxyctl.errors import InputError
from proxyctl.lab import registry
from proxyctl.lab.lab import Lab, ServiceAccess, destroy, destroy_all, services_of
from proxyctl.lab.probe import DROP, REJECT, addr_text

EXIT_DISAGREE = 3


def _console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160, soft_wrap=not sys.stdout.isatty())


def _cells(*values) -> list[Text]:
    """Table cells as plain text: an IPv6 "[addr]:port" is not console markup."""
    return [v if isinstance(v, Text) else Text(str(v)) for v in values]


def _print(renderables: list) -> None:
    console = _console()
    for r in renderables:
        console.print(r)


class _Interrupts:
    """Ctrl-C and SIGTERM while building: noted, and acted on at the build's next clean step (the
    half-built lab is then removed). A second one interrupts at once. Processes forked while
    building (pyroute2 forks to create namespaces) inherit the handler: they finish their work on
    a Ctrl-C (it is for the parent) and end on a SIGTERM, as they would without it."""

    def __init__(self) -> None:
        self.count = 0
        self.owner = os.getpid()

    def __call__(self) -> bool:
        return self.count > 0

    def handler(self, signum, frame) -> None:
        if os.getpid() != self.owner:  # a forked helper: Ctrl-C is for its parent; SIGTERM ends it
            if signum == signal.SIGTERM:
                os._exit(128 + signum)
            return
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt


@contextmanager
def _interrupts():
    state = _Interrupts()
    previous = {sig: signal.signal(sig, state.handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.group("lab")
def command() -> None:
    """Network-namespace labs: nodes, pods and external hosts with kube-proxy's rules applied for real."""


@command.command("up")
@click.option("-f", "--filename", "manifests", multiple=True, required=True, metavar="FILE",
              help="Services, EndpointSlices (and Nodes): files or directories.")
@click.option("--config", "config_path", metavar="FILE", help="A KubeProxyConfiguration file.")
@click.option("--backend", type=click.Choice(["nft", "legacy"]), default="nft", show_default=True,
              help="The iptables backend the nodes use (the kubelet's hint is created in it).")
@click.option("--name", metavar="NAME", help="The lab's name (default: lab-<random>).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def up(manifests, config_path, backend, name, output):
    """Build the lab the objects describe and apply kube-proxy's rules on each node.

    One pod per endpoint address (serving the ports its EndpointSlices list), nodes from the
    endpoints' nodeName and the Node objects, a client pod per node, external hosts. Prints how to
    get in. The lab stays up until `proxyctl lab down`; a failure or Ctrl-C while building removes
    everything that was made.
    """
    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    with _interrupts() as interrupted:
        lab = Lab.up(list(manifests), config_path=config_path, backend=backend, name=name, progress=progress,
                     cancelled=interrupted)
    services = services_of(lab)
    if output == "json":
        click.echo(json.dumps(_lab_json(lab, services), indent=2))
        return
    _print(_lab_text(lab, services))


@command.command("down")
@click.argument("name", required=False)
@click.option("--all", "everything", is_flag=True,
              help="Every lab: those in the registry and any namespace carrying a lab's marker.")
def down(name, everything):
    """Remove a lab: stop its servers, remove its namespaces (only those carrying its marker)."""
    if everything == bool(name):
        raise click.UsageError("say which lab (NAME) or --all")
    reports = destroy_all() if everything else [destroy(registry.check_lab_name(name))]
    if not everything and not reports[0].namespaces and not reports[0].servers and not reports[0].kept:
        click.echo(f"lab {name}: nothing to remove")
        return
    kept = False
    for r in reports:
        click.echo(f"lab {r.lab}: removed {len(r.namespaces)} namespaces, stopped {len(r.servers)} servers")
        for k in r.kept:
            kept = True
            click.echo(f"  kept {k}", err=True)
    if everything and not reports:
        click.echo("no labs")
    if kept:
        raise click.exceptions.Exit(1)


@command.command("list")
def list_labs():
    """The labs that are up (or half-built)."""
    recs = registry.records()
    if not recs:
        click.echo("no labs")
        return
    for r in recs:
        nodes = len(r.topology.get("nodes", ()))
        click.echo(f"{r.lab}  {r.state}  backend {r.backend}  {nodes} nodes  {len(r.namespaces)} namespaces")


# -- lab up's report ------------------------------------------------------------------------------


def _lab_json(lab: Lab, services: list[ServiceAccess]) -> dict:
    t = lab.topology
    return {
        "lab": lab.name, "backend": lab.backend.value, "router": lab.router_netns,
        "nodes": [{"name": n.name, "netns": lab.netns(n.name), "ips": list(n.ips), "podCIDRs": list(n.pod_cidrs)}
                  for n in t.nodes],
        "pods": [{"name": p.name, "node": p.node, "netns": lab.netns(p.name), "ips": list(p.ips),
                  "serves": [str(x) for x in p.ports], "client": p.client} for p in t.pods],
        "hosts": [{"name": h.name, "netns": lab.netns(h.name), "ips": list(h.ips), "note": h.note} for h in t.hosts],
        "services": [s.__dict__ for s in services],
        "notes": list(t.notes),
    }


def _lab_text(lab: Lab, services: list[ServiceAccess]) -> list:
    t = lab.topology
    out: list = [Text(f"lab {lab.name} is up: iptables mode on the {lab.backend.value} backend, {len(t.nodes)} nodes, "
                      f"{len(t.pods)} pods, {len(t.hosts)} external hosts", style="bold")]
    nodes = Table(box=None, pad_edge=False)
    for col in ("NODE", "NAMESPACE", "ADDRESSES", "POD CIDRS"):
        nodes.add_column(col)
    for n in t.nodes:
        nodes.add_row(*_cells(n.name, lab.netns(n.name), " ".join(n.ips), " ".join(n.pod_cidrs)))
    pods = Table(box=None, pad_edge=False)
    for col in ("POD", "NODE", "NAMESPACE", "ADDRESSES", "SERVES"):
        pods.add_column(col)
    for p in t.pods:
        pods.add_row(*_cells(p.name, p.node, lab.netns(p.name), " ".join(p.ips),
                     "(client)" if p.client else " ".join(str(x) for x in p.ports) or "-"))
    hosts = Table(box=None, pad_edge=False)
    for col in ("HOST", "NAMESPACE", "ADDRESSES", ""):
        hosts.add_column(col)
    for h in t.hosts:
        hosts.add_row(*_cells(h.name, lab.netns(h.name), " ".join(h.ips), h.note))
    svcs = Table(box=None, pad_edge=False)
    for col in ("SERVICE", "PROTOCOL", "CLUSTER IP", "NODE PORT", "LOAD BALANCER / EXTERNAL IPS", "ENDPOINTS"):
        svcs.add_column(col)
    for s in services:
        svcs.add_row(*_cells(s.name, s.protocol, s.cluster, str(s.node_port or "-"),
                     " ".join([*s.load_balancer_ips, *s.external_ips]) or "-", str(s.endpoints)))
    out += [Text(""), nodes, Text(""), pods, Text(""), hosts, Text(""), svcs, Text("")]
    for note in t.notes:
        out.append(Text(f"note: {note}", style="dim"))
    client = next((p for p in t.pods if p.client), None)
    plain = [s for s in services if s.protocol == "tcp" and s.endpoints and not s.node_port]
    example = next((s for s in plain if ":" not in s.cluster_ip), plain[0] if plain else None)
    out.append(Text("Get in (every namespace is an ordinary `ip netns` one):", style="bold"))
    if client is not None and example is not None:
        out.append(Text(f"  ip netns exec {lab.netns(client.name)} curl -s http://{example.cluster}/"))
    out.append(Text(f"  ip netns exec {lab.netns(t.nodes[0].name)} iptables-{lab.backend.value}-save -t nat"))
    if client is not None:
        out.append(Text(f"  ip netns exec {lab.netns(client.name)} bash"))
    if client is not None and example is not None:
        out.append(Text("Compare the kernel with the static tracer:", style="bold"))
        out.append(Text(f"  proxyctl trace --live {example.cluster} --from {client.name} --lab {lab.name}"))
    out.append(Text("Tear down:", style="bold"))
    out.append(Text(f"  proxyctl lab down {lab.name}"))
    return out


# -- trace --live ---------------------------------------------------------------------------------


def run_live(destination: str, *, sender: str | None, lab_name: str | None, client_netns: str | None,
             node_netns: str | None, proto: str | None, probes: int, raw: bool, output: str) -> None:
    """``proxyctl trace --live``: probe, compare, print; exit 3 when the kernel and the prediction disagree."""
    from proxyctl.lab.live import lab_vantage, live_trace, netns_vantage, report_json
    from proxyctl.trace.packet import parse_destination

    if client_netns or node_netns:
        if not (client_netns and node_netns) or sender:
            raise click.UsageError("--client-netns and --node-netns go together, and replace --from")
        for ns in (client_netns, node_netns):
            if not registry.netns_exists(ns):
                raise click.BadParameter(f"network namespace {ns!r} does not exist (see `ip netns list`)")
        lab = None
    elif not sender:
        raise click.UsageError("--live needs --from POD|NODE|EXTERNAL (a name in the lab), or "
                               "--client-netns NS --node-netns NS")
    else:
        lab = Lab.attach(lab_name)
    if "/" in destination and not destination.startswith("["):
        if lab is None:
            raise click.UsageError("a Service name needs a lab (its objects say the address); give IP:PORT")
        dst, dport, sproto = _service_address(lab, destination)
        proto = proto or sproto
    else:
        dst, dport = parse_destination(destination)
    if dport is None:
        raise click.UsageError("--live needs a port: DEST:PORT, [IPv6]:PORT or namespace/name[:port]")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise click.UsageError(f"live probes speak tcp and udp; {proto} is traced statically only "
                               "(this kernel has no SCTP)")
    vantage = lab_vantage(lab, sender, dst) if lab is not None else netns_vantage(client_netns, node_netns, dst)
    report = live_trace(vantage, dst, dport, proto, probes, kind="raw" if raw else "connect")
    if output == "json":
        click.echo(json.dumps(report_json(report), indent=2))
    else:
        _print(live_text(report))
    if not report.agrees:
        raise click.exceptions.Exit(EXIT_DISAGREE)


def _service_address(lab: Lab, text: str) -> tuple[str, int, str]:
    svc, _, port = text.partition(":")
    for s in services_of(lab):
        if s.name == svc and (not port or port in (s.port_name, str(s.port))):
            return s.cluster_ip, s.port, s.protocol
    raise InputError(f"no service port {text!r} in the lab's objects (want namespace/name[:port])")


def live_text(r) -> list:
    v = r.vantage
    out: list = []
    head = Text(f"{r.protocol} {v.client} ({v.client_ip}) → {addr_text(r.dst, r.port)}: {len(r.probes)} probes "
                f"({'crafted packets' if r.kind == 'raw' else 'sockets'}); rules and conntrack of {v.node} "
                f"(iptables-{r.backend.value})", style="bold")
    out.append(head)
    table = Table(box=None, pad_edge=False)
    for col in ("DESTINATION", "POD", "PREDICTED", "OBSERVED", "MASQUERADE predicted / seen", "SOURCE THE POD SAW"):
        table.add_column(col)
    total = max(1, len(r.probes))
    for c in r.categories:
        bad = (c.predicted <= 0 < c.observed) or (
            c.predicted_masquerade is not None and c.observed and c.category not in (REJECT, DROP)
            and bool(c.predicted_masquerade) != (c.masqueraded == c.observed)
            and not (v.in_interface is None and v.client_ip in c.peers))
        style = "red" if bad else ""
        masq = "-" if c.category in (REJECT, DROP, "ERROR") or c.predicted_masquerade is None else (
            f"{'yes' if c.predicted_masquerade else 'no'} / {c.masqueraded} of {c.observed}")
        table.add_row(*_cells(Text(c.category, style=style), c.pod or "-", f"{c.predicted:.1%}",
                      Text(f"{c.observed} ({c.observed / total:.1%})", style=style), masq,
                      " ".join(c.peers) or "-"))
    out.append(table)
    cmp = r.comparison
    if r.later is not r.first and cmp.total != len(r.probes):
        out.append(Text("the first probe was a new client; the others are compared with the prediction for a client "
                        "already in that endpoint's session-affinity list", style="dim"))
    stat = "∞" if cmp.statistic == float("inf") else f"{cmp.statistic:.3g}"
    verdict = Text(f"chi-square {stat} with {cmp.dof} degrees of freedom over {cmp.total} probes: "
                   f"p = {cmp.p_value:.3g} (alpha {cmp.alpha:g}) — ")
    verdict.append("the kernel agrees with the static tracer" if r.agrees else "DISAGREEMENT",
                   style="green" if r.agrees else "bold red")
    out.append(verdict)
    for d in r.disagreements:
        out.append(Text(f"  ✗ {d}", style="red"))
    for w in r.warnings:
        out.append(Text(f"warning: {w}", style="yellow"))
    return out
