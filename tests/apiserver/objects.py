"""API objects as the API server stores them: already defaulted, camelCase, ready to create."""

from __future__ import annotations

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def service(namespace: str, name: str, cluster_ip: str = "172.30.0.41", *, port: int = 80, protocol: str = "TCP",
            port_name: str = "p80", labels: dict | None = None, type_: str = "ClusterIP", node_port: int = 0) -> dict:
    spec_port = {"name": port_name, "protocol": protocol, "port": port, "targetPort": port}
    if node_port:
        spec_port["nodePort"] = node_port
    spec = {
        "type": type_,
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "ipFamilies": ["IPv6" if ":" in cluster_ip else "IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": [spec_port],
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
    }
    if type_ in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = "Cluster"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": namespace, "name": name, "labels": dict(labels or {})},
            "spec": spec, "status": {"loadBalancer": {}}}


def endpoint_slice(namespace: str, service_name: str, addresses: list[str], *, name: str | None = None,
                   port: int = 80, protocol: str = "TCP", port_name: str = "p80", node: str = "node-a",
                   labels: dict | None = None, ready: bool = True) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": namespace, "name": name or f"{service_name}-abc12",
                     "labels": {SERVICE_NAME_LABEL: service_name, **(labels or {})}},
        "addressType": "IPv6" if addresses and ":" in addresses[0] else "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": False},
                       "nodeName": node} for ip in addresses],
        "ports": [{"name": port_name, "port": port, "protocol": protocol}],
    }


def node(name: str, *, ip: str = "192.168.0.2", labels: dict | None = None, taints: list[str] = (),
         pod_cidr: str = "10.180.0.0/24") -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr],
                 "taints": [{"key": key, "effect": "NoSchedule"} for key in taints]},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]},
    }


def config_map(namespace: str, name: str, data: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": namespace, "name": name},
            "data": dict(data or {})}
