"""Read a YAML mapping into typed values by the v1alpha1 schema, and write those values back out.

Reading follows Go's JSON decoding of the v1alpha1 struct (what kube-proxy does with a config
file): a null or missing field keeps its zero value (a pointer field stays unset, ``None``), a value
of the wrong type is an error naming the field, and field names are case-sensitive. Fields the
schema does not have are collected, not rejected; the caller decides whether they are warnings
(kube-proxy's lenient fallback) or errors (strict decoding).

Typed values are plain Python: durations are integer nanoseconds, lists are lists, objects dicts.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxyctl.config.duration import format_duration_ns, parse_duration_ns
from proxyctl.config.schema import REMOVED_FIELDS, Field, Kind

_INT32 = (-(1 << 31), (1 << 31) - 1)
_UINT32 = (0, (1 << 32) - 1)
# resource.Quantity: a decimal number, then a binary-SI, decimal-SI or exponent suffix.
_QUANTITY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?")

_EXPECTED = {
    Kind.STRING: "a string",
    Kind.BOOL: "true or false",
    Kind.INT32: "an integer",
    Kind.UINT32: "a whole number (0 or more)",
    Kind.FLOAT: "a number",
    Kind.DURATION: 'a duration such as "30s"',
    Kind.DURATION_OR_NS: 'a duration such as "5s"',
    Kind.QUANTITY: 'a quantity such as "0" or "1Mi"',
    Kind.STRINGS: "a list of strings",
    Kind.BOOL_MAP: "a mapping of names to true or false",
    Kind.OBJECT: "a mapping",
    Kind.OBJECT_LIST: "a list of mappings",
}


@dataclass(frozen=True)
class FieldIssue:
    """A field the schema does not expect: unknown, or written twice. ``note`` says more, or is ""."""

    field: str
    what: str  # "unknown field" or "duplicate field"
    note: str = ""


@dataclass
class Decoded:
    values: dict
    type_errors: list[tuple[str, str]] = field(default_factory=list)  # (dotted field, message)
    issues: list[FieldIssue] = field(default_factory=list)


def describe(value: Any) -> str:
    """How a YAML value reads in a message: 'string "14"', 'integer 14', 'a mapping'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def zero(f: Field) -> Any:
    """The value a field has when the file leaves it out or writes null."""
    if f.pointer:
        return None
    if f.kind is Kind.OBJECT:
        return {name: zero(child) for name, child in f.fields.items()}
    return {
        Kind.STRING: "",
        Kind.BOOL: False,
        Kind.INT32: 0,
        Kind.UINT32: 0,
        Kind.FLOAT: 0,
        Kind.DURATION: 0,
        Kind.DURATION_OR_NS: 0,
        Kind.QUANTITY: "",
        Kind.STRINGS: None,
        Kind.BOOL_MAP: {},
        Kind.OBJECT_LIST: None,
    }[f.kind]


def decode(raw: Mapping, fields: Mapping[str, Field]) -> Decoded:
    """Typed values for every field in ``fields``, read from ``raw`` (the file's top-level mapping)."""
    reader = _Reader()
    values = reader.object(raw, fields, "")
    return Decoded(values, reader.type_errors, reader.issues)


class _Reader:
    def __init__(self) -> None:
        self.type_errors: list[tuple[str, str]] = []
        self.issues: list[FieldIssue] = []

    def wrong_type(self, path: str, f: Field, value: Any, hint: str = "") -> None:
        hint = hint or _hint(f, value)
        self.type_errors.append((path, f"expected {_EXPECTED[f.kind]}, got {describe(value)}{hint}"))

    def object(self, raw: Mapping, fields: Mapping[str, Field], path: str) -> dict:
        out = {name: zero(child) for name, child in fields.items()}
        for key in getattr(raw, "duplicates", ()):  # set by yamlfile.DuplicateKeys
            self.issues.append(FieldIssue(join(path, str(key)), "duplicate field", "the last value is used"))
        for key, value in raw.items():
            name = str(key)
            child_path = join(path, name)
            child = fields.get(name)
            if child is None:
                self.issues.append(FieldIssue(child_path, "unknown field", _unknown_note(child_path, name, fields)))
                continue
            out[name] = self.value(value, child, child_path)
        return out

    def value(self, raw: Any, f: Field, path: str) -> Any:
        if raw is None:
            return zero(f)
        kind = f.kind
        if kind is Kind.OBJECT:
            if isinstance(raw, Mapping):
                return self.object(raw, f.fields, path)
        elif kind is Kind.STRING:
            if isinstance(raw, str):
                return raw
        elif kind is Kind.BOOL:
            if isinstance(raw, bool):
                return raw
        elif kind in (Kind.INT32, Kind.UINT32):
            return self.integer(raw, f, path)
        elif kind is Kind.FLOAT:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return int(raw) if float(raw).is_integer() else float(raw)
        elif kind in (Kind.DURATION, Kind.DURATION_OR_NS):
            return self.duration(raw, f, path)
        elif kind is Kind.QUANTITY:
            return self.quantity(raw, f, path)
        elif kind is Kind.STRINGS:
            return self.strings(raw, f, path)
        elif kind is Kind.BOOL_MAP:
            return self.bool_map(raw, f, path)
        elif kind is Kind.OBJECT_LIST:
            return self.object_list(raw, f, path)
        self.wrong_type(path, f, raw)
        return zero(f)

    def integer(self, raw: Any, f: Field, path: str) -> Any:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if not isinstance(raw, int) or isinstance(raw, bool):
            self.wrong_type(path, f, raw)
            return zero(f)
        low, high = _INT32 if f.kind is Kind.INT32 else _UINT32
        if not low <= raw <= high:
            bits = "a 32-bit integer" if f.kind is Kind.INT32 else "a 32-bit whole number (0 or more)"
            self.type_errors.append((path, f"expected {bits}, got {raw}"))
            return zero(f)
        return raw

    def duration(self, raw: Any, f: Field, path: str) -> Any:
        if f.kind is Kind.DURATION_OR_NS and isinstance(raw, int) and not isinstance(raw, bool):
            return raw  # a bare number is nanoseconds here
        if not isinstance(raw, str):
            self.wrong_type(path, f, raw)
            return zero(f)
        try:
            return parse_duration_ns(raw)
        except ValueError as e:
            self.type_errors.append((path, str(e)))
            return zero(f)

    def quantity(self, raw: Any, f: Field, path: str) -> Any:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            self.wrong_type(path, f, raw)
        elif not _QUANTITY.fullmatch(raw):
            self.type_errors.append((path, f'{json.dumps(raw)} is not a quantity (e.g. "0", "64Ki", "1Mi")'))
        else:
            return raw
        return zero(f)

    def strings(self, raw: Any, f: Field, path: str) -> Any:
        if not isinstance(raw, list):
            hint = f" (write a list: [{json.dumps(raw)}])" if isinstance(raw, str) else ""
            self.wrong_type(path, f, raw, hint)
            return zero(f)
        out = []
        for i, item in enumerate(raw):
            if item is None:
                item = ""
            elif not isinstance(item, str):
                self.type_errors.append((f"{path}[{i}]", f"expected a string, got {describe(item)}"))
                continue
            out.append(item)
        return out

    def bool_map(self, raw: Any, f: Field, path: str) -> Any:
        if not isinstance(raw, Mapping):
            hint = ""
            if isinstance(raw, str):
                hint = ' (kube-proxy before v1.11 took a string such as "A=true,B=false"; write a mapping)'
            self.wrong_type(path, f, raw, hint)
            return zero(f)
        out = {}
        for key, value in raw.items():
            if value is None:
                value = False
            if not isinstance(value, bool):
                self.type_errors.append((join(path, str(key)), f"expected true or false, got {describe(value)}"))
                continue
            out[str(key)] = value
        return out

    def object_list(self, raw: Any, f: Field, path: str) -> Any:
        if not isinstance(raw, list):
            self.wrong_type(path, f, raw)
            return zero(f)
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                self.type_errors.append((f"{path}[{i}]", f"expected a mapping, got {describe(item)}"))
                continue
            out.append(self.object(item, f.fields, f"{path}[{i}]"))
        return out


def _hint(f: Field, value: Any) -> str:
    """A short fix for a value that is almost right: a quoted number, a bare number of seconds."""
    if isinstance(value, str):
        text = value.strip()
        if f.kind in (Kind.INT32, Kind.UINT32, Kind.FLOAT) and re.fullmatch(r"[+-]?\d+(\.\d*)?", text):
            return " (remove the quotes)"
        if f.kind is Kind.BOOL and text.lower() in ("true", "false"):
            return " (remove the quotes)"
    if f.kind is Kind.DURATION and isinstance(value, int | float) and not isinstance(value, bool):
        return f' (add a unit: "{value}s" is {value} seconds)'
    if f.kind is Kind.STRING and isinstance(value, int | float | bool):
        return " (put it in quotes)"
    return ""


def _unknown_note(path: str, name: str, fields: Mapping[str, Field]) -> str:
    if path in REMOVED_FIELDS:
        return REMOVED_FIELDS[path]
    same_but_case = [known for known in fields if known.lower() == name.lower()]
    close = same_but_case or difflib.get_close_matches(name, list(fields), n=1, cutoff=0.8)
    return f"did you mean {close[0]}?" if close else ""


def encode(values: Mapping, fields: Mapping[str, Field]) -> dict:
    """The v1alpha1 form of typed values: durations as Go strings, empty ``omitempty`` fields left out."""
    out = {}
    for name, f in fields.items():
        value = values[name]
        if f.omitempty and value in (None, "", False, 0, [], {}):
            continue
        out[name] = _encode_value(value, f)
    return out


def _encode_value(value: Any, f: Field) -> Any:
    if value is None:
        return None
    if f.kind in (Kind.DURATION, Kind.DURATION_OR_NS):
        return format_duration_ns(value)
    if f.kind is Kind.OBJECT:
        return encode(value, f.fields)
    if f.kind is Kind.OBJECT_LIST:
        return [encode(item, f.fields) for item in value]
    if isinstance(value, list | dict):
        return type(value)(value)
    return value
