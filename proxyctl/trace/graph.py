"""A trace's path as a picture: Graphviz DOT, and a self-contained HTML page with an SVG drawing.

Nodes are chains (``table:chain``) and where packets end (a DNAT target or a verdict); an edge is a
rule that moved the packet on, labelled with its number and, for a statistic split, its share.
The HTML needs no Graphviz: a layered layout is computed here (each node one column right of the
furthest node that leads to it).
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

from proxyctl.errors import InputError
from proxyctl.trace.result import TraceResult


def edges(result: TraceResult) -> list[tuple[str, str, str]]:
    """(from, to, label) for every step of every outcome, deduplicated, in first-seen order."""
    seen: dict[tuple[str, str, str], None] = {}
    for o in result.outcomes:
        prev = None
        for s in o.path:
            node = f"{s.table}:{s.chain}"
            if prev is not None and prev[0] != node:
                seen.setdefault((prev[0], node, prev[1]), None)
            label = "policy" if s.rule == 0 else f"#{s.rule}" + (f" {s.note}" if s.note else "")
            prev = (node, label)
        end = o.verdict if o.destination is None else f"{o.verdict} DNAT {o.destination_text()}"
        if prev is not None:
            seen.setdefault((prev[0], f"{end} ({o.probability:.1%})", prev[1]), None)
    return list(seen)


def to_dot(result: TraceResult) -> str:
    p = result.packet
    lines = ["digraph trace {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];',
             f'  label="{p.protocol} {p.src} -> {p.dst}:{p.dport}"; labelloc=t;']
    for a, b, label in edges(result):
        lines.append(f'  "{a}" -> "{b}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layout(es: list[tuple[str, str, str]]) -> dict[str, tuple[int, int]]:
    nodes: list[str] = []
    for a, b, _ in es:
        for n in (a, b):
            if n not in nodes:
                nodes.append(n)
    depth = {n: 0 for n in nodes}
    for _ in range(len(nodes)):  # longest path layering (paths are short; cycles are cut by the bound)
        changed = False
        for a, b, _ in es:
            if depth[b] < depth[a] + 1 and depth[a] + 1 < len(nodes):
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            break
    rows: dict[int, int] = defaultdict(int)
    pos = {}
    for n in nodes:
        pos[n] = (depth[n], rows[depth[n]])
        rows[depth[n]] += 1
    return pos


def to_html(result: TraceResult) -> str:
    es = edges(result)
    pos = _layout(es)
    col_w, row_h, box_w, box_h = 300, 60, 260, 34
    width = (max((c for c, _ in pos.values()), default=0) + 1) * col_w + 20
    height = (max((r for _, r in pos.values()), default=0) + 1) * row_h + 20
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
           'font-size="11"><defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z"/></marker></defs>']
    for a, b, label in es:
        (ca, ra), (cb, rb) = pos[a], pos[b]
        x1, y1 = 10 + ca * col_w + box_w, 10 + ra * row_h + box_h / 2
        x2, y2 = 10 + cb * col_w, 10 + rb * row_h + box_h / 2
        svg.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" marker-end="url(#a)"/>')
        svg.append(f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 3}" fill="#a50">{html.escape(label)}</text>')
    for n, (c, r) in pos.items():
        x, y = 10 + c * col_w, 10 + r * row_h
        fill = "#fdd" if n.startswith(("DROP", "REJECT")) else ("#dfd" if n.startswith("ACCEPT") else "#eef")
        svg.append(f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="4" fill="{fill}" stroke="#336"/>')
        svg.append(f'<text x="{x + 6}" y="{y + 21}">{html.escape(n[:40])}</text>')
    svg.append("</svg>")
    rows = "".join(
        f"<tr><td>{o.probability:.2%}</td><td>{o.verdict}</td><td>{html.escape(o.destination_text() or '')}</td>"
        f"<td>{'yes' if o.masquerade else 'no'}</td></tr>" for o in result.outcomes)
    rules = "".join(f"<li><code>{html.escape(s.text)}</code></li>"
                    for s in dict.fromkeys(s for o in result.outcomes for s in o.path if s.rule))
    p = result.packet
    title = html.escape(f"{p.protocol} {p.src} → {p.dst}:{p.dport}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>proxyctl trace {title}</title>"
            "<style>body{font-family:sans-serif} td,th{padding:2px 8px} code{font-size:12px}</style></head>"
            f"<body><h1>{title}</h1>{''.join(svg)}<h2>Outcomes</h2><table><tr><th>probability</th><th>verdict</th>"
            f"<th>DNAT</th><th>masquerade</th></tr>{rows}</table><h2>Rules on the path</h2><ol>{rules}</ol>"
            "</body></html>\n")


def write_graph(result: TraceResult, base: str) -> list[str]:
    stem = base[:-4] if base.endswith((".dot", ".htm")) else (base[:-5] if base.endswith(".html") else base)
    dot, page = Path(stem + ".dot"), Path(stem + ".html")
    try:
        dot.write_text(to_dot(result))
        page.write_text(to_html(result))
    except OSError as e:
        raise InputError(f"--graph {base}: cannot write {e.filename}: {e.strerror}; give a writable path") from e
    return [str(dot), str(page)]
