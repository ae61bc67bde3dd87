"""The iptables ruleset model shared by compile, parse, trace and diff.

A rule is the ordered list of its match options and a target. Order is kept as written because
``iptables-restore`` input from kube-proxy (``-m tcp -p tcp -d X --dport 80``) and what
``iptables-save`` prints back (``-d X/32 -p tcp -m tcp --dport 80``) differ only in order and
spelling; ``canonical`` turns either into the one form the kernel stores, so both directions meet.

Options are small named tuples (cheap to build by the hundred thousand, hashable, comparable);
common ones are shared, not rebuilt per rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}

# Options whose value is free text and is written in double quotes when it has a space.
QUOTED_FLAGS = frozenset({"--comment", "--log-prefix", "--nflog-prefix"})


class Opt(NamedTuple):
    """One option of a rule: ``-p tcp``, ``! -s 10.0.0.0/8``, ``-m comment``, ``--rcheck``.

    ``value`` is None for flags that take no argument; several arguments (``--match-set NAME
    dst,dst``) are one space-separated value. Module loads are ``Opt("-m", "tcp")``.
    """

    flag: str
    value: str | None = None
    negated: bool = False

    def render(self) -> str:
        text = _RENDERED.get(self)
        if text is None:
            text = _render_opt(self)
            if len(_RENDERED) < 500_000:
                _RENDERED[self] = text
        return text


def _render_opt(o: Opt) -> str:
    head = f"! {o.flag}" if o.negated else o.flag
    if o.value is None:
        return head
    value = o.value
    if o.flag in QUOTED_FLAGS:
        quote = not value or value[0] in "-!" or any(c.isspace() or c == '"' for c in value)
    else:  # several words (--match-set NAME dst,dst) stay bare unless one would read as an option
        quote = '"' in value or any(w == "!" or (len(w) > 1 and w[0] == "-" and not w[1].isdigit())
                                    for w in value.split())
    if quote:
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{head} {value}"


# Rendered text of options seen before: most options recur across thousands of rules.
_RENDERED: dict[Opt, str] = {}


class Rule(NamedTuple):
    """A rule of one chain: match options in written order, then the target (``-j``/``-g``).

    ``target`` is None for a rule with no target (kube-proxy's last KUBE-FW rule only counts).
    ``counters`` is (packets, bytes) as ``iptables-save -c`` prints them, or None.
    """

    matches: tuple[Opt, ...]
    target: str | None = None
    target_opts: tuple[Opt, ...] = ()
    goto: bool = False
    counters: tuple[int, int] | None = None

    def render(self, chain: str) -> str:
        parts = [f"-A {chain}"] if self.counters is None else [f"[{self.counters[0]}:{self.counters[1]}] -A {chain}"]
        cache = _RENDERED
        for o in self.matches:
            parts.append(cache.get(o) or o.render())
        if self.target is not None:
            parts.append(("-g " if self.goto else "-j ") + self.target)
            for o in self.target_opts:
                parts.append(cache.get(o) or o.render())
        return " ".join(parts)

    def get(self, flag: str) -> Opt | None:
        """The first match option with this flag, or None."""
        for o in self.matches:
            if o.flag == flag:
                return o
        return None

    def target_get(self, flag: str) -> Opt | None:
        for o in self.target_opts:
            if o.flag == flag:
                return o
        return None

    @property
    def comment(self) -> str | None:
        o = self.get("--comment")
        return o.value if o else None

    def modules(self) -> list[str]:
        return [o.value for o in self.matches if o.flag == "-m" and o.value]


@dataclass(slots=True)
class Chain:
    """A chain and its rules; ``policy`` is set for built-in chains only."""

    name: str
    rules: list[Rule] = field(default_factory=list)
    policy: str | None = None
    counters: tuple[int, int] | None = None

    @property
    def builtin(self) -> bool:
        return self.policy is not None

    def declaration(self, with_counters: bool = False) -> str:
        c = self.counters if (with_counters and self.counters) else (0, 0)
        return f":{self.name} {self.policy or '-'} [{c[0]}:{c[1]}]"


@dataclass
class Table:
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)  # ``-X`` lines: chains the payload deletes

    def chain(self, name: str, policy: str | None = None) -> Chain:
        """The chain of that name, declared now if it is not yet."""
        c = self.chains.get(name)
        if c is None:
            c = self.chains[name] = Chain(name, policy=policy)
        return c

    def append(self, chain: str, rule: Rule) -> None:
        self.chain(chain).rules.append(rule)


@dataclass
class Ruleset:
    """Tables of one IP family, in the order they are written."""

    family: str = "IPv4"  # "IPv4" | "IPv6"
    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        t = self.tables.get(name)
        if t is None:
            t = self.tables[name] = Table(name)
        return t

    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables.values() for c in t.chains.values())
