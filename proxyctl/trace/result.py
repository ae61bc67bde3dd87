"""What a trace answers: every outcome with its probability, the path that led to it, and what could
not be evaluated. ``to_json`` is the ``-o json`` shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from proxyctl.trace.packet import Packet


@dataclass(frozen=True)
class Step:
    table: str
    chain: str
    rule: int  # 1-based within its chain, as `iptables -L --line-numbers`; 0 for a chain policy
    text: str
    line: int | None = None  # line in the dump it came from, when known
    note: str = ""  # e.g. "p=0.5", "policy ACCEPT"


@dataclass(frozen=True)
class Outcome:
    probability: float
    verdict: str  # ACCEPT | DROP | REJECT
    decided_by: str  # rule | policy
    destination: tuple[str, int | None] | None  # the DNAT target; None when no DNAT happened
    masquerade: bool
    snat: str | None
    raw_path: tuple = field(default=(), repr=False, compare=False)
    resolve: Callable[[tuple], Step] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def path(self) -> tuple[Step, ...]:
        """The rules that moved the packet, built only when someone looks (``--all`` never does)."""
        if self.resolve is None:
            return tuple(self.raw_path)
        return tuple(self.resolve(x) for x in self.raw_path)

    def destination_text(self) -> str | None:
        if self.destination is None:
            return None
        ip, port = self.destination
        if port is None:
            return ip
        return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True)
class Unevaluated:
    table: str
    chain: str
    rule: int
    text: str
    reason: str
    line: int | None = None


@dataclass
class TraceResult:
    packet: Packet
    outcomes: list[Outcome] = field(default_factory=list)
    unevaluated: list[Unevaluated] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def flow_output(self) -> str:
        """The fixtures' one-string summary: ACCEPTed destinations in order, else the one verdict
        every outcome's rule gave, else ""."""
        dests = [o.destination_text() for o in self.outcomes if o.verdict == "ACCEPT" and o.destination]
        if dests:
            return ", ".join(d for d in dests if d)
        verdicts = {o.verdict for o in self.outcomes}
        if self.outcomes and all(o.decided_by == "rule" for o in self.outcomes) and len(verdicts) == 1:
            return verdicts.pop()
        return ""

    @property
    def masquerade(self) -> bool:
        return any(o.masquerade for o in self.outcomes)


def _step(s: Step) -> dict[str, Any]:
    d: dict[str, Any] = {"table": s.table, "chain": s.chain, "rule": s.rule, "text": s.text}
    if s.line is not None:
        d["line"] = s.line
    if s.note:
        d["note"] = s.note
    return d


def to_json(result: TraceResult) -> dict[str, Any]:
    p = result.packet
    out: dict[str, Any] = {
        "packet": {"src": p.src, "dst": p.dst, "protocol": p.protocol, "sport": p.sport, "dport": p.dport},
        "outcomes": [],
        "unevaluated": [
            {"table": u.table, "chain": u.chain, "rule": u.rule, "text": u.text, "reason": u.reason,
             **({"line": u.line} if u.line is not None else {})}
            for u in result.unevaluated
        ],
    }
    if result.warnings:
        out["warnings"] = list(result.warnings)
    for o in result.outcomes:
        dest = None
        if o.destination is not None:
            dest = {"ip": o.destination[0], "port": o.destination[1]}
        out["outcomes"].append({
            "probability": o.probability, "verdict": o.verdict, "decidedBy": o.decided_by, "destination": dest,
            "masquerade": o.masquerade, "snat": o.snat, "path": [_step(s) for s in o.path],
        })
    return out
