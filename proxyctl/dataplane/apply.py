"""One full sync of a node from gathered inputs: what ``proxyctl apply`` and the lab do.

Order: make kube-proxy's nfacct counters (when nfacct works) and compile with the counters that
exist, so no rule names a missing one; then for IPv4, then IPv6, ``sync.full_sync``. A failure
stops there (RestoreError says which tables of that family were applied; later families were
not synced), and the next sync must be a full one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from proxyctl.backends.iptables.names import ChainNames
from proxyctl.compiler import FAMILIES, compile_iptables
from proxyctl.dataplane.iptables import Iptables
from proxyctl.dataplane.nfacct import NfacctState
from proxyctl.dataplane.sync import SyncResult, full_sync
from proxyctl.inputs import Inputs


@dataclass(frozen=True)
class ApplyResult:
    nfacct: NfacctState
    syncs: tuple[SyncResult, ...]


def with_nfacct(inputs: Inputs, nfacct: NfacctState) -> Inputs:
    """``inputs`` whose node facts list exactly the nfacct counters that exist on the node."""
    facts = dataclasses.replace(inputs.facts, nfacct=nfacct.existing)
    return dataclasses.replace(inputs, facts=facts)


def apply_full_sync(inputs: Inputs, ipt: Iptables, nfacct: NfacctState, *, families: tuple[str, ...] = FAMILIES,
                    prefix: str = "KUBE-", on_synced: Callable[[SyncResult], None] | None = None) -> ApplyResult:
    """Compile and fully sync each family; ``nfacct`` is the result of ``nfacct.ensure_counters``."""
    inputs = with_nfacct(inputs, nfacct)
    names = ChainNames(prefix)
    results = []
    for family in families:
        result = full_sync(ipt, compile_iptables(inputs, family, prefix=prefix), names=names)
        results.append(result)
        if on_synced is not None:
            on_synced(result)
    return ApplyResult(nfacct, tuple(results))
