"""kube-proxy's test sort for iptables-restore text, so our output compares with its fixtures.

Only the generated side is sorted (the fixtures are already in this order); marks compare by
value because the tests print ``0x4000`` where kube-proxy itself writes ``0x00004000``.
"""

from __future__ import annotations

import re

_MARK = re.compile(r"0x0*([0-9a-fA-F]+)")
LAST_RULE = "must be the last rule"


def normalise_marks(text: str) -> str:
    return _MARK.sub(lambda m: "0x" + m.group(1).lower(), text)


def _chain_key(name: str) -> tuple[int, str]:
    if name == "KUBE-NODEPORTS":
        return (0, "")
    if name == "KUBE-SERVICES":
        return (1, "")
    if name.startswith("KUBE-"):
        return (2, name)
    return (3, name)


def _service_key(rule: str) -> tuple[int, str]:
    if LAST_RULE in rule:
        return (1, "")
    m = re.search(r'--comment "?([^" :]*)', rule)
    return (0, m.group(1) if m else "")


def sort_restore(text: str) -> str:
    out: list[str] = []
    table = None
    chains: list[str] = []
    rules: dict[str, list[str]] = {}
    deletes: list[str] = []

    def flush() -> None:
        order = sorted(set(chains) | set(rules), key=_chain_key)
        out.extend(f":{c} - [0:0]" for c in sorted(chains, key=_chain_key))
        for c in order:
            rs = rules.get(c, [])
            if c in ("KUBE-NODEPORTS", "KUBE-SERVICES"):
                rs = sorted(rs, key=_service_key)
            out.extend(rs)
        out.extend(deletes)
        out.append("COMMIT")

    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line
            out.append(line)
            chains, rules, deletes = [], {}, []
        elif line.startswith(":"):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            rules.setdefault(line.split()[1], []).append(line)
        elif line.startswith("-X "):
            deletes.append(line)
        elif line == "COMMIT":
            assert table is not None
            flush()
    return "\n".join(out) + "\n"
