"""Rulesets → the text ``iptables-save`` prints.

iptables-save lists built-in chains first (with policy), then user chains by name, every rule in
canonical form (see canonical.py), every comment quoted, and ``--nfacct-name`` with two spaces
(a quirk of libxt_nfacct that real dumps show).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from proxyctl.rules.bulk import bulk_allocation
from proxyctl.rules.iptables.canonical import canonical_rule
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, QUOTED_FLAGS, Chain, Opt, Rule, Ruleset, Table

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _save_opt(o: Opt) -> str:
    head = f"! {o.flag}" if o.negated else o.flag
    if o.value is None:
        return head
    if o.flag in QUOTED_FLAGS:  # xtables_save_string: bare if only [A-Za-z0-9_-], else quoted and escaped
        if _BARE.fullmatch(o.value):
            return f"{head} {o.value}"
        return f'{head} "' + re.sub(r'(["\\\\\'])', r"\\\1", o.value) + '"'
    if o.flag == "--nfacct-name":
        return f"{head}  {o.value}"
    return o.render()


def save_rule_text(rule: Rule, chain: str, *, counters: bool = False) -> str:
    parts = []
    if counters:
        c = rule.counters or (0, 0)
        parts.append(f"[{c[0]}:{c[1]}]")
    parts.append(f"-A {chain}")
    parts.extend(_save_opt(o) for o in rule.matches)
    if rule.target is not None:
        parts.append(("-g " if rule.goto else "-j ") + rule.target)
        parts.extend(_save_opt(o) for o in rule.target_opts)
    return " ".join(parts)


def ordered_chains(table: Table) -> list[Chain]:
    """Built-in chains in the kernel's hook order, then user chains sorted by name."""
    builtins = BUILTIN_CHAINS.get(table.name, ())
    first = [table.chains[n] for n in builtins if n in table.chains]
    rest = sorted((c for c in table.chains.values() if c.name not in builtins), key=lambda c: c.name)
    return first + rest


def save_table_lines(table: Table, family: str, *, counters: bool = False) -> Iterator[str]:
    yield f"*{table.name}"
    chains = ordered_chains(table)
    for c in chains:
        cnt = c.counters or (0, 0)
        yield f":{c.name} {c.policy or '-'} [{cnt[0]}:{cnt[1]}]"
    for c in chains:
        for r in c.rules:
            canon = canonical_rule(r, family)
            if counters and r.counters:
                canon = canon._replace(counters=r.counters)
            yield save_rule_text(canon, c.name, counters=counters)
    yield "COMMIT"


def render_save(ruleset: Ruleset, *, counters: bool = False) -> str:
    with bulk_allocation():
        return _render_save(ruleset, counters)


def _render_save(ruleset: Ruleset, counters: bool) -> str:
    lines: list[str] = []
    for t in ruleset.tables.values():
        lines.extend(save_table_lines(t, ruleset.family, counters=counters))
    return "\n".join(lines) + "\n"
