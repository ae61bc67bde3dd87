"""The live cluster: list and watch Services, EndpointSlices and this node's Node, as kube-proxy does.

Three :class:`~proxyctl.cluster.informer.Informer` loops (list, then watch from the list's
resourceVersion, bookmarks, relist on 410, backoff on failure) feed one
:class:`~proxyctl.cluster.store.ObjectStore`. Objects come from the API server already defaulted
and are converted with :func:`~proxyctl.cluster.manifests.parse_object`; an object that does not
parse is reported to ``on_invalid`` (by default: logged) and skipped: the store holds no version
of it, so an object that turns invalid is dropped as if deleted. Nothing a server sends can end
the watch.

Which objects, as kube-proxy's informers choose them (server side, by label selector):

- Services and EndpointSlices: ``!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name``;
  with a service proxy name, ``service.kubernetes.io/service-proxy-name=NAME`` instead of the
  second requirement. (kube-proxy puts both requirements on both kinds.)
- the Node: field selector ``metadata.name=NODE``.

The snapshot is what the selectors let through; headless and ExternalName Services and FQDN
slices are still in it: :func:`~proxyctl.cluster.selection.select_for_proxy` drops them, as
for files.

Thread model
------------
- ``start()`` starts three daemon threads, one per informer (``proxyctl-watch-Service``,
  ``-EndpointSlice``, ``-Node``). Each blocks in its own HTTP request; nothing else runs in the
  background.
- ``on_change`` and ``on_invalid`` run on those threads, one call at a time: every store
  mutation and the callbacks it causes happen under one delivery lock, so callbacks arrive in
  the order the store changed, and a ``snapshot()`` taken inside ``on_change`` shows exactly the
  state right after that event. Keep callbacks short (record and return): while one runs, the
  other informers wait to apply their events. A callback that raises is logged and ignored.
- ``snapshot()``, ``node()``, ``synced``, ``wait_synced()`` and ``stats()`` may be called from any
  thread at any time; ``snapshot()`` takes only the store's lock, never the delivery lock, so a
  slow callback does not block it. A list is applied in one step: a snapshot never holds half a
  list, and a relist replaces the old objects only once the new list is complete (never an
  empty state in between).
- ``stop()`` may be called from any thread, a callback included. It returns within its timeout
  (1 s by default): streams being read are cut at once; a request still waiting for its
  response headers ends at its own read timeout on its daemon thread. No callback runs after
  ``stop()`` returns.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from kubernetes.client import CoreV1Api, DiscoveryV1Api

from proxyctl.cluster.changes import ENDPOINT_SLICE, NODE, SERVICE, ChangeEvent
from proxyctl.cluster.informer import Informer, InformerStats, ResourceSpec, WatchSettings
from proxyctl.cluster.manifests import parse_object
from proxyctl.cluster.objects import (
    HEADLESS_LABEL,
    SERVICE_PROXY_NAME_LABEL,
    ClusterState,
    EndpointSlice,
    Node,
    Service,
)
from proxyctl.cluster.store import ObjectStore
from proxyctl.errors import ManifestError

_TYPES = {SERVICE: Service, ENDPOINT_SLICE: EndpointSlice, NODE: Node}

InvalidHandler = Callable[[str, str, ManifestError], None]  # (kind, key, error)


def label_selector(service_proxy_name: str | None = None) -> str:
    """kube-proxy's label selector for Services and EndpointSlices."""
    if service_proxy_name:
        return f"!{HEADLESS_LABEL},{SERVICE_PROXY_NAME_LABEL}={service_proxy_name}"
    return f"!{HEADLESS_LABEL},!{SERVICE_PROXY_NAME_LABEL}"


class ClusterWatch:
    """List+watch of what one node's proxy reads; see the module docstring for the thread model."""

    def __init__(self, api_client, *, node_name: str, service_proxy_name: str | None = None,
                 on_change: Callable[[ChangeEvent], None] | None = None, on_invalid: InvalidHandler | None = None,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None,
                 settings: WatchSettings | None = None, rand: Callable[[], float] = random.random):
        self.node_name = node_name
        self.service_proxy_name = service_proxy_name or None
        self._on_change = on_change
        self._on_invalid = on_invalid
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        self._store = ObjectStore()
        self._deliver_lock = threading.RLock()
        self._stopped = False
        self._started = False
        core, discovery = CoreV1Api(api_client), DiscoveryV1Api(api_client)
        selector = label_selector(self.service_proxy_name)
        specs = (
            ResourceSpec(SERVICE, "v1", core.list_service_for_all_namespaces, label_selector=selector),
            ResourceSpec(ENDPOINT_SLICE, "discovery.k8s.io/v1", discovery.list_endpoint_slice_for_all_namespaces,
                         label_selector=selector),
            ResourceSpec(NODE, "v1", core.list_node, field_selector=f"metadata.name={node_name}"),
        )
        settings = settings or WatchSettings()
        self._informers = {spec.kind: Informer(spec, _Feed(self, spec.kind), settings=settings, clock=clock,
                                               rand=rand, logger=self._log) for spec in specs}

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the three informer threads; returns at once."""
        if self._started:
            raise RuntimeError("ClusterWatch.start() called twice")
        self._started = True
        for informer in self._informers.values():
            informer.start()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop watching; True when every informer thread ended within ``timeout``."""
        self._stopped = True
        for informer in self._informers.values():
            informer.stop()
        with self._deliver_lock:  # wait for a callback in progress (re-entrant from a callback)
            pass
        deadline = time.monotonic() + timeout
        ended = True
        for informer in self._informers.values():
            ended = informer.join(max(0.0, deadline - time.monotonic())) and ended
        return ended

    # -- reading -------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """The first lists of Services and EndpointSlices have both arrived."""
        return all(self._informers[kind].synced.is_set() for kind in (SERVICE, ENDPOINT_SLICE))

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until :attr:`synced` (kube-proxy syncs no rules before); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for kind in (SERVICE, ENDPOINT_SLICE):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._informers[kind].synced.wait(remaining):
                return False
        return True

    @property
    def node_synced(self) -> bool:
        """The Node list (with our field selector) has arrived; :meth:`node` is meaningful."""
        return self._informers[NODE].synced.is_set()

    def snapshot(self) -> ClusterState:
        """Everything held now (each kind in key order); immutable, cheap when nothing changed."""
        return self._store.snapshot()

    def node(self) -> Node | None:
        """This node's Node object; None before it is listed, or when it does not exist."""
        obj = self._store.get(NODE, self.node_name)
        return obj if isinstance(obj, Node) else None

    def stats(self) -> dict[str, InformerStats]:
        """Per kind: lists, relists on 410, watches, events, bookmarks, failures, resourceVersion."""
        return {kind: informer.stats() for kind, informer in self._informers.items()}

    # -- feeding the store (informer threads) ---------------------------------------------------

    def _deliver(self, mutate: Callable[[], list[ChangeEvent] | ChangeEvent | None]) -> None:
        with self._deliver_lock:
            if self._stopped:
                return
            result = mutate()
            events = result if isinstance(result, list) else [result] if result else []
            if self._on_change is None:
                return
            for event in events:
                try:
                    self._on_change(event)
                except Exception:
                    self._log.exception("on_change failed for %s %s %s", event.action, event.kind, event.key)

    def _parse(self, kind: str, key: str, obj: dict):
        """The parsed object, or None after reporting why it cannot be used."""
        try:
            parsed = parse_object(obj, source="API server")
            if not isinstance(parsed, _TYPES[kind]):
                raise ManifestError(f"{kind} {key}: not a {kind} ({type(parsed).__name__})")
        except ManifestError as e:
            self._invalid(kind, key, e)
            return None
        except Exception as e:  # a bug in a reader must not end the watch
            self._invalid(kind, key, ManifestError(f"{kind} {key}: cannot be read: {e!r}"))
            return None
        return parsed

    def _invalid(self, kind: str, key: str, error: ManifestError) -> None:
        with self._deliver_lock:
            if self._stopped:
                return
            if self._on_invalid is None:
                self._log.warning("skipping invalid %s %s: %s", kind, key, "; ".join(error.lines()))
                return
            try:
                self._on_invalid(kind, key, error)
            except Exception:
                self._log.exception("on_invalid failed for %s %s", kind, key)


class _Feed:
    """One informer's handler: decoded JSON in, parsed objects into the store, events out."""

    def __init__(self, watch: ClusterWatch, kind: str):
        self.watch = watch
        self.kind = kind

    def replace(self, items: list[dict], resource_version: str) -> None:
        held = self.watch._store.entries(self.kind)
        entries = {}
        for item in items:
            key, rv = _key(self.kind, item), _resource_version(item)
            if key in held and held[key][0] == rv:  # unchanged since we last saw it: no need to parse again
                entries[key] = held[key]
                continue
            parsed = self.watch._parse(self.kind, key, item)
            if parsed is not None:
                entries[key] = (rv, parsed)
        at = self.watch._clock()
        self.watch._deliver(lambda: self.watch._store.replace(self.kind, entries, at=at))

    def apply(self, event_type: str, obj: dict) -> None:
        key = _key(self.kind, obj)
        at = self.watch._clock()
        store = self.watch._store
        parsed = None if event_type == "DELETED" else self.watch._parse(self.kind, key, obj)
        if parsed is None:
            self.watch._deliver(lambda: store.delete(self.kind, key, at=at))
        else:
            self.watch._deliver(lambda: store.put(self.kind, key, _resource_version(obj), parsed, at=at))


def _key(kind: str, obj: dict) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name") if isinstance(metadata.get("name"), str) else ""
    if kind == NODE:
        return name
    namespace = metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else ""
    return f"{namespace or 'default'}/{name}"


def _resource_version(obj: dict) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return str(metadata.get("resourceVersion") or "")
