"""The part of the cluster a kube-proxy (or a named alternative proxy) acts on.

kube-proxy lists Services and EndpointSlices with the label selector
``!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless`` (both
requirements on both kinds), then its change trackers skip Services without a cluster IP
(headless) and ExternalName Services, EndpointSlices of address type FQDN, and EndpointSlices
without a ``kubernetes.io/service-name`` label. A proxy with a name (``service_proxy_name``)
instead selects the objects labelled ``service.kubernetes.io/service-proxy-name=<name>``.
Nodes are all kept.
"""

from __future__ import annotations

from dataclasses import replace

from proxyctl.cluster.objects import (
    HEADLESS_LABEL,
    SERVICE_PROXY_NAME_LABEL,
    ClusterState,
    EndpointSlice,
    Service,
)


def select_for_proxy(state: ClusterState, service_proxy_name: str | None = None) -> ClusterState:
    """``state`` without the Services and EndpointSlices the proxy would never act on."""
    def wanted(labels: dict[str, str]) -> bool:
        if HEADLESS_LABEL in labels:
            return False
        if service_proxy_name is None:
            return SERVICE_PROXY_NAME_LABEL not in labels
        return labels.get(SERVICE_PROXY_NAME_LABEL) == service_proxy_name

    return replace(
        state,
        services=tuple(s for s in state.services if wanted(s.labels) and is_proxied(s)),
        endpoint_slices=tuple(es for es in state.endpoint_slices if wanted(es.labels) and is_usable(es)),
    )


def is_proxied(service: Service) -> bool:
    """False for a Service kube-proxy skips whatever its labels: headless or ExternalName."""
    return not service.headless and bool(service.cluster_ips) and service.type != "ExternalName"


def is_usable(endpoint_slice: EndpointSlice) -> bool:
    """False for a slice kube-proxy ignores: FQDN addresses, or no service-name label."""
    return endpoint_slice.address_type in ("IPv4", "IPv6") and bool(endpoint_slice.service_name)
