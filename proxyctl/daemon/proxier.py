"""The iptables proxier of ``proxyctl run``: one ``sync(full)`` per scheduled sync.

A full sync is kube-proxy's: ensure canaries and jump rules, restore the whole payload, delete
stale chains (``dataplane.sync.full_sync``). A partial sync writes only the difference between the
payload last applied and the one wanted now (``delta.delta_payload``), so a one-endpoint change
touches a few rules whatever the cluster's size. The state it leaves is the state a full sync
leaves (tests compare ``iptables-save`` after both). A failure forgets what was applied, so the
next sync is full, as kube-proxy does.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from proxyctl.backends.iptables import compile_ruleset, options_for
from proxyctl.backends.iptables.fragments import FragmentCache
from proxyctl.backends.iptables.names import ChainNames
from proxyctl.brain.build import ViewCache, build_views
from proxyctl.brain.serviceport import ServicePortView
from proxyctl.cluster.objects import ClusterState, Node
from proxyctl.dataplane.converge import converge
from proxyctl.dataplane.iptables import Iptables
from proxyctl.dataplane.sync import full_sync, read_table
from proxyctl.errors import KernelError
from proxyctl.node.facts import NodeFacts
from proxyctl.rules.iptables.delta import delta_payload
from proxyctl.rules.iptables.model import Ruleset

log = logging.getLogger("proxyctl.proxier")


@dataclasses.dataclass
class SyncStats:
    full: bool
    seconds: float
    families: dict[str, int]  # family → rules written (full) or delta lines (partial)
    views: dict[str, list[ServicePortView]]


class IptablesProxier:
    def __init__(self, *, config, facts: NodeFacts, ipt: Iptables, families: tuple[str, ...],
                 snapshot: Callable[[], ClusterState], node: Callable[[], Node | None] = lambda: None,
                 prefix: str = "KUBE-", clock: Callable[[], float] = time.monotonic,
                 on_synced: Callable[[SyncStats], None] | None = None,
                 on_failed: Callable[[str, bool, Exception], None] | None = None):
        self.config = config
        self.facts = facts
        self.ipt = ipt
        self.families = families
        self.snapshot = snapshot
        self.node = node
        self.names = ChainNames(prefix)
        self.clock = clock
        self.on_synced = on_synced
        self.on_failed = on_failed
        self.applied: dict[str, Ruleset] = {}
        self.last_views: dict[str, list[ServicePortView]] = {}
        # Per family: unchanged Services keep their views and their compiled rules between syncs.
        self._view_caches = {f: ViewCache() for f in families}
        self._fragment_caches = {f: FragmentCache() for f in families}

    def desired(self, family: str, state: ClusterState, node: Node | None) -> tuple[Ruleset, list[ServicePortView]]:
        views = build_views(state, family, self.facts.name, node.zone if node else "",
                            cache=self._view_caches.get(family))
        opts = options_for(self.config, self.facts, family, node, prefix=self.names.prefix)
        return compile_ruleset(views, opts, cache=self._fragment_caches.get(family)), views

    def sync(self, full: bool) -> bool:
        start = self.clock()
        state, node = self.snapshot(), self.node()
        written: dict[str, int] = {}
        views_by_family = {}
        for family in self.families:
            payload, views = self.desired(family, state, node)
            views_by_family[family] = views
            partial = not full and family in self.applied
            try:
                if partial:
                    delta = delta_payload(self.applied[family], payload, deletable=self.names.service_prefixes)
                    if delta is not None:
                        self.ipt.restore(family, delta, noflush=True, counters=False)
                    written[family] = 0 if delta is None else delta.count("\n")
                elif family not in self.applied:
                    # after a (re)start: read what the node has and write only the difference
                    written[family] = converge(self.ipt, payload, names=self.names)
                else:
                    result = full_sync(self.ipt, payload, names=self.names)
                    written[family] = sum(result.rules.values())
            except KernelError as e:
                self.applied.pop(family, None)  # unknown state: the next sync is full
                log.error("sync failed family=%s partial=%s error=%s", family, partial, e)
                if self.on_failed is not None:
                    self.on_failed(family, partial, e)
                return False
            self.applied[family] = payload
        self.last_views = views_by_family
        if self.on_synced is not None:
            self.on_synced(SyncStats(full, self.clock() - start, written, views_by_family))
        return True

    def canary_ok(self) -> bool:
        """Whether kube-proxy's canary chain is still in every family's mangle table."""
        for family in self.families:
            try:
                if self.names.canary not in read_table(self.ipt, family, "mangle").chains:
                    log.info("canary chain gone: tables were flushed family=%s", family)
                    return False
            except KernelError:
                return False
        return True
