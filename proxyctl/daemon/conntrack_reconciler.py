"""After each sync, delete UDP conntrack entries that still send a Service's clients to a former
endpoint (kube-proxy v1.36's reconciler); which entries are stale is ``diff.conntrack``'s rule."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from proxyctl.brain.serviceport import ServicePortView
from proxyctl.dataplane.conntrack import delete_entries, list_entries
from proxyctl.diff.conntrack import stale_entries
from proxyctl.errors import KernelError

log = logging.getLogger("proxyctl.conntrack")


def reconcile(views: dict[str, list[ServicePortView]], is_local: Callable[[str], bool], *, netns: str | None,
              on_done: Callable[[str, float, int], None] | None = None) -> int:
    """Delete stale UDP entries of every family; returns how many were deleted."""
    start = time.monotonic()
    try:
        entries = list_entries(netns=netns, protocol="udp")
    except KernelError as e:
        log.warning("conntrack entries not listed, nothing cleaned error=%s", e)
        return 0
    total = 0
    for family, fam_views in views.items():
        stale = [e for _, e in stale_entries([x for x in entries if x.family == family], fam_views, is_local)]
        deleted = delete_entries(stale, netns=netns) if stale else 0
        for e in stale:
            log.info("deleted stale conntrack entry protocol=udp dst=%s:%s endpoint=%s", e.orig_dst, e.orig_dport,
                     e.dnat_target)
        total += deleted
        if on_done is not None:
            on_done(family, time.monotonic() - start, deleted)
    return total
