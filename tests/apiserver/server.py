"""A small Kubernetes API server for tests: the real HTTP protocol, objects in memory.

It serves Services, Nodes, EndpointSlices (and ConfigMaps, to move the resourceVersion on) on
127.0.0.1 at a random port, enough for the official ``kubernetes`` client to list and watch for
real:

- ``GET`` a collection (all namespaces or one): a ``<Kind>List`` with ``metadata.resourceVersion``,
  items without ``kind``/``apiVersion`` (as the API server sends them), ``labelSelector`` and
  ``fieldSelector`` (``metadata.name``, ``metadata.namespace``), ``limit``/``continue`` paging
  over one snapshot (an expired token is 410).
- ``GET ...?watch=true``: a chunked stream of JSON events, one per line: ``ADDED``, ``MODIFIED``,
  ``DELETED`` (an update that moves an object into or out of the selector is ``ADDED`` or
  ``DELETED``, as the API server's watch cache does), ``BOOKMARK`` every ``bookmark_interval``
  seconds when ``allowWatchBookmarks=true``, and an ``ERROR`` event with a 410 Status when
  ``resourceVersion`` is older than the history. Without a resourceVersion (or with "0") the
  stream starts with an ``ADDED`` per existing object. The stream ends after ``timeoutSeconds``.
- ``GET``/``POST``/``PUT``/``DELETE`` of single objects; ``GET /version``. The typed client needs
  no discovery, so there is none.

Tests change objects through :meth:`ApiServer.create`, ``update``, ``apply`` and ``delete`` (or
HTTP), and break things on purpose: :meth:`ApiServer.restart` (every connection closed; history
kept or lost), :meth:`ApiServer.close_watches` (streams cut, or ended cleanly),
:meth:`ApiServer.inject` (the next N list/watch requests answer 410, 500, garbage, nothing at
all, or a reset), and hooks that run code at a chosen moment of a request
(:meth:`ApiServer.add_hook`). :attr:`ApiServer.requests` records every request.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.apiserver.selectors import SelectorError, parse_field_selector, parse_label_selector
from tests.apiserver.state import BY_KIND, RESOURCES, ApiError, Change, ClusterStore, TooOld

VERSION = {"major": "1", "minor": "36", "gitVersion": "v1.36.0-proxyctl-test", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0",
           "compiler": "gc", "platform": "linux/amd64"}
GARBAGE = b"\x00\x9f<html>not json {\"kind\": \xff\n"
HANG_LIMIT = 60.0  # seconds a hung request is held at most

_PATH = re.compile(r"^(?P<prefix>/api/v1|/apis/discovery\.k8s\.io/v1)"
                   r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?/?$")


class Fault(Enum):
    GONE = "gone"  # HTTP 410 with an Expired Status
    GONE_EVENT = "gone-event"  # a watch: 200, then an ERROR event with code 410 (a list: as GONE)
    SERVER_ERROR = "server-error"  # HTTP 500 InternalError
    GARBAGE = "garbage"  # 200 with bytes that are not JSON
    HANG = "hang"  # read the request, send nothing until released (or HANG_LIMIT)
    RESET = "reset"  # close the connection without an answer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    resource: str | None  # plural, for resource paths
    name: str | None  # for a single object's path
    watch: bool
    at: float  # time.monotonic()

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and self.resource is not None and self.name is None and not self.watch


@dataclass
class _Pending:
    fault: Fault
    remaining: int
    watch: bool | None
    resource: str | None

    def matches(self, request: Request) -> bool:
        return ((self.watch is None or self.watch == request.watch)
                and (self.resource is None or self.resource == request.resource))


@dataclass
class _Hook:
    fn: Callable[[Request], None]
    phase: str
    when: Callable[[Request], bool]
    once: bool


@dataclass
class _Stream:
    request: Request
    generation: int
    end: str = ""  # "" | "clean" | "abrupt"
    bookmark_now: bool = False
    sent: int = 0


@dataclass
class _Page:
    rv: int
    items: list[dict] = field(default_factory=list)


class ApiServer:
    def __init__(self, *, history_limit: int = 1000, bookmark_interval: float = 1.0,
                 max_watch_seconds: float = 1800.0, host: str = "127.0.0.1", port: int = 0):
        self.store = ClusterStore(history_limit)
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._faults: list[_Pending] = []
        self._hooks: list[_Hook] = []
        self._streams: list[_Stream] = []
        self._connections: set[socket.socket] = set()
        self._pages: dict[str, _Page] = {}
        self._unhang = threading.Event()
        self.down = threading.Event()  # set once stop() has closed everything, cleared by start()
        self._generation = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ApiServer:
        self._httpd = _HTTPServer((self.host, self.port), _Handler)
        self._httpd.api = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="test-apiserver", daemon=True)
        self._thread.start()
        self.down.clear()
        return self

    def stop(self) -> None:
        """Stop listening and close every connection (watches, hung requests included)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        with self._lock:
            self._generation += 1
            connections = list(self._connections)
        self.release_hangs()
        for conn in connections:
            _cut(conn)
        with self.store.cond:
            self.store.cond.notify_all()
        self.down.set()

    def restart(self, *, keep_history: bool = True, down_for: float = 0.0,
                resume: threading.Event | None = None) -> None:
        """Like an API server restart: every connection closed, ``down_for`` seconds refusing
        connections (or, given ``resume``, until that event is set: :attr:`down` tells when the
        server is down), then serving again on the same port. Without ``keep_history`` the new
        server remembers no change (its watch cache starts now): older resourceVersions get 410."""
        self.stop()
        if not keep_history:
            self.store.forget_history()
            with self._lock:
                self._pages.clear()
        if down_for:
            time.sleep(down_for)
        if resume is not None:
            resume.wait()
        self.start()

    def __enter__(self) -> ApiServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: str, *, token: str | None = None) -> str:
        """A kubeconfig file for this server (with a bearer token if given); returns ``path``."""
        user = {"token": token} if token else {}
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        }
        with open(path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        return path

    # -- objects ---------------------------------------------------------------------------------

    def create(self, obj: dict) -> dict:
        return self.store.create(_plural(obj), obj)

    def update(self, obj: dict) -> dict:
        return self.store.update(_plural(obj), obj)

    def apply(self, obj: dict) -> dict:
        """Create, or update when the object exists."""
        return self.store.apply(_plural(obj), obj)

    def delete(self, kind: str, name: str, namespace: str = "default") -> dict:
        return self.store.delete(BY_KIND[kind].plural, name, namespace)

    def get(self, kind: str, name: str, namespace: str = "default") -> dict | None:
        return self.store.get(BY_KIND[kind].plural, name, namespace)

    @property
    def resource_version(self) -> int:
        return self.store.rv

    # -- faults and hooks ------------------------------------------------------------------------

    def inject(self, fault: Fault, count: int = 1, *, watch: bool | None = None, resource: str | None = None) -> None:
        """The next ``count`` list/watch requests (only watches or only lists when ``watch`` is
        given; of one resource, by plural, when ``resource`` is) answer with ``fault``."""
        with self._lock:
            self._faults.append(_Pending(fault, count, watch, resource))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def release_hangs(self) -> None:
        """Let every hung request end (its connection closes without an answer)."""
        with self._lock:
            old, self._unhang = self._unhang, threading.Event()
        old.set()

    def close_watches(self, *, clean: bool = False, resource: str | None = None) -> int:
        """End the open watch streams (of one resource, if given): ``clean`` ends each with the final
        chunk as a server timeout does; otherwise the connection is cut mid-stream. Returns how many."""
        with self.store.cond:  # a stream reads its end with its changes under this lock (see _watch)
            with self._lock:
                streams = [s for s in self._streams if resource is None or s.request.resource == resource]
                for stream in streams:
                    stream.end = "clean" if clean else "abrupt"
            self.store.cond.notify_all()
        return len(streams)

    def send_bookmarks(self) -> None:
        """Every open watch that allows bookmarks gets one now."""
        with self._lock:
            for stream in self._streams:
                stream.bookmark_now = True
        with self.store.cond:
            self.store.cond.notify_all()

    def expire_continue_tokens(self) -> None:
        with self._lock:
            self._pages.clear()

    def add_hook(self, fn: Callable[[Request], None], *, phase: str = "request",
                 when: Callable[[Request], bool] | None = None, once: bool = True) -> None:
        """Run ``fn(request)`` in the request's thread: at ``phase`` "request" before anything is
        done with it; at "listed" after a list's snapshot was taken, before it is sent."""
        if phase not in ("request", "listed"):
            raise ValueError(phase)
        with self._lock:
            self._hooks.append(_Hook(fn, phase, when or (lambda r: True), once))

    def open_watches(self, resource: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self._streams if resource is None or s.request.resource == resource)

    def count(self, *, resource: str | None = None, watch: bool | None = None, method: str = "GET") -> int:
        """How many requests of this shape arrived."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and r.resource is not None and r.name is None
                       and (resource is None or r.resource == resource)
                       and (watch is None or r.watch == watch))

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # -- serving (handler threads) ---------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        m = _PATH.match(parts.path)
        plural = m["plural"] if m and m["plural"] in RESOURCES else None
        request = Request(h.command, parts.path, query, {k.lower(): v for k, v in h.headers.items()}, plural,
                          m["name"] if m else None, query.get("watch") in ("true", "1"), time.monotonic())
        with self._lock:
            self.requests.append(request)
        self._run_hooks("request", request)

        if parts.path in ("/version", "/version/") and h.command == "GET":
            return _send_json(h, 200, VERSION)
        if m is None or plural is None or RESOURCES[plural].prefix != m["prefix"]:
            return _send_status(h, 404, "NotFound", f"the server could not find the requested resource ({parts.path})")
        namespace, name = m["namespace"], m["name"]
        try:
            if h.command == "GET" and name is None:
                fault = self._take_fault(request)
                if fault is not None:
                    return self._answer_fault(h, request, fault)
                match = _matcher(query, namespace)
                if request.watch:
                    return self._watch(h, request, plural, match)
                return self._list(h, request, plural, match, query)
            if h.command == "GET":
                obj = self.store.get(plural, name, namespace or "")
                if obj is None:
                    raise ApiError(404, "NotFound", f'{plural} "{name}" not found')
                return _send_json(h, 200, obj)
            if h.command == "POST" and name is None:
                return _send_json(h, 201, self.store.create(plural, _body(h), namespace))
            if h.command == "PUT" and name is not None:
                obj = _body(h)
                obj.setdefault("metadata", {})["name"] = name
                return _send_json(h, 200, self.store.update(plural, obj, namespace))
            if h.command == "DELETE" and name is not None:
                _body(h, required=False)
                return _send_json(h, 200, self.store.delete(plural, name, namespace or ""))
            return _send_status(h, 405, "MethodNotAllowed", f"{h.command} is not supported on {parts.path}")
        except SelectorError as e:
            return _send_status(h, 400, "BadRequest", str(e))
        except ApiError as e:
            return _send_status(h, e.code, e.reason, e.message)

    def _run_hooks(self, phase: str, request: Request) -> None:
        with self._lock:
            hooks = [hook for hook in self._hooks if hook.phase == phase and hook.when(request)]
            for hook in hooks:
                if hook.once:
                    self._hooks.remove(hook)
        for hook in hooks:
            hook.fn(request)

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for pending in self._faults:
                if pending.remaining > 0 and pending.matches(request):
                    pending.remaining -= 1
                    if pending.remaining == 0:
                        self._faults.remove(pending)
                    return pending.fault
        return None

    def _answer_fault(self, h: _Handler, request: Request, fault: Fault) -> None:
        if fault is Fault.SERVER_ERROR:
            return _send_status(h, 500, "InternalError", "Internal error occurred: injected by the test")
        if fault is Fault.GONE or (fault is Fault.GONE_EVENT and not request.watch):
            return _send_status(h, 410, "Expired", "too old resource version: injected by the test")
        if fault is Fault.GONE_EVENT:
            _start_stream(h)
            _send_chunk(h, _event("ERROR", _status(410, "Expired", "too old resource version: injected")))
            return _end_stream(h)
        if fault is Fault.GARBAGE:
            if request.watch:
                _start_stream(h)
                _send_chunk(h, GARBAGE)
                return _end_stream(h)
            return _send_bytes(h, 200, GARBAGE)
        h.close_connection = True
        if fault is Fault.HANG:
            with self._lock:
                unhang = self._unhang
            unhang.wait(HANG_LIMIT)
        _cut(h.connection)

    def _list(self, h: _Handler, request: Request, plural: str, match, query: dict[str, str]) -> None:
        resource = RESOURCES[plural]
        token = query.get("continue")
        limit = int(query.get("limit") or 0)
        if token:
            page_id, _, offset_text = token.partition(":")
            with self._lock:
                page = self._pages.get(page_id)
            if page is None:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent "
                                               "list result. You can start a new list without the continue parameter.")
            rv, items, offset = page.rv, page.items, int(offset_text)
        else:
            everything, rv = self.store.list(plural)
            items, offset = [obj for obj in everything if match(obj)], 0
            self._run_hooks("listed", request)
        chunk = items[offset:offset + limit] if limit > 0 else items[offset:]
        metadata: dict = {"resourceVersion": str(rv)}
        if limit > 0 and offset + limit < len(items):
            page_id = token.partition(":")[0] if token else uuid.uuid4().hex
            with self._lock:
                self._pages.setdefault(page_id, _Page(rv, items))
            metadata["continue"] = f"{page_id}:{offset + limit}"
            metadata["remainingItemCount"] = len(items) - offset - limit
        items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in chunk]
        _send_json(h, 200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                            "metadata": metadata, "items": items})

    def _watch(self, h: _Handler, request: Request, plural: str, match) -> None:
        query = request.query
        rv_text = query.get("resourceVersion", "")
        try:
            rv = int(rv_text) if rv_text not in ("", "0") else None
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from None
        timeout = min(float(query.get("timeoutSeconds") or self.max_watch_seconds), self.max_watch_seconds)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        with self._lock:
            stream = _Stream(request, self._generation)
        subscription = None
        try:
            _start_stream(h)
            try:
                items, subscription = self.store.subscribe(plural, rv)
            except TooOld as e:
                self._send_event(h, stream, "ERROR", _status(e.code, e.reason, e.message))
                return _end_stream(h)
            with self._lock:  # open from now on: it will see every later change
                self._streams.append(stream)
            for obj in items:  # no resourceVersion: "start at the most recent", current objects first
                if match(obj):
                    self._send_event(h, stream, "ADDED", obj)
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self.bookmark_interval
            while True:
                # The end and the changes are read together, under the store's lock: a change made
                # after close_watches() returned is never sent on the stream it ended.
                with self.store.cond:
                    end = stream.end
                    if not end:
                        changes, rv = self.store.drain(subscription)
                if end == "abrupt" or stream.generation != self._generation:
                    h.close_connection = True
                    _cut(h.connection)
                    return
                if end == "clean":
                    break
                for change in changes:
                    event = _filtered(change, plural, match)
                    if event is not None:
                        self._send_event(h, stream, *event)
                now = time.monotonic()
                if bookmarks and (now >= next_bookmark or stream.bookmark_now):
                    stream.bookmark_now = False
                    resource = RESOURCES[plural]
                    self._send_event(h, stream, "BOOKMARK", {"kind": resource.kind, "apiVersion": resource.api_version,
                                                             "metadata": {"resourceVersion": str(rv)}})
                    next_bookmark = now + self.bookmark_interval
                if now >= deadline:
                    break
                with self.store.cond:
                    if not subscription.queue and not stream.end and not stream.bookmark_now:
                        self.store.cond.wait(min(0.05, max(0.0, deadline - now)))
            _end_stream(h)
        except OSError:  # the client went away, or we cut the connection
            h.close_connection = True
        finally:
            if subscription is not None:
                self.store.unsubscribe(subscription)
            with self._lock:
                if stream in self._streams:
                    self._streams.remove(stream)

    def _send_event(self, h: _Handler, stream: _Stream, type_: str, obj: dict) -> None:
        _send_chunk(h, _event(type_, obj))
        stream.sent += 1


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    api: ApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        api = self.server.api
        with api._lock:
            api._connections.add(self.connection)

    def finish(self) -> None:
        api = self.server.api
        with api._lock:
            api._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self.server.api._serve(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args) -> None:
        if os.environ.get("TEST_APISERVER_LOG"):
            super().log_message(format, *args)


# -- helpers ---------------------------------------------------------------------------------------


def _plural(obj: dict) -> str:
    kind = obj.get("kind")
    if kind not in BY_KIND:
        raise ValueError(f"the test API server does not serve kind {kind!r}")
    return BY_KIND[kind].plural


def _matcher(query: dict[str, str], namespace: str | None):
    labels = parse_label_selector(query.get("labelSelector"))
    fields = parse_field_selector(query.get("fieldSelector"))
    return lambda obj: ((namespace is None or obj["metadata"].get("namespace") == namespace)
                        and labels(obj) and fields(obj))


def _filtered(change: Change, plural: str, match) -> tuple[str, dict] | None:
    """What a watch with this selector sees of ``change``, as the API server's watch cache decides."""
    if change.resource != plural:
        return None
    now = match(change.obj)
    before = change.old is not None and match(change.old)
    if change.type == "ADDED":
        return ("ADDED", change.obj) if now else None
    if change.type == "DELETED":
        return ("DELETED", change.obj) if before else None
    if now and before:
        return "MODIFIED", change.obj
    if now:
        return "ADDED", change.obj
    if before:  # left the selector: a deletion, carrying the old object at the new resourceVersion
        gone = copy.deepcopy(change.old)
        gone["metadata"]["resourceVersion"] = change.obj["metadata"]["resourceVersion"]
        return "DELETED", gone
    return None


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _event(type_: str, obj: dict) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _body(h: _Handler, *, required: bool = True) -> dict:
    length = int(h.headers.get("Content-Length") or 0)
    data = h.rfile.read(length) if length else b""
    if not data:
        if required:
            raise ApiError(400, "BadRequest", "a request body is required")
        return {}
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise ApiError(400, "BadRequest", f"the body is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "the body is not an object")
    return obj


def _send_json(h: _Handler, code: int, body: dict) -> None:
    _send_bytes(h, code, json.dumps(body, separators=(",", ":")).encode())


def _send_status(h: _Handler, code: int, reason: str, message: str) -> None:
    _send_json(h, code, _status(code, reason, message))


def _send_bytes(h: _Handler, code: int, data: bytes) -> None:
    h.send_response(code)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def _start_stream(h: _Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()


def _send_chunk(h: _Handler, data: bytes) -> None:
    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def _end_stream(h: _Handler) -> None:
    h.wfile.write(b"0\r\n\r\n")


def _cut(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


__all__ = ["ApiServer", "Fault", "Request"]
