"""A v1 Node manifest to a :class:`~proxyctl.cluster.objects.Node`: only what kube-proxy reads."""

from __future__ import annotations

from proxyctl.cluster import names
from proxyctl.cluster.ipaddr import family_of
from proxyctl.cluster.manifest_fields import ObjectReader, read_metadata
from proxyctl.cluster.objects import Node

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def read_node(reader: ObjectReader, obj: dict) -> Node | None:
    """The Node in ``obj``, or None when ``reader`` recorded problems."""
    _, name, labels = read_metadata(reader, obj, namespaced=False, name_check=names.is_dns1123_subdomain)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    being_deleted = meta.get("deletionTimestamp") is not None
    spec = reader.mapping(obj, "spec", "spec")
    status = reader.mapping(obj, "status", "status")

    pod_cidrs = _pod_cidrs(reader, spec)
    taints = []
    for _, taint, path in reader.items(spec, "taints", "spec.taints"):
        key = reader.string(taint, "key", f"{path}.key")
        if not key:
            reader.fail(f"{path}.key", "is required")
        else:
            reader.check_name(key, f"{path}.key", names.is_qualified_name, "taint key")
        effect = reader.string(taint, "effect", f"{path}.effect")
        reader.one_of(effect, f"{path}.effect", TAINT_EFFECTS, "effect")
        taints.append(key)

    internal, external = [], []
    for _, entry, path in reader.items(status, "addresses", "status.addresses"):
        kind = reader.string(entry, "type", f"{path}.type")
        text = reader.string(entry, "address", f"{path}.address")
        if kind not in ("InternalIP", "ExternalIP"):
            continue  # Hostname, InternalDNS, ExternalDNS: kube-proxy does not use them
        ip = reader.ip(text, f"{path}.address")
        if ip is not None:
            (internal if kind == "InternalIP" else external).append(ip)

    if not reader.ok:
        return None
    return Node(
        name=name,
        labels=labels,
        internal_ips=tuple(internal),
        external_ips=tuple(external),
        pod_cidrs=pod_cidrs,
        being_deleted=being_deleted,
        taints=tuple(taints),
    )


def _pod_cidrs(reader: ObjectReader, spec: dict) -> tuple[str, ...]:
    listed = [(text, path) for _, text, path in reader.items(spec, "podCIDRs", "spec.podCIDRs", want="string")]
    if not listed:
        single = reader.string(spec, "podCIDR", "spec.podCIDR")
        listed = [(single, "spec.podCIDR")] if single else []
    if len(listed) > 2:
        reader.fail("spec.podCIDRs", f"has {len(listed)} entries: at most 2 (one per IP family)")
    cidrs = [c for text, path in listed if (c := reader.cidr(text, path)) is not None]
    if len(cidrs) == 2 and family_of(cidrs[0]) == family_of(cidrs[1]):
        reader.fail("spec.podCIDRs", f"{cidrs[0]} and {cidrs[1]} are both {family_of(cidrs[0])}: "
                                     "a dual-stack Node has one IPv4 and one IPv6 pod CIDR")
    return tuple(cidrs)
