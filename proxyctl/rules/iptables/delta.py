"""The smallest ``iptables-restore --noflush`` payload that turns the rules we wrote last time into
the rules we want now, touching nothing else.

kube-proxy's partial sync redeclares (so flushes and refills) every top-level chain and each
changed Service's chains. On the nft backend every chain named in a restore block costs a linear
walk of a sorted list (KUBE-PROXY.md §10), so a 5k-service KUBE-SERVICES rewritten for a one
endpoint change is what makes a partial sync slow. Here a changed chain is edited in place
instead: ``-D CHAIN N`` and ``-I CHAIN N rule`` from an edit script of old against new rules, or
redeclared when most of it changed. Commands are ordered so the kernel accepts them in one
transaction per table: new chains are declared first, then existing chains are edited, then new
chains are filled, and chains that went away are flushed and deleted last (once nothing jumps to
them). The result is exactly ``new``: tests replay it on the fake and on real kernels.
"""

from __future__ import annotations

import difflib

from proxyctl.rules.iptables.model import Chain, Ruleset

REDECLARE_SHARE = 0.5  # past this share of changed rules, rewriting the chain is shorter


def _opcodes(old: list, new: list) -> list[tuple[str, int, int, int, int]]:
    """Non-equal opcodes of old → new. The common head and tail are cut first (a one-endpoint
    change leaves a 20k-rule KUBE-SERVICES equal but for a rule or two: no need to match it all)."""
    lo, n_old, n_new = 0, len(old), len(new)
    while lo < n_old and lo < n_new and old[lo] == new[lo]:
        lo += 1
    hi_old, hi_new = n_old, n_new
    while hi_old > lo and hi_new > lo and old[hi_old - 1] == new[hi_new - 1]:
        hi_old -= 1
        hi_new -= 1
    sm = difflib.SequenceMatcher(a=old[lo:hi_old], b=new[lo:hi_new], autojunk=False)
    return [(tag, i1 + lo, i2 + lo, j1 + lo, j2 + lo) for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal"]


def _edit(name: str, old: list, new: list) -> list[str]:
    ops = _opcodes(old, new)
    lines: list[str] = []
    for _tag, i1, i2, j1, j2 in reversed(ops):  # from the end: earlier positions stay valid
        lines.extend(f"-D {name} {i1 + 1}" for _ in range(i2 - i1))
        for t, rule in enumerate(new[j1:j2]):
            lines.append(rule.render(name).replace(f"-A {name}", f"-I {name} {i1 + 1 + t}", 1))
    return lines


def _changed(old: list, new: list) -> int:
    return sum(max(i2 - i1, j2 - j1) for _tag, i1, i2, j1, j2 in _opcodes(old, new))


def delta_payload(old: Ruleset, new: Ruleset, *, deletable: tuple[str, ...] = ()) -> str | None:
    """Restore text from ``old`` to ``new`` (tables of ``new``), or None when they are equal.

    Chains only ``old`` has are deleted when their name starts with one of ``deletable`` (the
    per-service prefixes); top-level chains are never deleted here.
    """
    out: list[str] = []
    for tname, nt in new.tables.items():
        ot = old.tables.get(tname)
        old_chains: dict[str, Chain] = ot.chains if ot else {}
        declare, edits, fill, drop = [], [], [], []
        for name, chain in nt.chains.items():
            prev = old_chains.get(name)
            if prev is None:
                declare.append(f":{name} - [0:0]")
                fill.extend(r.render(name) for r in chain.rules)
                continue
            if prev.rules is chain.rules or prev.rules == chain.rules:
                continue
            n = max(len(prev.rules), len(chain.rules))
            if n and _changed(prev.rules, chain.rules) > REDECLARE_SHARE * n:
                declare.append(f":{name} - [0:0]")  # a declaration flushes: refill it whole
                fill.extend(r.render(name) for r in chain.rules)
            else:
                edits.extend(_edit(name, prev.rules, chain.rules))
        for name in old_chains:
            if name not in nt.chains and name.startswith(deletable) and deletable:
                drop.extend((f"-F {name}", f"-X {name}"))
        if declare or edits or fill or drop:
            out.append(f"*{tname}")
            out.extend(declare)
            out.extend(edits)
            out.extend(fill)
            out.extend(drop)
            out.append("COMMIT")
    return "\n".join(out) + "\n" if out else None
