"""A diff report for people (per Service, like ``kubectl diff``) and as data (``-o json``)."""

from __future__ import annotations

from typing import Any

from proxyctl.diff.compare import INFO_KINDS, DiffReport, Finding
from proxyctl.diff.ownership import NODE_WIDE

SYMBOL = {"missing-rule": "-", "missing-chain": "-", "missing-jump": "-", "endpoint-missing": "-",
          "extra-rule": "+", "extra-chain": "+", "stale-chain": "+", "extra-jump": "+", "endpoint-extra": "+",
          "stale-conntrack": "+", "changed-rule": "~", "order": "!", "foreign-chain": " "}
WORDS = {"missing-rule": "missing rule", "missing-chain": "missing chain", "missing-jump": "missing jump",
         "extra-rule": "extra rule", "extra-chain": "extra chain", "stale-chain": "stale chain of a deleted Service",
         "extra-jump": "extra jump", "changed-rule": "changed rule", "order": "wrong order",
         "endpoint-extra": "endpoint only on the node", "endpoint-missing": "endpoint missing on the node",
         "stale-conntrack": "stale conntrack entry", "foreign-chain": "not ours (shown with --all-chains)"}


def _counters(f: Finding, show: bool) -> str:
    if not show or f.counters is None:
        return ""
    return f"  [{f.counters[0]} packets, {f.counters[1]} bytes]"


def render_text(report: DiffReport, *, counters: bool = False) -> str:
    out: list[str] = []
    shown_diffs: set[tuple[str, str, str]] = set()
    for service, findings in report.by_service().items():
        out.append(service if service != NODE_WIDE else "node-wide (no single Service)")
        for f in findings:
            where = f" {f.table} {f.chain}" if f.chain else ""
            out.append(f"  {SYMBOL.get(f.kind, '?')} {WORDS.get(f.kind, f.kind)}{where} ({f.family})"
                       + _counters(f, counters))
            if f.kind == "changed-rule":
                out.append(f"      should: {f.text}")
                out.append(f"      has:    {f.live_text}")
            elif f.text:
                out.append(f"      {f.text}")
            key = (f.family, f.table, f.chain)
            if f.diff and key not in shown_diffs:
                shown_diffs.add(key)
                out.extend("      " + line for line in f.diff)
    out.append(summary(report))
    return "\n".join(out) + "\n"


def summary(report: DiffReport) -> str:
    if not report.differs:
        return "no differences: the node has exactly the rules it should"
    c = report.counts()
    services = {f.service for f in report.findings if f.service != NODE_WIDE and f.kind not in INFO_KINDS}
    parts = [f"{n} {WORDS.get(k, k)}{'s' if n > 1 and not k.startswith(('stale-chain', 'foreign')) else ''}"
             for k, n in sorted(c.items()) if k not in INFO_KINDS]
    return f"differences in {len(services)} Service(s): " + ", ".join(parts)


def _finding(f: Finding) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": f.kind, "family": f.family}
    for key in ("table", "chain", "text"):
        if getattr(f, key):
            d[key] = getattr(f, key)
    if f.live_text:
        d["live"] = f.live_text
    if f.counters is not None:
        d["counters"] = {"packets": f.counters[0], "bytes": f.counters[1]}
    if f.diff:
        d["diff"] = list(f.diff)
    return d


def render_json(report: DiffReport) -> dict[str, Any]:
    return {
        "differs": report.differs,
        "services": {(s or "node-wide"): [_finding(f) for f in fs] for s, fs in report.by_service().items()},
        "summary": summary(report),
        "counts": dict(report.counts()),
    }
