"""Rulesets as plain data (``-o json``), the same structure in both directions."""

from __future__ import annotations

from typing import Any

from proxyctl.rules.iptables.model import Chain, Opt, Rule, Ruleset, Table


def _opt(o: Opt) -> dict[str, Any]:
    d: dict[str, Any] = {"flag": o.flag}
    if o.value is not None:
        d["value"] = o.value
    if o.negated:
        d["negated"] = True
    return d


def rule_to_dict(r: Rule) -> dict[str, Any]:
    d: dict[str, Any] = {"matches": [_opt(o) for o in r.matches]}
    if r.target is not None:
        d["goto" if r.goto else "jump"] = r.target
        if r.target_opts:
            d["targetOptions"] = [_opt(o) for o in r.target_opts]
    if r.counters is not None:
        d["counters"] = {"packets": r.counters[0], "bytes": r.counters[1]}
    return d


def ruleset_to_dict(rs: Ruleset) -> dict[str, Any]:
    return {
        "family": rs.family,
        "tables": [
            {
                "name": t.name,
                "chains": [
                    {"name": c.name, **({"policy": c.policy} if c.policy else {}),
                     "rules": [rule_to_dict(r) for r in c.rules]}
                    for c in t.chains.values()
                ],
                **({"deleteChains": list(t.deleted)} if t.deleted else {}),
            }
            for t in rs.tables.values()
        ],
    }


def _opt_from(d: dict[str, Any]) -> Opt:
    return Opt(d["flag"], d.get("value"), bool(d.get("negated", False)))


def ruleset_from_dict(d: dict[str, Any]) -> Ruleset:
    rs = Ruleset(family=d.get("family", "IPv4"))
    for td in d.get("tables", []):
        t: Table = rs.table(td["name"])
        for cd in td.get("chains", []):
            c: Chain = t.chain(cd["name"], policy=cd.get("policy"))
            for rd in cd.get("rules", []):
                target = rd.get("jump", rd.get("goto"))
                cnt = rd.get("counters")
                c.rules.append(Rule(tuple(_opt_from(o) for o in rd.get("matches", [])), target,
                                    tuple(_opt_from(o) for o in rd.get("targetOptions", [])), "goto" in rd,
                                    (cnt["packets"], cnt["bytes"]) if cnt else None))
        t.deleted.extend(td.get("deleteChains", []))
    return rs
