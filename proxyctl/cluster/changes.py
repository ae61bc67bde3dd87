"""What the live watch reports: one object added, modified or deleted.

A change tracker reads :attr:`ChangeEvent.services` to learn which Services' ports may need
their rules rewritten, compares ``old`` and ``new`` as kube-proxy's trackers compare previous
and current, and watches the node: :attr:`~ChangeEvent.topology_changed` forces a full sync,
:attr:`~ChangeEvent.node_terminating` turns ``/healthz`` to 503.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyctl.cluster.objects import EndpointSlice, Node, Service

SERVICE = "Service"
ENDPOINT_SLICE = "EndpointSlice"
NODE = "Node"
KINDS = (SERVICE, ENDPOINT_SLICE, NODE)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

# Node labels the proxy's rules depend on (topology-aware routing reads the zone).
TOPOLOGY_LABELS = ("topology.kubernetes.io/zone", "topology.kubernetes.io/region")
# The cluster autoscaler's taint on a node it is about to remove (kube-proxy's /healthz fails on it).
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"

ClusterObject = Service | EndpointSlice | Node


@dataclass(frozen=True)
class ChangeEvent:
    kind: str  # SERVICE | ENDPOINT_SLICE | NODE
    action: str  # ADDED | MODIFIED | DELETED
    key: str  # "namespace/name"; a Node's name
    old: ClusterObject | None  # None when ADDED
    new: ClusterObject | None  # None when DELETED (or when the object turned invalid and was dropped)
    relist: bool = False  # found by comparing a (re)list with what we held, not by a watch event
    at: float = 0.0  # when it was received, on the watch's clock

    @property
    def services(self) -> frozenset[str]:
        """"namespace/name" of every Service whose ports this change may affect: the Service itself,
        or the Service(s) an EndpointSlice belongs to, before and after; none for a Node."""
        if self.kind == SERVICE:
            return frozenset((self.key,))
        if self.kind == ENDPOINT_SLICE:
            return frozenset(f"{s.namespace}/{s.service_name}" for s in (self.old, self.new)
                             if isinstance(s, EndpointSlice) and s.service_name)
        return frozenset()

    @property
    def topology_changed(self) -> bool:
        """A Node change that alters one of :data:`TOPOLOGY_LABELS` (which forces a full sync)."""
        if self.kind != NODE:
            return False
        before = self.old.labels if isinstance(self.old, Node) else {}
        after = self.new.labels if isinstance(self.new, Node) else {}
        return any(before.get(label) != after.get(label) for label in TOPOLOGY_LABELS)

    @property
    def node_terminating(self) -> bool:
        """A Node change after which the node is gone, being deleted, or tainted for removal."""
        return self.kind == NODE and is_node_terminating(self.new if isinstance(self.new, Node) else None)


def is_node_terminating(node: Node | None) -> bool:
    """True for a deleted node (None), one with a deletionTimestamp, or one the cluster autoscaler
    tainted ToBeDeletedByClusterAutoscaler."""
    return node is None or node.being_deleted or TO_BE_DELETED_TAINT in node.taints
