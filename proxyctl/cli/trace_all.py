"""``proxyctl trace --all``: every service port from a pod, from the node and from outside, as one
table; a quick health check of a whole ruleset."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from proxyctl.trace.packet import Packet
from proxyctl.trace.result import TraceResult
from proxyctl.trace.session import TraceSession, default_source

EXTERNAL_CLIENT = {"IPv4": "203.0.113.10", "IPv6": "2001:db8:ffff::10"}


def summarise(r: TraceResult) -> str:
    dests = [o.destination_text() for o in r.outcomes if o.verdict == "ACCEPT" and o.destination]
    masq = " masq" if r.masquerade else ""
    partial = " ?" if r.unevaluated else ""
    if dests:
        n = len(dests)
        return (f"{n} endpoint{'s' if n > 1 else ''}" if n > 1 else dests[0]) + masq + partial
    verdicts = sorted({o.verdict for o in r.outcomes})
    if verdicts == ["ACCEPT"]:
        return "passes, no DNAT" + partial
    return "/".join(verdicts) + partial


def rows(session: TraceSession, config) -> list[dict]:
    out = []
    for family, views in sorted(session.views.items()):
        if family not in session.rulesets:
            continue
        pod = default_source(config, session.facts, family)
        node = session.facts.node_ip(family)
        ext = EXTERNAL_CLIENT[family]
        for v in views:
            proto = v.protocol.lower()
            targets = [("cluster IP", v.cluster_ip, v.port)]
            targets += [("external IP", ip, v.port) for ip in v.external_ips]
            targets += [("LB IP", ip, v.port) for ip in v.load_balancer_vips]
            if v.node_port and node:
                targets.append(("node port", node, v.node_port))
            for kind, dst, port in targets:
                row = {"service": str(v.name), "protocol": v.protocol, "kind": kind, "destination": dst, "port": port}
                for who, src in (("pod", pod), ("node", node), ("external", ext)):
                    if src is None or (who == "external" and kind == "cluster IP"):
                        continue
                    row[who] = summarise(session.trace(Packet(src, dst, proto, 40000, port)))
                out.append(row)
    return out


def run_all(session: TraceSession, config, output: str) -> None:
    table_rows = rows(session, config)
    if output == "json":
        click.echo(json.dumps(table_rows, indent=2))
        return
    t = Table("service", "to", "from a pod", "from the node", "from outside")
    for r in table_rows:
        dst = f"[{r['destination']}]" if ":" in r["destination"] else r["destination"]
        t.add_row(f"{r['service']}/{r['protocol'].lower()}", f"{r['kind']} {dst}:{r['port']}",
                  r.get("pod", "-"), r.get("node", "-"), r.get("external", "-"))
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(t)
