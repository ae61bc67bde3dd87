"""List, then watch, one kind of object, forever: what client-go's reflector does for an informer.

The loop, on one thread:

1. **List** (a consistent read: no ``resourceVersion``), in pages of ``page_size`` with
   ``continue`` tokens; every page belongs to the first page's snapshot. The whole list is
   handed over at once (``handler.replace``), so a reader never sees half a list. An expired
   ``continue`` token (410) restarts the list without paging.
2. **Watch** from the list's ``resourceVersion`` with ``allowWatchBookmarks``: the API server
   replays every change made after the list, so nothing between list and watch is lost. Each
   event, and each BOOKMARK, moves the resourceVersion on; the next watch starts from there.
   The server ends a watch after ``timeoutSeconds`` (randomised in ``[watch_timeout,
   2*watch_timeout)`` as client-go does); then we watch again at once.
3. **410 Gone** (an HTTP 410, or an ERROR event with code 410: our resourceVersion left the
   server's history) means relist. The first relist is immediate; a second 410 in a row waits.
4. Any other failure (connection refused or reset, 5xx, bytes that are not JSON, a stream cut
   short, no bytes for ``watch_read_timeout``, a non-410 ERROR event, a watch that ended within
   ``min_watch_duration`` without an event) waits a capped exponential backoff with jitter, then
   watches again from the last resourceVersion (or lists, if no list ever succeeded). The
   backoff resets once a watch delivers an event or bookmark.

Objects are handed over as decoded JSON (camelCase keys), with ``kind`` and ``apiVersion`` set
(list items come without them).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from proxyctl.cluster.backoff import Backoff


@dataclass(frozen=True)
class WatchSettings:
    """Timeouts and backoff of list and watch requests, in seconds."""

    connect_timeout: float = 10.0
    list_timeout: float = 60.0  # longest wait for bytes of a list response
    watch_timeout: float = 300.0  # each watch asks the server for timeoutSeconds in [this, 2*this)
    watch_read_timeout: float = 150.0  # no byte for this long: the stream is dead (bookmarks come each minute)
    min_watch_duration: float = 1.0  # shorter and eventless: a failure (client-go's "very short watch")
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    page_size: int = 500  # list page size; 0: one unpaged list


@dataclass(frozen=True)
class ResourceSpec:
    """One kind of object to list and watch, through a list method of the ``kubernetes`` client
    (e.g. ``CoreV1Api(client).list_service_for_all_namespaces``)."""

    kind: str  # "Service"
    api_version: str  # "v1", "discovery.k8s.io/v1"
    list_func: Callable[..., Any]
    label_selector: str = ""
    field_selector: str = ""


class InformerHandler(Protocol):
    def replace(self, items: list[dict], resource_version: str) -> None:
        """The complete current set of objects (after a list)."""

    def apply(self, event_type: str, obj: dict) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""


@dataclass
class InformerStats:
    lists: int = 0  # successful lists (the first one included)
    relists_on_gone: int = 0
    watches: int = 0  # watch requests answered with 200
    events: int = 0  # ADDED, MODIFIED, DELETED
    bookmarks: int = 0
    failures: int = 0
    last_error: str = ""
    resource_version: str = ""


class Gone(Exception):
    """410: the resourceVersion we hold is older than the server's history; relist."""


class WatchFailure(Exception):
    """Anything else that ends a list or watch attempt: retried after a backoff."""


class _Stopped(Exception):
    pass


class Informer:
    """The list+watch loop of one resource. ``run()`` blocks until ``stop()``; ``start()`` runs it
    on a daemon thread. ``synced`` is set once the first list has been handed over."""

    def __init__(self, spec: ResourceSpec, handler: InformerHandler, *, settings: WatchSettings = WatchSettings(),
                 clock: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random,
                 logger: logging.Logger | None = None):
        self.spec = spec
        self.handler = handler
        self.settings = settings
        self.synced = threading.Event()
        self._clock = clock
        self._rand = rand
        self._log = logger or logging.getLogger(__name__)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _response and _stats
        self._response: Any = None  # the urllib3 response being read, for stop() to cut
        self._stats = InformerStats()
        self._thread: threading.Thread | None = None
        self._rv = ""
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_max,
                                jitter=settings.backoff_jitter, rand=rand)

    # -- control -------------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name=f"proxyctl-watch-{self.spec.kind}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Ask the loop to end and cut the response it is reading; returns at once."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown(response)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True when it has (or never started, or is the caller)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stats(self) -> InformerStats:
        with self._lock:
            return replace(self._stats, resource_version=self._rv)

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        gone_in_a_row = 0
        while not self._stop.is_set():
            try:
                if not self._rv:
                    self._list()
                self._watch()
                gone_in_a_row = 0
            except _Stopped:
                return
            except Gone as e:
                gone_in_a_row += 1
                self._rv = ""
                self._count("relists_on_gone", str(e))
                self._log.info("%s: %s; listing again", self._what, e)
                if gone_in_a_row > 1:
                    self._wait(self._backoff.next_delay())
            except Exception as e:  # every failure is retried: the loop must outlive the API server
                if self._stop.is_set():
                    return
                gone_in_a_row = 0
                delay = self._backoff.next_delay()
                self._count("failures", _describe(e))
                self._log.warning("%s failed (attempt %d): %s; retrying in %.2fs", self._what,
                                  self._backoff.failures, _describe(e), delay)
                self._wait(delay)

    @property
    def _what(self) -> str:
        return f"list/watch of {self.spec.kind}"

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _count(self, name: str, error: str = "") -> None:
        with self._lock:
            setattr(self._stats, name, getattr(self._stats, name) + 1)
            if error:
                self._stats.last_error = error

    # -- list ------------------------------------------------------------------------------------

    def _list(self) -> None:
        items: list[dict] = []
        resource_version = ""
        token: str | None = None
        page_size = self.settings.page_size or None
        while True:
            try:
                response = self._request(watch=False, limit=page_size, _continue=token,
                                         timeout=self.settings.list_timeout)
            except ApiException as e:
                if e.status == 410 and token:  # the continue token expired: start over, unpaged
                    items, resource_version, token, page_size = [], "", None, None
                    continue
                raise WatchFailure(f"list answered {e.status} {e.reason}") from e
            body = self._read_json(response)
            if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
                raise WatchFailure(f"list answered something that is not a {self.spec.kind}List")
            metadata = body.get("metadata") or {}
            resource_version = resource_version or str(metadata.get("resourceVersion") or "")
            items.extend(body.get("items") or [])
            token = metadata.get("continue") or None
            if not token:
                break
        if not resource_version:
            raise WatchFailure("list answered without metadata.resourceVersion")
        for item in items:
            self._typed(item)
        self._check_stop()
        self.handler.replace(items, resource_version)
        self._rv = resource_version
        self._count("lists")
        self.synced.set()

    # -- watch -----------------------------------------------------------------------------------

    def _watch(self) -> None:
        timeout_seconds = int(self.settings.watch_timeout * (1 + self._rand()))
        try:
            response = self._request(watch=True, resource_version=self._rv, allow_watch_bookmarks=True,
                                     timeout_seconds=max(1, timeout_seconds),
                                     timeout=self.settings.watch_read_timeout)
        except ApiException as e:
            if e.status == 410:
                raise Gone(f"watch from resourceVersion {self._rv} answered 410 Gone") from e
            raise WatchFailure(f"watch answered {e.status} {e.reason}") from e
        self._count("watches")
        started = self._clock()
        delivered = 0
        complete = False
        try:
            for line in _lines(response):
                self._check_stop()
                self._handle(line)
                delivered += 1
                if delivered == 1:
                    self._backoff.reset()
            complete = True
        finally:
            self._release(response, complete)
        self._check_stop()
        if not delivered and self._clock() - started < self.settings.min_watch_duration:
            raise WatchFailure(f"very short watch: ended after {self._clock() - started:.2f}s without an event")

    def _handle(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError as e:
            raise WatchFailure(f"watch stream holds bytes that are not JSON: {line[:80]!r}") from e
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise WatchFailure(f"watch stream holds something that is not an event: {line[:80]!r}")
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            code = obj.get("code")
            message = obj.get("message") or obj.get("reason") or "no message"
            if code == 410:
                raise Gone(f"watch from resourceVersion {self._rv} ended with 410: {message}")
            raise WatchFailure(f"watch ended with an error ({code}): {message}")
        metadata = obj.get("metadata")
        rv = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        if not isinstance(rv, str) or not rv:
            raise WatchFailure(f"{kind} event without metadata.resourceVersion")
        if kind == "BOOKMARK":
            self._count("bookmarks")
        elif kind in ("ADDED", "MODIFIED", "DELETED"):
            self.handler.apply(kind, self._typed(obj))
            self._count("events")
        else:
            raise WatchFailure(f"unknown watch event type {kind!r}")
        self._rv = rv

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(self, *, watch: bool, timeout: float, **params: Any) -> Any:
        self._check_stop()
        query = {k: v for k, v in params.items() if v not in (None, "")}
        response = self.spec.list_func(
            label_selector=self.spec.label_selector or None, field_selector=self.spec.field_selector or None,
            watch=watch or None, _preload_content=False,
            _request_timeout=(self.settings.connect_timeout, timeout), **query)
        with self._lock:
            self._response = response
        if self._stop.is_set():  # stop() came while we waited for the headers
            _shutdown(response)
        return response

    def _read_json(self, response: Any) -> Any:
        complete = False
        try:
            data = response.data
            complete = True
        finally:
            self._release(response, complete)
        self._check_stop()
        try:
            return json.loads(data)
        except ValueError as e:
            raise WatchFailure(f"list answered bytes that are not JSON: {data[:80]!r}") from e

    def _release(self, response: Any, complete: bool) -> None:
        with self._lock:
            if self._response is response:
                self._response = None
        try:
            if not complete:
                response.close()  # never hand a half-read connection back to the pool
            response.release_conn()
        except Exception:  # the connection is gone either way
            pass

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped()

    def _typed(self, obj: dict) -> dict:
        obj["kind"] = self.spec.kind
        obj["apiVersion"] = self.spec.api_version
        return obj


def _lines(response: Any) -> Iterator[bytes]:
    """The non-empty lines of a watch response, each as soon as its last byte arrives."""
    if response.chunked:
        chunks: Iterator[bytes] = response.stream(65536)
    else:
        chunks = iter(lambda: response.read1(65536), b"")
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _shutdown(response: Any) -> None:
    try:
        response.shutdown()
    except Exception:  # already released or closed
        pass


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
