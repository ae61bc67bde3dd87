"""Rulesets → ``iptables-restore`` input.

Per table: ``*table``, every chain declaration, every rule chain by chain, ``-X`` lines, ``COMMIT``,
which is the shape kube-proxy writes (it interleaves rules of different chains; the kernel
result is the same, which is why kube-proxy's own tests sort before comparing).
"""

from __future__ import annotations

from collections.abc import Iterator

from proxyctl.rules.iptables.model import Rule, Ruleset, Table


def table_lines(table: Table, *, counters: bool = False) -> Iterator[str]:
    yield f"*{table.name}"
    for chain in table.chains.values():
        yield chain.declaration(with_counters=counters)
    for chain in table.chains.values():
        name = chain.name
        for rule in chain.rules:
            yield rule.render(name) if counters or rule.counters is None else rule._replace(counters=None).render(name)
    for name in table.deleted:
        yield f"-X {name}"
    yield "COMMIT"


def render_rule_text(rule: Rule, chain: str) -> str:
    """One rule as an ``-A`` line, without counters."""
    return rule.render(chain) if rule.counters is None else rule._replace(counters=None).render(chain)


def render_restore(ruleset: Ruleset, *, counters: bool = False) -> str:
    """The ruleset as one ``iptables-restore`` payload (tables in ruleset order)."""
    lines: list[str] = []
    for table in ruleset.tables.values():
        lines.extend(table_lines(table, counters=counters))
    return "\n".join(lines) + "\n"
