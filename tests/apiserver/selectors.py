"""Label and field selectors, as the API server reads ``labelSelector`` and ``fieldSelector``.

Label selector requirements, comma separated (all must hold): ``key``, ``!key``, ``key=value``,
``key==value``, ``key!=value``, ``key in (a,b)``, ``key notin (a,b)``. A ``!=`` or ``notin``
requirement also holds when the label is absent, as in Kubernetes.

Field selectors: ``path=value``, ``path==value``, ``path!=value`` over ``metadata.name`` and
``metadata.namespace``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Predicate = Callable[[dict], bool]

_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)\s*$")
FIELDS = ("metadata.name", "metadata.namespace")


class SelectorError(ValueError):
    pass


def _split(text: str) -> list[str]:
    """Comma-separated requirements; commas inside parentheses belong to a value set."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def parse_label_selector(text: str | None) -> Predicate:
    requirements: list[Predicate] = []
    for part in _split(text or ""):
        if m := _SET_RE.match(part):
            key, values = m["key"], {v.strip() for v in m["values"].split(",") if v.strip()}
            if m["op"] == "in":
                requirements.append(lambda o, k=key, vs=values: _labels(o).get(k) in vs)
            else:
                requirements.append(lambda o, k=key, vs=values: _labels(o).get(k) not in vs)
        elif m := _EQ_RE.match(part):
            key, value = m["key"], m["value"]
            if m["op"] == "!=":
                requirements.append(lambda o, k=key, v=value: _labels(o).get(k) != v)
            else:
                requirements.append(lambda o, k=key, v=value: _labels(o).get(k) == v)
        elif m := _EXISTS_RE.match(part):
            key = m["key"]
            if m["neg"]:
                requirements.append(lambda o, k=key: k not in _labels(o))
            else:
                requirements.append(lambda o, k=key: k in _labels(o))
        else:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
    return lambda obj: all(r(obj) for r in requirements)


def parse_field_selector(text: str | None) -> Predicate:
    requirements: list[Predicate] = []
    for part in _split(text or ""):
        m = _EQ_RE.match(part)
        if not m:
            raise SelectorError(f"invalid field selector: {part.strip()!r}")
        path, value = m["key"], m["value"]
        if path not in FIELDS:
            raise SelectorError(f"field label not supported: {path}")
        field = path.split(".", 1)[1]
        if m["op"] == "!=":
            requirements.append(lambda o, f=field, v=value: ((o.get("metadata") or {}).get(f) or "") != v)
        else:
            requirements.append(lambda o, f=field, v=value: ((o.get("metadata") or {}).get(f) or "") == v)
    return lambda obj: all(r(obj) for r in requirements)
