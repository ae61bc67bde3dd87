"""YAML in and out for configuration files, read and written the way kube-proxy's Go YAML does.

Reading: YAML 1.1 scalars as Go's yaml.v2 reads them (yes/no are booleans), except that dates and
base-60 numbers stay strings; a key written twice is remembered (see ``DuplicateKeys``) rather
than silently dropped. Writing: block style, keys sorted, and strings that would read back as
something else in double quotes (``kubeconfig: ""``), as in kube-proxy's own output.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class DuplicateKeys(dict):
    """A mapping that remembers keys written more than once; the last value wins, as in Go."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.duplicates: list[Any] = []


class _Loader(yaml.SafeLoader):
    pass


# Start from SafeLoader's implicit types, minus timestamps and the base-60 forms of int and float.
_Loader.yaml_implicit_resolvers = {}
for _first, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, regexp) for tag, regexp in _resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", re.X),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                   |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> DuplicateKeys:
    loader.flatten_mapping(node)
    mapping = DuplicateKeys()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark)
        if key in mapping:
            mapping.duplicates.append(key)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """The one YAML document in ``text`` (None if empty). Raises ValueError saying what and where."""
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        where = ""
        mark = e.problem_mark or e.context_mark
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ValueError(f"not valid YAML: {e.problem or e.context}{where}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"not valid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise ValueError("not a configuration: nested too deeply") from None
    if len(documents) > 1:
        raise ValueError(f"holds {len(documents)} YAML documents; a configuration file holds one")
    return documents[0] if documents else None


class _Dumper(yaml.SafeDumper):
    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def dump_yaml(data: Any) -> str:
    """Block-style YAML with sorted keys, quoting like kube-proxy's output."""
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True,
                     width=1 << 16)
