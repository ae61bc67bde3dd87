"""A full sync that reads before it writes: the end state of kube-proxy's full sync, in few writes.

kube-proxy's full sync rewrites every one of its chains. On the nft backend, redeclaring 60k
existing chains of a 5k-service node takes twice as long as creating them, even without the
quadratic cache (KUBE-PROXY.md §10). After a restart the rules are usually all there already, so
here the node's tables are read and canonicalised, and only the difference is written (with
stale chains deleted), after kube-proxy's canaries and jump rules are ensured. The kernel ends up
with exactly the payload in our chains, as after a full sync; a test compares the two.
"""

from __future__ import annotations

from proxyctl.backends.iptables.names import ChainNames
from proxyctl.dataplane.iptables import Iptables
from proxyctl.dataplane.sync import CANARY_TABLES, ensure_plan, read_table
from proxyctl.rules.bulk import bulk_allocation
from proxyctl.rules.iptables.canonical import canonical_rule
from proxyctl.rules.iptables.delta import delta_payload
from proxyctl.rules.iptables.model import Chain, Ruleset, Table
from proxyctl.rules.iptables.render import render_restore


def _ours(table: Table, keep) -> Table:
    """Our chains of a table as iptables-save printed them: already in canonical form (the kernel
    tests check that our canonical form is iptables-save's); were one to differ, it would only be
    rewritten, never left wrong."""
    return Table(table.name, {name: chain for name, chain in table.chains.items() if keep(name)})


def _canonical_sharing(table: Table, current: Table | None, family: str) -> Table:
    """The payload's table in canonical form; a chain equal to the node's is the node's own object,
    so the canonical copy is dropped at once (at 10k services that is most of 300k rules)."""
    out = Table(table.name)
    for name, chain in table.chains.items():
        canon = [canonical_rule(r, family) for r in chain.rules]
        have = current.chains.get(name) if current is not None else None
        out.chains[name] = have if have is not None and have.rules == canon else Chain(name, canon)
    return out


def converge(ipt: Iptables, payload: Ruleset, *, names: ChainNames) -> int:
    """Make our chains equal ``payload``, writing only what differs; returns the lines written."""
    family = payload.family
    tables = {t: read_table(ipt, family, t) for t in CANARY_TABLES}  # each table read once
    plan = ensure_plan(tables, family, names)
    if plan.payload is not None:
        ipt.restore(family, plan.payload, noflush=True, counters=False)
    ours = {names.services, names.external_services, names.nodeports, names.postrouting, names.mark_masq,
            names.forward, names.proxy_firewall, "KUBE-FIREWALL"}

    def keep(name: str) -> bool:
        return name in ours or name.startswith(names.service_prefixes)

    nat = tables.get("nat")
    if nat is None or not any(c.startswith(names.service_prefixes) for c in nat.chains):
        # a node without our service chains (a first start): nothing to compare, write it all
        text = render_restore(payload)
        ipt.restore(family, text, noflush=True, counters=False)
        return text.count("\n")
    with bulk_allocation():
        current = Ruleset(family, {t: _ours(tables[t], keep) for t in payload.tables if t in tables})
        wanted = Ruleset(family, {t: _canonical_sharing(table, current.tables.get(t), family)
                                  for t, table in payload.tables.items()})
        delta = delta_payload(current, wanted, deletable=names.service_prefixes)
    if delta is not None:
        ipt.restore(family, delta, noflush=True, counters=False)
    return 0 if delta is None else delta.count("\n")
