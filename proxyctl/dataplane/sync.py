"""kube-proxy's full sync of one IP family, against an ``Iptables`` (real or fake).

In kube-proxy's order (``syncProxyRules`` with ``doFullSync``, KUBE-PROXY.md §1.2, §1.4, §1.8):

1. read mangle, filter and nat (``iptables-save -t``);
2. ensure the canary chain ``KUBE-PROXY-CANARY`` in mangle, nat and filter, and each jump rule
   from a built-in chain: create its target chain when missing, *prepend* the rule unless an
   identical one (compared in canonical form) is already in the chain. kube-proxy does this with
   one ``iptables -N`` / ``-C`` / ``-I`` per item; we send the missing ones as one
   ``iptables-restore --noflush`` (``-N``/``-I`` lines, which flush nothing), and nothing at
   all when every item is there already;
3. write the payload with stale-chain deletion appended: every nat chain with a per-service
   prefix (``KUBE-SVC-`` ...) that the payload does not declare gets ``:CHAIN - [0:0]`` (flush)
   and ``-X CHAIN``, in one ``iptables-restore --noflush --counters``.

A rejected restore raises RestoreError (tables committed before the failing one keep their new
rules, the failing one keeps its old ones); the next sync must then be a full one, which is what
this function always does.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyctl.backends.iptables.names import ChainNames
from proxyctl.backends.iptables.node_state import CANARY_TABLES, JumpRule, jump_rules
from proxyctl.dataplane.iptables import Iptables
from proxyctl.errors import KernelError, RulesParseError
from proxyctl.rules.iptables.canonical import canonical_rule
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Chain, Rule, Ruleset, Table
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.rules.iptables.render import render_restore


@dataclass(frozen=True)
class SyncResult:
    """What one full sync of one family did."""

    family: str
    backend: str
    rules: dict[str, int]  # table -> rules the payload wrote
    chains: dict[str, int]  # table -> chains the payload declared
    created_chains: tuple[str, ...] = ()  # "table/CHAIN" made by the ensure step
    added_jumps: tuple[str, ...] = ()  # "table/SOURCE -> TARGET" prepended by the ensure step
    stale_chains: tuple[str, ...] = ()  # nat chains deleted


def read_table(ipt: Iptables, family: str, table: str, *, shallow: bool = False) -> Table:
    """One table as ``iptables-save -t`` shows it (parsed); KernelError when unreadable.

    ``shallow`` keeps every chain but only the built-in chains' rules: what a full sync needs
    (jump rules, canaries, stale chains), without parsing 300k service rules it will replace.
    """
    text = ipt.save(family, table)
    if shallow:
        builtins = tuple(f"-A {c} " for c in BUILTIN_CHAINS.get(table, ()))
        text = "\n".join(line for line in text.split("\n")
                         if not line.startswith("-A ") and not line.startswith("[") or line.startswith(builtins))
    try:
        parsed = parse_rules(text, source=f"iptables-save -t {table} ({family})", family=family)
    except RulesParseError as e:
        raise KernelError(f"cannot read the {family} {table} table: {e}", netns=ipt.netns) from e
    return parsed.ruleset.tables.get(table) or Table(table)


@dataclass(frozen=True)
class EnsurePlan:
    payload: str | None  # None: nothing is missing
    created_chains: tuple[str, ...]
    added_jumps: tuple[str, ...]


def ensure_plan(current: dict[str, Table], family: str, names: ChainNames) -> EnsurePlan:
    """The ``-N``/``-I`` lines that make the canaries and jump rules exist, per table."""
    lines: list[str] = []
    created: list[str] = []
    added: list[str] = []
    jumps = jump_rules(names)
    for tname in CANARY_TABLES:
        table = current.get(tname) or Table(tname)
        exists = set(table.chains)
        body: list[str] = []
        for chain in [names.canary] + [j.rule.target or "" for j in jumps if j.table == tname]:
            if chain not in exists:
                exists.add(chain)
                body.append(f"-N {chain}")
                created.append(f"{tname}/{chain}")
        for j in jumps:
            if j.table == tname and not _has_rule(table, j, family):
                body.append(_insert_first(j.source, j.rule))
                added.append(f"{tname}/{j.source} -> {j.rule.target}")
        if body:
            lines += [f"*{tname}", *body, "COMMIT"]
    payload = "\n".join(lines) + "\n" if lines else None
    return EnsurePlan(payload, tuple(created), tuple(added))


def _has_rule(table: Table, jump: JumpRule, family: str) -> bool:
    chain = table.chains.get(jump.source)
    if chain is None:
        return False
    want = canonical_rule(jump.rule, family)
    return any(canonical_rule(r, family) == want for r in chain.rules)


def _insert_first(chain: str, rule: Rule) -> str:
    """``-I CHAIN 1 <rule>``: kube-proxy's EnsureRule(Prepend)."""
    return f"-I {chain} 1" + rule.render(chain)[len(f"-A {chain}"):]


def stale_chains(nat: Table, payload: Ruleset, names: ChainNames) -> tuple[str, ...]:
    """nat chains with a per-service prefix that the payload does not declare, in save order."""
    wanted = payload.tables["nat"].chains if "nat" in payload.tables else {}
    prefixes = names.service_prefixes
    return tuple(c for c in nat.chains if c.startswith(prefixes) and c not in wanted)


def with_stale_deleted(payload: Ruleset, stale: tuple[str, ...]) -> Ruleset:
    """A copy of ``payload`` whose nat section also flushes and deletes ``stale``."""
    if not stale:
        return payload
    tables = dict(payload.tables)
    old = tables.get("nat") or Table("nat")
    nat = Table("nat", dict(old.chains), list(old.deleted))
    for name in stale:
        nat.chains[name] = Chain(name)
        nat.deleted.append(name)
    tables["nat"] = nat
    return Ruleset(family=payload.family, tables=tables)


def full_sync(ipt: Iptables, payload: Ruleset, *, names: ChainNames | None = None) -> SyncResult:
    """Ensure canaries and jump rules, then restore ``payload`` and delete stale chains."""
    names = names or ChainNames()
    family = payload.family
    current = {t: read_table(ipt, family, t, shallow=True) for t in CANARY_TABLES}
    plan = ensure_plan(current, family, names)
    if plan.payload is not None:
        ipt.restore(family, plan.payload, noflush=True, counters=False)
    stale = stale_chains(current["nat"], payload, names)
    ipt.restore(family, render_restore(with_stale_deleted(payload, stale)), noflush=True, counters=True)
    return SyncResult(
        family=family,
        backend=str(ipt.backend),
        rules={t.name: sum(len(c.rules) for c in t.chains.values()) for t in payload.tables.values()},
        chains={t.name: len(t.chains) for t in payload.tables.values()},
        created_chains=plan.created_chains,
        added_jumps=plan.added_jumps,
        stale_chains=stale,
    )
