"""A trace as a tree a person reads: one branch per outcome, its path, and the why."""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from proxyctl.trace.result import TraceResult

VERDICT_STYLE = {"ACCEPT": "green", "DROP": "red", "REJECT": "red"}


def _packet_line(result: TraceResult, origin: str) -> str:
    p = result.packet
    dport = f":{p.dport}" if p.dport is not None else ""
    dst = f"[{p.dst}]{dport}" if ":" in p.dst and dport else f"{p.dst}{dport}"
    return f"{p.protocol} {p.src}:{p.sport} → {dst} ({origin})"


def trace_tree(result: TraceResult, origin: str, why: list[str] | None = None) -> Tree:
    tree = Tree(Text(_packet_line(result, origin), style="bold"))
    for o in result.outcomes:
        label = Text(f"{o.probability:7.2%}  ")
        label.append(o.verdict, style=VERDICT_STYLE.get(o.verdict, ""))
        label.append(f" by {o.decided_by}")
        if o.destination is not None:
            label.append(f"  DNAT → {o.destination_text()}", style="cyan")
        label.append("  masquerade" if o.masquerade else "  not masqueraded")
        if o.snat:
            label.append(f" (source becomes {o.snat})")
        branch = tree.add(label)
        for s in o.path:
            where = f"{s.table} {s.chain}"
            rule = "policy" if s.rule == 0 else f"#{s.rule}"
            t = Text(f"{where} {rule}: ", style="dim")
            t.append(s.text)
            if s.line is not None:
                t.append(f"  (line {s.line})", style="dim")
            if s.note and s.note != "policy":
                t.append(f"  [{s.note}]", style="yellow")
            branch.add(t)
    if result.unevaluated:
        u = tree.add(Text("not evaluated (the answer above assumes these rules did not match)", style="yellow"))
        for x in result.unevaluated:
            u.add(Text(f"{x.table} {x.chain} #{x.rule}: {x.text} — {x.reason}"))
    if why:
        w = tree.add(Text("why", style="bold"))
        for line in why:
            w.add(line)
    return tree
