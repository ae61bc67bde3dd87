"""Services, EndpointSlices, legacy Endpoints and Nodes read from files, as kube-proxy would see them.

Inputs are files, directories (every ``*.yaml``, ``*.yml`` and ``*.json`` below, sorted) and
``-`` for stdin; a file holds one or more YAML documents, or JSON. A document may be a
``kind: List`` (typed items) or a ``ServiceList``-style list (what ``kubectl get -o yaml``
prints; its items may leave out apiVersion and kind).

Each object is checked the way the API server checks it before kube-proxy could ever receive
it; an invalid object is skipped and each thing wrong with it becomes a
:class:`~proxyctl.errors.Problem` naming file, document, object and field. Kinds kube-proxy
does not read (Namespace, Pod, Deployment, ...) and objects of other API groups are ignored.
Input that is not YAML or JSON at all, a missing file, or a document that is not a mapping
raises :class:`~proxyctl.errors.ManifestError`.

When the same object (kind, namespace, name) appears twice, the later one replaces the earlier,
as a second ``kubectl apply`` would, and the earlier one is reported as a problem.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

from proxyctl.cluster.endpointslice_manifest import read_endpoint_slice
from proxyctl.cluster.legacy_endpoints import read_endpoints
from proxyctl.cluster.manifest_fields import ObjectReader, join, printable, show, type_name
from proxyctl.cluster.node_manifest import read_node
from proxyctl.cluster.objects import ClusterState, EndpointSlice, Node, Service
from proxyctl.cluster.service_manifest import read_service
from proxyctl.errors import ManifestError, Problem
from proxyctl.yamlstrict import StrictFastLoader

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
MAX_LIST_DEPTH = 8
MAX_YAML_DEPTH = 256  # Kubernetes objects nest about 10 deep; CRD schemas a few dozen

# kind -> (API group, the versions we read)
_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Service": ("", ("v1",)),
    "Endpoints": ("", ("v1",)),
    "Node": ("", ("v1",)),
    "EndpointSlice": ("discovery.k8s.io", ("v1", "v1beta1")),
}


Parsed = Service | EndpointSlice | Node | list[EndpointSlice] | None


@dataclass(frozen=True)
class LoadResult:
    state: ClusterState  # the valid objects, in input order
    problems: tuple[Problem, ...]  # one per invalid object/field (the object was skipped)


def load_manifests(paths: Sequence[str], *, strict: bool = False, stdin: TextIO | None = None) -> LoadResult:
    """Read every object in ``paths``; with ``strict`` any problem raises ManifestError."""
    collector = _Collector()
    for path in paths:
        for source, text in _read_path(path, stdin):
            for index, document in enumerate(_documents(source, text)):
                if document is None:
                    continue  # an empty document ("---" with nothing after it)
                if not isinstance(document, dict):
                    raise ManifestError(f"{source}: document {index} is {type_name(document)}, "
                                        "not a mapping (an object with apiVersion, kind, metadata)")
                for obj, prefix in _expand(document, source, index, "", 0):
                    collector.add(obj, source, index, prefix)
    result = collector.result()
    if strict and result.problems:
        count = len(result.problems)
        raise ManifestError(f"strict mode: {count} problem{'s' if count != 1 else ''} in the input",
                            result.problems)
    return result


def parse_object(obj: dict, *, source: str = "", document: int | None = None) -> Parsed:
    """One decoded API object to its proxyctl type.

    Returns None for kinds kube-proxy does not read, a list of EndpointSlices for a legacy
    Endpoints object (possibly empty: some are never mirrored). Raises ManifestError, carrying
    every problem, when the object is invalid.
    """
    if not isinstance(obj, dict):
        raise ManifestError(f"{source or 'object'}: {type_name(obj)}, not a mapping")
    parsed, problems = _parse(obj, source, document, "")
    if problems:
        raise ManifestError(f"invalid object: {problems[0]}", problems)
    return parsed


def _parse(obj: dict, source: str, document: int | None, prefix: str) -> tuple[Parsed, list[Problem]]:
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        what = "is required" if kind is None else f"must be a string, not {show(kind)}"
        return None, [Problem(f"{what} (e.g. Service, EndpointSlice, Node)", source=source,
                              document=document, obj=_guess_label(obj), field=join(prefix, "kind"))]
    if api_version is not None and not isinstance(api_version, str):
        return None, [Problem(f"must be a string, not {show(api_version)}", source=source,
                              document=document, obj=_guess_label(obj), field=join(prefix, "apiVersion"))]
    group, _, version = (api_version or "").rpartition("/")
    served = _KINDS.get(kind)
    if served is None:
        return None, []  # not something kube-proxy reads
    want_group, versions = served
    if api_version is None:
        group, version = want_group, versions[0]
    if group != want_group and not _is_kubernetes_group(group):
        return None, []  # another API's kind of the same name (e.g. a Knative Service)
    reader = ObjectReader(kind, source=source, document=document, field_prefix=prefix)
    if group != want_group or version not in versions:
        reader.label = _guess_label(obj)
        wanted = " or ".join(f"{want_group}/{v}" if want_group else v for v in versions)
        reader.fail("apiVersion", f"apiVersion {show(api_version)} does not serve {kind}: use {wanted}")
        return None, reader.problems()
    parsed: Parsed
    if kind == "Service":
        parsed = read_service(reader, obj)
    elif kind == "EndpointSlice":
        parsed = read_endpoint_slice(reader, obj, beta=version == "v1beta1")
    elif kind == "Endpoints":
        parsed = read_endpoints(reader, obj)
    else:
        parsed = read_node(reader, obj)
    return (parsed, []) if reader.ok else (None, reader.problems())


def _is_kubernetes_group(group: str) -> bool:
    return group == "" or group == "k8s.io" or group.endswith(".k8s.io")


def _guess_label(obj: dict) -> str:
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    kind = printable(kind)
    if not name:
        return kind if kind != "object" else ""
    return f"{kind} {printable(namespace)}/{printable(name)}" if namespace else f"{kind} {printable(name)}"


def _expand(document: dict, source: str, index: int, prefix: str, depth: int) -> Iterator[tuple[dict, str]]:
    """The objects in a document: itself, or the items of a List (recursively)."""
    kind = document.get("kind")
    is_list = isinstance(kind, str) and (kind == "List" or (kind.endswith("List") and "items" in document))
    if not is_list:
        yield document, prefix
        return
    if depth >= MAX_LIST_DEPTH:
        raise ManifestError(f"{source}: document {index}: Lists nested more than {MAX_LIST_DEPTH} deep")
    items = document.get("items")
    if items is None:
        return
    items_path = join(prefix, "items")
    if not isinstance(items, list):
        raise ManifestError(f"{source}: document {index}: {items_path} is {type_name(items)}, not a list")
    item_kind = kind[: -len("List")] if kind != "List" else None
    api_version = document.get("apiVersion")
    for i, item in enumerate(items):
        item_path = join(items_path, i)
        if not isinstance(item, dict):
            raise ManifestError(f"{source}: document {index}: {item_path} is {type_name(item)}, not a mapping")
        if item_kind and item.get("kind") is None:
            item = {**item, "kind": item_kind}
            if item.get("apiVersion") is None and api_version is not None:
                item["apiVersion"] = api_version
        yield from _expand(item, source, index, item_path, depth + 1)


class _Collector:
    """Valid objects by identity (a later definition replaces an earlier one), and problems."""

    def __init__(self) -> None:
        # identity -> (object, (source, document, field prefix) where it was defined)
        self.objects: dict[tuple[str, ...], tuple[Any, tuple[str, int, str]]] = {}
        self.mirrored: set[tuple[str, ...]] = set()
        self.problems: list[Problem] = []

    def add(self, obj: dict, source: str, index: int, prefix: str) -> None:
        parsed, problems = _parse(obj, source, index, prefix)
        self.problems.extend(problems)
        where = (source, index, prefix)
        if isinstance(parsed, list):
            for es in parsed:
                self._put(("EndpointSlice", es.namespace, es.name), es, where)
                self.mirrored.add(("EndpointSlice", es.namespace, es.name))
        elif parsed is not None:
            self._put(_identity(parsed), parsed, where)

    def _put(self, identity: tuple[str, ...], obj: Any, where: tuple[str, int, str]) -> None:
        previous = self.objects.pop(identity, None)
        if previous is not None:
            old, (old_source, old_index, old_prefix) = previous
            source, index, prefix = where
            later = f"{source}[doc {index}]" + (f" {prefix}" if prefix else "")
            self.problems.append(Problem(f"replaced by a later definition at {later}", source=old_source,
                                         document=old_index, obj=f"{identity[0]} {_key(old)}",
                                         field=old_prefix))
            self.mirrored.discard(identity)
        self.objects[identity] = (obj, where)

    def result(self) -> LoadResult:
        objects = [obj for obj, _ in self.objects.values()]
        real_slice_services = {
            (obj.namespace, obj.service_name) for identity, (obj, _) in self.objects.items()
            if isinstance(obj, EndpointSlice) and identity not in self.mirrored
        }
        slices = [
            obj for identity, (obj, _) in self.objects.items()
            if isinstance(obj, EndpointSlice)
            and not (identity in self.mirrored and (obj.namespace, obj.service_name) in real_slice_services)
        ]
        state = ClusterState(
            services=tuple(o for o in objects if isinstance(o, Service)),
            endpoint_slices=tuple(slices),
            nodes=tuple(o for o in objects if isinstance(o, Node)),
        )
        return LoadResult(state=state, problems=tuple(self.problems))


def _identity(obj: Service | EndpointSlice | Node) -> tuple[str, ...]:
    if isinstance(obj, Node):
        return ("Node", obj.name)
    return (type(obj).__name__, obj.namespace, obj.name)


def _key(obj: Service | EndpointSlice | Node) -> str:
    return obj.name if isinstance(obj, Node) else f"{obj.namespace}/{obj.name}"


# -- reading sources -------------------------------------------------------------------------------

def _read_path(path: str, stdin: TextIO | None) -> Iterator[tuple[str, str]]:
    """(source name, text) of each file ``path`` names."""
    if path == STDIN:
        stream = stdin if stdin is not None else sys.stdin
        try:
            data = stream.read()
        except (OSError, ValueError) as e:
            raise ManifestError(f"{STDIN}: cannot read standard input: {e}") from None
        yield STDIN, _decode(STDIN, data) if isinstance(data, bytes) else data
        return
    if os.path.isdir(path):
        for file in _files_below(path):
            yield file, _read_file(file)
        return
    yield path, _read_file(path)


def _files_below(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in files:
            if name.lower().endswith(MANIFEST_SUFFIXES):
                found.append(os.path.join(root, name))
    return sorted(found)


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file or directory") from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read: {e.strerror or e}") from None
    return _decode(path, data)


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{source}: not UTF-8 text (byte {e.start}): not a YAML or JSON file") from None


def _documents(source: str, text: str) -> list[Any]:
    """The decoded documents of one file: JSON (one document), else YAML (one or more)."""
    stripped = text.lstrip()
    looks_json = source.lower().endswith(".json") or stripped.startswith(("{", "["))
    if looks_json:
        try:
            return [json.loads(text, object_pairs_hook=_json_object)]
        except json.JSONDecodeError as e:
            if source.lower().endswith(".json"):
                raise ManifestError(f"{source}: line {e.lineno}, column {e.colno}: not valid JSON: {e.msg}") \
                    from None
        except RecursionError:
            raise ManifestError(f"{source}: JSON nested too deeply") from None
        except ValueError as e:  # a duplicate key, a number too long to convert
            raise ManifestError(f"{source}: not valid JSON: {e}") from None
    try:
        _check_depth(source, text)
        return list(yaml.load_all(text, Loader=StrictFastLoader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(part for part in (e.context, e.problem) if part)
        raise ManifestError(f"{source}: {where}not valid YAML: {what}") from None
    except RecursionError:
        raise ManifestError(f"{source}: YAML nested too deeply") from None
    except ManifestError:
        raise
    except Exception as e:  # noqa: BLE001 - PyYAML constructors raise ValueError, TypeError, ...
        raise ManifestError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _check_depth(source: str, text: str) -> None:
    """Refuse YAML nested deeper than MAX_YAML_DEPTH: libyaml's composer recurses on the C stack.

    libyaml's parser is not recursive, so its event stream is a safe way to measure nesting.
    """
    depth = 0
    for event in yaml.parse(text, Loader=StrictFastLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ManifestError(f"{source}: line {event.start_mark.line + 1}: YAML nested more than "
                                    f"{MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
