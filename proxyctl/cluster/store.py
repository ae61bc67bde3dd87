"""The objects the watch holds, by kind and key, safe to read from any thread.

Each entry keeps the object's resourceVersion with the parsed object, so a relist can tell
what changed while we were not watching. Every mutation returns the
:class:`~proxyctl.cluster.changes.ChangeEvent` it caused (none when nothing changed).
:meth:`ObjectStore.snapshot` is an immutable :class:`~proxyctl.cluster.objects.ClusterState`,
built once per change and shared until the next one.
"""

from __future__ import annotations

import threading

from proxyctl.cluster.changes import ADDED, DELETED, ENDPOINT_SLICE, KINDS, MODIFIED, NODE, SERVICE, ChangeEvent
from proxyctl.cluster.changes import ClusterObject as Obj
from proxyctl.cluster.objects import ClusterState


class ObjectStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, tuple[str, Obj]]] = {kind: {} for kind in KINDS}
        self._snapshot: ClusterState | None = ClusterState()

    def put(self, kind: str, key: str, resource_version: str, obj: Obj, *, at: float = 0.0) -> ChangeEvent | None:
        """Add or replace one object; None when the same resourceVersion is already held."""
        with self._lock:
            objects = self._objects[kind]
            held = objects.get(key)
            if held is not None and held[0] == resource_version:
                return None
            objects[key] = (resource_version, obj)
            self._snapshot = None
        return ChangeEvent(kind, MODIFIED if held else ADDED, key, held[1] if held else None, obj, at=at)

    def delete(self, kind: str, key: str, *, at: float = 0.0) -> ChangeEvent | None:
        with self._lock:
            held = self._objects[kind].pop(key, None)
            if held is None:
                return None
            self._snapshot = None
        return ChangeEvent(kind, DELETED, key, held[1], None, at=at)

    def replace(self, kind: str, entries: dict[str, tuple[str, Obj]], *, at: float = 0.0) -> list[ChangeEvent]:
        """Hold exactly ``entries`` (key -> (resourceVersion, object)) for ``kind``, atomically; the
        changes against what was held, deletions first, then in key order."""
        with self._lock:
            before = self._objects[kind]
            self._objects[kind] = dict(entries)
            events = [ChangeEvent(kind, DELETED, key, held[1], None, relist=True, at=at)
                      for key, held in sorted(before.items()) if key not in entries]
            for key, (rv, obj) in sorted(entries.items()):
                held = before.get(key)
                if held is None:
                    events.append(ChangeEvent(kind, ADDED, key, None, obj, relist=True, at=at))
                elif held[0] != rv:
                    events.append(ChangeEvent(kind, MODIFIED, key, held[1], obj, relist=True, at=at))
            if events:
                self._snapshot = None
        return events

    def entries(self, kind: str) -> dict[str, tuple[str, Obj]]:
        """A copy of what is held for ``kind``: key -> (resourceVersion, object)."""
        with self._lock:
            return dict(self._objects[kind])

    def get(self, kind: str, key: str) -> Obj | None:
        with self._lock:
            held = self._objects[kind].get(key)
        return held[1] if held else None

    def resource_version(self, kind: str, key: str) -> str:
        with self._lock:
            held = self._objects[kind].get(key)
        return held[0] if held else ""

    def snapshot(self) -> ClusterState:
        """Everything held, each kind in key order."""
        with self._lock:
            if self._snapshot is None:
                def ordered(kind: str) -> tuple:
                    objects = self._objects[kind]
                    return tuple(objects[key][1] for key in sorted(objects))

                self._snapshot = ClusterState(services=ordered(SERVICE), endpoint_slices=ordered(ENDPOINT_SLICE),
                                              nodes=ordered(NODE))
            return self._snapshot
