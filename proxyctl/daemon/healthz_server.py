"""``/healthz`` and ``/livez`` on healthzBindAddress, and the HTTP plumbing the daemon's servers share.

The answers are kube-proxy v1.36's, byte for byte but for the times: ``Content-Type:
application/json``, ``X-Content-Type-Options: nosniff``, 200 or 503, and the body Go's
``json.Marshal`` makes of its ProxyHealth (compact, in field order, times in RFC 3339)::

    /healthz  {"lastUpdated":T,"currentTime":T,"nodeEligible":B,"healthy":B,
               "status":{"IPv4":{"lastUpdated":T,"healthy":B}}}   (on one line)
    /livez    {"lastUpdated":T,"currentTime":T,"healthy":B,"status":{...}}

``/healthz`` is 200 when the proxy is healthy *and* the node is eligible, ``/livez`` when the proxy
is healthy; on a 200 ``lastUpdated`` is the current time (kube-proxy keeps that for compatibility:
"recent" means healthy). ``status`` is left out while no family has synced. Each answer counts in
``kubeproxy_proxy_healthz_total{code}`` / ``kubeproxy_proxy_livez_total{code}``. Any other path
gets Go's ``404 page not found``.

The plumbing (``BackgroundHTTPServer``): a bind address as kube-proxy reads it (``IP:port``,
``[IPv6]:port``; port 0 picks a free one), a listening socket made inside a named network namespace
when asked (opened by a short-lived thread that entered the namespace; the socket stays there and
is served from any thread), requests served on daemon threads, and ``stop()`` that closes the
listener and every open connection within a fraction of a second. Like Go, a wildcard address
(``0.0.0.0``, ``::`` or an empty host) listens on both families through one IPv6 socket when the
namespace has IPv6.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from proxyctl.config.addresses import split_host_port
from proxyctl.daemon.health import GO_ZERO_TIME, HealthReport, Instant, ProxyHealth
from proxyctl.daemon.metrics import ProxyMetrics
from proxyctl.errors import KernelError
from proxyctl.node.netns import call_with_deadline, enter_netns_in_this_thread

log = logging.getLogger(__name__)

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
NOSNIFF = ("X-Content-Type-Options", "nosniff")
LISTEN_DEADLINE = 5.0  # seconds to open a socket (entering a namespace included)
_WILDCARDS = ("", "0.0.0.0", "::")


class ListenError(KernelError):
    """A server could not listen on its address; names the address, the config field and the fix."""

    def __init__(self, message: str, *, address: str, field: str, netns: str | None = None):
        super().__init__(message, netns=netns)
        self.address = address
        self.field = field


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


# An application: (method, path, request headers) -> Response. The path has no query string.
App = Callable[[str, str, Mapping[str, str]], Response]

NOT_FOUND = Response(404, b"404 page not found\n", (("Content-Type", TEXT), NOSNIFF))


def parse_bind_address(address: str, *, field: str) -> tuple[str, int]:
    """``"0.0.0.0:10256"``, ``"[::]:10256"``, ``"127.0.0.1:0"`` to (host, port); ListenError if malformed."""
    try:
        host, port_text = split_host_port(address)
        if not port_text.isdigit() or int(port_text) > 65535:
            raise ValueError(f"port {port_text!r} is not a number in 0..65535")
        if host not in _WILDCARDS:
            socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (ValueError, socket.gaierror) as e:
        raise ListenError(f"{field} {address!r} is not IP:port ({e}); write it like 0.0.0.0:10256 or [::]:10256",
                          address=address, field=field) from e
    return host, int(port_text)


def open_listener(address: str, *, field: str, netns: str | None = None, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on ``address``, made inside ``netns`` when one is named."""
    host, port = parse_bind_address(address, field=field)

    def make() -> socket.socket:
        if netns is not None:
            enter_netns_in_this_thread(netns)
        return _bind(host, port, backlog)

    try:
        return call_with_deadline(make, timeout=LISTEN_DEADLINE, what=f"listening on {address}")
    except OSError as e:
        raise _listen_error(e, address, field, netns) from e
    except KernelError as e:
        if isinstance(e, ListenError):
            raise
        raise ListenError(f"cannot listen on {field} {address}: {e}", address=address, field=field,
                          netns=netns) from e


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    if host in _WILDCARDS:
        try:
            return _bound_socket(socket.AF_INET6, ("::", port), backlog, v6only=False)
        except OSError as e:
            if e.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                raise
            return _bound_socket(socket.AF_INET, ("0.0.0.0", port), backlog)
    if ":" in host:
        return _bound_socket(socket.AF_INET6, (host, port), backlog, v6only=True)
    return _bound_socket(socket.AF_INET, (host, port), backlog)


def _bound_socket(family: int, addr: tuple, backlog: int, v6only: bool | None = None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go does for listeners
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind(addr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _listen_error(e: OSError, address: str, field: str, netns: str | None) -> ListenError:
    where = f" in network namespace {netns}" if netns else ""
    if e.errno == errno.EADDRINUSE:
        fix = (f"another process already listens there (an old kube-proxy or proxyctl?): "
               f"stop it, or set {field} to a free port")
    elif e.errno == errno.EADDRNOTAVAIL:
        fix = f"no interface there has that address: set {field} to an address of this node, or 0.0.0.0"
    elif e.errno == errno.EACCES:
        fix = f"ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, or set {field} to a higher port"
    else:
        fix = f"check {field}"
    return ListenError(f"cannot listen on {field} {address}{where}: {e.strerror or e}; {fix}",
                       address=address, field=field, netns=netns)


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the server's app; speaks HTTP/1.1 like Go, without a Server header."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is dropped after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def _serve(self) -> None:
        self._discard_body()
        path = urlsplit(self.path).path or "/"
        try:
            response = self.server.app(self.command, path, self.headers)
        except Exception:  # a bug in an app must not kill the server
            log.exception("%s %s failed", self.command, path)
            response = Response(500, b"internal error\n", (("Content-Type", TEXT), NOSNIFF))
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _discard_body(self) -> None:
        """Read a request body nobody wants, so the next request on the connection starts clean."""
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > 1 << 20:
            self.close_connection = True
        elif int(length):
            self.rfile.read(int(length))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() closes connections itself

    def __init__(self, sock: socket.socket, app: App):
        self.address_family = sock.family
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_name, self.server_port = sock.getsockname()[:2]
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class BackgroundHTTPServer:
    """One HTTP listener served from a background thread: ``start()``, ``stop()``, ``port``."""

    def __init__(self, address: str, app: App, *, field: str, netns: str | None = None):
        self.address = address
        self.field = field  # the configuration field the address comes from, for messages
        self.netns = netns
        self._app = app
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen and serve; ListenError when the address cannot be used."""
        if self._server is not None:
            return
        sock = open_listener(self.address, field=self.field, netns=self.netns)
        self._server = _Server(sock, self._app)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"proxyctl http {self.address}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop every open connection; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(1.0)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The port actually listened on (the chosen one when the address asked for port 0)."""
        if self._server is None:
            raise RuntimeError(f"the server for {self.address} is not running")
        return self._server.server_port


def go_json(value: object) -> bytes:
    """JSON as Go's ``json.Marshal`` writes it: compact, UTF-8, with <, >, & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text.encode()


def _time(instant: Instant | None) -> str:
    return GO_ZERO_TIME if instant is None else instant.rfc3339nano()


def health_body(report: HealthReport, *, last_updated: Instant | None,
                node_eligible: bool | None = None) -> bytes:
    """kube-proxy's ProxyHealth as JSON; ``node_eligible`` None leaves the field out (``/livez``)."""
    body: dict[str, object] = {"lastUpdated": _time(last_updated), "currentTime": _time(report.current_time)}
    if node_eligible is not None:
        body["nodeEligible"] = node_eligible
    body["healthy"] = report.healthy
    if report.status:
        body["status"] = {family: {"lastUpdated": _time(s.last_updated), "healthy": s.healthy}
                          for family, s in sorted(report.status.items())}
    return go_json(body)


class HealthzServer(BackgroundHTTPServer):
    """kube-proxy's healthz server: ``/healthz`` and ``/livez`` on healthzBindAddress.

    ``metrics`` counts the answers (None: nothing counted).
    """

    def __init__(self, address: str, health: ProxyHealth, *, metrics: ProxyMetrics | None = None,
                 netns: str | None = None):
        super().__init__(address, self.respond, field="healthzBindAddress", netns=netns)
        self.health = health
        self.metrics = metrics

    def respond(self, method: str, path: str, headers: Mapping[str, str]) -> Response:
        if path == "/healthz":
            return self.healthz()
        if path == "/livez":
            return self.livez()
        return NOT_FOUND

    def healthz(self) -> Response:
        report = self.health.health()
        eligible = self.health.node_eligible()
        healthy = report.healthy and eligible
        if self.metrics is not None:
            self.metrics.healthz_answered(200 if healthy else 503)
        last_updated = self.health.clock.now() if healthy else report.last_updated
        return _json_response(200 if healthy else 503,
                              health_body(report, last_updated=last_updated, node_eligible=eligible))

    def livez(self) -> Response:
        report = self.health.health()
        if self.metrics is not None:
            self.metrics.livez_answered(200 if report.healthy else 503)
        last_updated = self.health.clock.now() if report.healthy else report.last_updated
        return _json_response(200 if report.healthy else 503, health_body(report, last_updated=last_updated))


def _json_response(status: int, body: bytes) -> Response:
    return Response(status, body, (("Content-Type", JSON), NOSNIFF))
