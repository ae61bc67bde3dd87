"""What one service port contributes to the ruleset, kept between syncs.

A daemon compiles the whole ruleset on every sync, but between two syncs only a few service
ports change. Each port's rules are compiled into a fragment (its own chains, and its rules in
the shared top-level chains), cached by the identity of its view; an unchanged port's chains are
the very same objects in the next ruleset, which the delta writer recognises without looking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proxyctl.brain.serviceport import ServicePortView
from proxyctl.rules.iptables.model import Chain, Rule, Table


@dataclass
class Fragment:
    """Chains one service port writes, per table, in the order it wrote them."""

    tables: dict[str, dict[str, Chain]] = field(default_factory=dict)


class Recorder:
    """Quacks like the Table the compiler writes into, and records into a Fragment."""

    def __init__(self, name: str, fragment: Fragment):
        self.chains: dict[str, Chain] = fragment.tables.setdefault(name, {})

    def chain(self, name: str, policy: str | None = None) -> Chain:
        c = self.chains.get(name)
        if c is None:
            c = self.chains[name] = Chain(name)
        return c

    def append(self, chain: str, rule: Rule) -> None:
        self.chain(chain).rules.append(rule)


def replay(fragment: Fragment, tables: dict[str, Table], shared: frozenset[str]) -> None:
    """Add a fragment to the ruleset: its rules in ``shared`` (top-level) chains are appended, its
    own chains are placed as they are (the same objects every sync while the port is unchanged)."""
    for tname, chains in fragment.tables.items():
        table = tables[tname]
        for name, chain in chains.items():
            if name in shared or name in table.chains:
                table.chain(name).rules.extend(chain.rules)
            else:
                table.chains[name] = chain


class FragmentCache:
    """Fragments by view identity, for one set of compiler options; stale entries are dropped on
    every compile (only the views of the current sync are kept)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[ServicePortView, object, bool, Fragment]] = {}
        self._next: dict[int, tuple[ServicePortView, object, bool, Fragment]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, view: ServicePortView, opts: object, large: bool) -> Fragment | None:
        e = self._entries.get(id(view))
        if e is not None and e[0] is view and e[1] == opts and e[2] == large:
            self._next[id(view)] = e
            self.hits += 1
            return e[3]
        self.misses += 1
        return None

    def put(self, view: ServicePortView, opts: object, large: bool, fragment: Fragment) -> None:
        self._next[id(view)] = (view, opts, large, fragment)

    def rotate(self) -> None:
        self._entries, self._next = self._next, {}
