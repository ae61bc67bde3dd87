"""The test API server's memory: objects, one resourceVersion counter, a bounded history.

As with etcd behind a real API server, the resourceVersion is global (every change to any
kind takes the next number) and never goes back. The history holds the last ``history_limit``
changes; a watch can start from resourceVersion ``X`` only while every change after ``X`` is
still in it (``X >= oldest``), else it gets 410 Gone. Once started, a watch has its own queue
and misses nothing, however fast the history turns over.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import deque
from dataclasses import dataclass

FIRST_RESOURCE_VERSION = 1000


@dataclass(frozen=True)
class Resource:
    kind: str
    api_version: str
    plural: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"


RESOURCES = {r.plural: r for r in (
    Resource("Service", "v1", "services", True),
    Resource("Node", "v1", "nodes", False),
    Resource("EndpointSlice", "discovery.k8s.io/v1", "endpointslices", True),
    Resource("ConfigMap", "v1", "configmaps", True),  # only there to move the resourceVersion on
)}
BY_KIND = {r.kind: r for r in RESOURCES.values()}


@dataclass(frozen=True)
class Change:
    rv: int
    resource: str  # plural
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict  # the object after the change (for DELETED: as it was, with the deletion's resourceVersion)
    old: dict | None  # before the change (MODIFIED, DELETED)


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


class TooOld(ApiError):
    def __init__(self, rv: int, oldest: int):
        super().__init__(410, "Expired", f"too old resource version: {rv} ({oldest})")


class Subscription:
    """One watch's queue of changes: a live watch never falls out of the history, as with the
    API server's per-watcher buffers."""

    def __init__(self) -> None:
        self.queue: deque[Change] = deque()


class ClusterStore:
    def __init__(self, history_limit: int = 1000):
        self.cond = threading.Condition()
        self.rv = FIRST_RESOURCE_VERSION
        self.oldest = FIRST_RESOURCE_VERSION  # a watch from X >= oldest misses nothing
        self.history: deque[Change] = deque()
        self.history_limit = history_limit
        self.objects: dict[str, dict[tuple[str, str], dict]] = {plural: {} for plural in RESOURCES}
        self.subscriptions: list[Subscription] = []

    # -- writes ----------------------------------------------------------------------------------

    def create(self, plural: str, obj: dict, namespace: str | None = None) -> dict:
        with self.cond:
            obj = copy.deepcopy(obj)
            key = self._key(plural, obj, namespace)
            if key in self.objects[plural]:
                raise ApiError(409, "AlreadyExists", f"{plural} {key[0]}/{key[1]} already exists")
            meta = obj["metadata"]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
            meta.setdefault("generation", 1)
            return self._record(plural, key, "ADDED", obj, None)

    def update(self, plural: str, obj: dict, namespace: str | None = None) -> dict:
        with self.cond:
            obj = copy.deepcopy(obj)
            key = self._key(plural, obj, namespace)
            old = self.objects[plural].get(key)
            if old is None:
                raise ApiError(404, "NotFound", f"{plural} {key[0]}/{key[1]} not found")
            for field in ("uid", "creationTimestamp", "generation"):
                if field in old["metadata"]:
                    obj["metadata"][field] = old["metadata"][field]
            return self._record(plural, key, "MODIFIED", obj, old)

    def apply(self, plural: str, obj: dict) -> dict:
        with self.cond:
            key = self._key(plural, copy.deepcopy(obj), None)
            if key in self.objects[plural]:
                return self.update(plural, obj)
            return self.create(plural, obj)

    def delete(self, plural: str, name: str, namespace: str = "") -> dict:
        with self.cond:
            key = (namespace if RESOURCES[plural].namespaced else "", name)
            old = self.objects[plural].get(key)
            if old is None:
                raise ApiError(404, "NotFound", f"{plural} {key[0]}/{key[1]} not found")
            return self._record(plural, key, "DELETED", copy.deepcopy(old), old)

    def _key(self, plural: str, obj: dict, namespace: str | None) -> tuple[str, str]:
        meta = obj.setdefault("metadata", {})
        if RESOURCES[plural].namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        return meta.get("namespace", ""), meta["name"]

    def _record(self, plural: str, key: tuple[str, str], type_: str, obj: dict, old: dict | None) -> dict:
        self.rv += 1
        resource = RESOURCES[plural]
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["kind"], obj["apiVersion"] = resource.kind, resource.api_version
        if type_ == "DELETED":
            del self.objects[plural][key]
        else:
            self.objects[plural][key] = obj
        change = Change(self.rv, plural, type_, obj, old)
        self.history.append(change)
        for subscription in self.subscriptions:
            subscription.queue.append(change)
        while len(self.history) > self.history_limit:
            self.oldest = self.history.popleft().rv
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def forget_history(self) -> None:
        """Drop every change: only a watch from the current resourceVersion (or newer) resumes."""
        with self.cond:
            self.history.clear()
            self.oldest = self.rv
            self.cond.notify_all()

    # -- reads -----------------------------------------------------------------------------------

    def get(self, plural: str, name: str, namespace: str = "") -> dict | None:
        with self.cond:
            obj = self.objects[plural].get((namespace if RESOURCES[plural].namespaced else "", name))
            return copy.deepcopy(obj) if obj else None

    def list(self, plural: str, namespace: str | None = None) -> tuple[list[dict], int]:
        """Current objects in key order, and the resourceVersion they are current at."""
        with self.cond:
            items = [copy.deepcopy(obj) for key, obj in sorted(self.objects[plural].items())
                     if namespace is None or key[0] == namespace]
            return items, self.rv

    def subscribe(self, plural: str, rv: int | None) -> tuple[list[dict], Subscription]:
        """Start a watch after ``rv`` (its missed changes queued at once; TooOld if they are not all
        in the history), or, for None, now: then with the current objects of ``plural``."""
        with self.cond:
            subscription = Subscription()
            if rv is None:
                items = self.list(plural)[0]
            else:
                if rv < self.oldest:
                    raise TooOld(rv, self.oldest)
                items = []
                subscription.queue.extend(c for c in self.history if c.rv > rv)
            self.subscriptions.append(subscription)
            return items, subscription

    def drain(self, subscription: Subscription) -> tuple[list[Change], int]:
        """The changes queued for ``subscription``, and the resourceVersion they bring it to."""
        with self.cond:
            changes = list(subscription.queue)
            subscription.queue.clear()
            return changes, self.rv

    def unsubscribe(self, subscription: Subscription) -> None:
        with self.cond:
            if subscription in self.subscriptions:
                self.subscriptions.remove(subscription)
