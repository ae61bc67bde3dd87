"""Per-Service health checks: kube-proxy's ServiceHealthServer for externalTrafficPolicy=Local LoadBalancers.

A LoadBalancer Service with ``externalTrafficPolicy: Local`` has a ``healthCheckNodePort``; the
cloud load balancer probes it on every node and sends traffic only to nodes that answer 200. On
that port kube-proxy answers *every* path with::

    200 when the Service has local endpoints and the proxy is healthy, else 503
    Content-Type: application/json
    X-Content-Type-Options: nosniff
    X-Load-Balancing-Endpoint-Weight: <local endpoints>
    {
    >"service": {
    >>"namespace": "ns",
    >>"name": "svc"
    >},
    >"localEndpoints": 2,
    >"serviceProxyHealthy": true
    }

(each > a tab; no trailing newline). "Healthy" is ``ProxyHealth.is_healthy()``: node eligibility
does not count here. The sync loop calls ``sync_services`` with the Services that need a check
(listeners open, close, or move when the port changes) and ``sync_endpoints`` with the local
endpoint counts (a Service left out has 0). A port that cannot be opened is reported, not raised,
and retried at the next ``sync_services``, as kube-proxy does.

``addresses`` are the node IPs to listen on: ``0.0.0.0`` (all, both families) unless
nodePortAddresses narrows them, in which case the daemon passes the node IPs that match.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from proxyctl.daemon.healthz_server import JSON, NOSNIFF, BackgroundHTTPServer, ListenError, Response

log = logging.getLogger(__name__)

WEIGHT_HEADER = "X-Load-Balancing-Endpoint-Weight"


class NamespacedName(NamedTuple):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class HealthSource(Protocol):
    def is_healthy(self) -> bool: ...


def service_health_body(service: NamespacedName, local_endpoints: int, proxy_healthy: bool) -> bytes:
    """kube-proxy's body for a health check answer (Go's %q quoting is JSON's for these names)."""
    return (f'{{\n\t"service": {{\n\t\t"namespace": {_quote(service.namespace)},\n'
            f'\t\t"name": {_quote(service.name)}\n\t}},\n\t"localEndpoints": {local_endpoints},\n'
            f'\t"serviceProxyHealthy": {"true" if proxy_healthy else "false"}\n}}').encode()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Check:
    """One Service's health check: its port, its local endpoint count, its listeners."""

    def __init__(self, service: NamespacedName, port: int):
        self.service = service
        self.port = port
        self.endpoints = 0
        self.listeners: list[BackgroundHTTPServer] = []

    def close(self) -> None:
        for listener in self.listeners:
            listener.stop()
        self.listeners.clear()


class ServiceHealthServer:
    """The health-check node port listeners of one node; thread-safe."""

    def __init__(self, health: HealthSource, *, addresses: Sequence[str] = ("0.0.0.0",),
                 netns: str | None = None):
        self.health = health
        self.addresses = tuple(addresses)
        self.netns = netns
        self._lock = threading.RLock()
        self._checks: dict[NamespacedName, _Check] = {}

    def sync_services(self, services: Mapping[NamespacedName | tuple[str, str], int]) -> list[ListenError]:
        """Make ``services`` (Service -> healthCheckNodePort) the open checks; the ports that failed."""
        wanted = {NamespacedName(*key): port for key, port in services.items()}
        failures = []
        with self._lock:
            for service, check in list(self._checks.items()):
                if wanted.get(service) != check.port:
                    log.info("closing health check service=%s port=%d", service, check.port)
                    check.close()
                    del self._checks[service]
            for service, port in wanted.items():
                if service in self._checks:
                    continue
                check = _Check(service, port)
                try:
                    self._listen(check)
                except ListenError as e:
                    log.error("cannot start health check service=%s port=%d: %s", service, port, e)
                    failures.append(e)
                    continue
                log.info("opened health check service=%s port=%d", service, port)
                self._checks[service] = check
        return failures

    def sync_endpoints(self, local_endpoints: Mapping[NamespacedName | tuple[str, str], int]) -> None:
        """The number of local endpoints of each Service; Services left out have none."""
        counts = {NamespacedName(*key): count for key, count in local_endpoints.items()}
        with self._lock:
            for service, check in self._checks.items():
                check.endpoints = counts.get(service, 0)

    def ports(self) -> dict[NamespacedName, list[int]]:
        """The ports actually listened on, per Service (the chosen ones when a port was 0)."""
        with self._lock:
            return {service: [listener.port for listener in check.listeners]
                    for service, check in self._checks.items()}

    def stop(self) -> None:
        """Close every listener (the daemon is stopping)."""
        with self._lock:
            for check in self._checks.values():
                check.close()
            self._checks.clear()

    def respond(self, service: NamespacedName) -> Response:
        with self._lock:
            check = self._checks.get(service)
            count = None if check is None else check.endpoints
        if count is None:  # closed while the request was on its way: kube-proxy writes nothing
            return Response(200)
        healthy = self.health.is_healthy()
        headers = (("Content-Type", JSON), NOSNIFF, (WEIGHT_HEADER, str(count)))
        return Response(200 if count and healthy else 503, service_health_body(service, count, healthy), headers)

    def _listen(self, check: _Check) -> None:
        for ip in self.addresses:
            address = f"[{ip}]:{check.port}" if ":" in ip else f"{ip}:{check.port}"
            listener = BackgroundHTTPServer(address, lambda method, path, headers, s=check.service: self.respond(s),
                                            field=f"healthCheckNodePort of Service {check.service}", netns=self.netns)
            try:
                listener.start()
            except ListenError:
                check.close()  # what opened before, so a retry can have the port
                raise
            check.listeners.append(listener)
