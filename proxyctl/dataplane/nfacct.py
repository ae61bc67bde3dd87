"""kube-proxy's nfacct counters: created when the kernel supports nfacct, then named by rules.

kube-proxy (1.29+) creates ``ct_state_invalid_dropped_pkts`` and ``localhost_nps_accepted_pkts``
at start when nfacct works, and its rules name a counter (``-m nfacct --nfacct-name``) only when
the counter exists: a rule naming a missing counter fails to load. So apply creates them first
and compiles with the counters that exist afterwards (``NfacctState.existing``).

"Supported" means ``nfacct list`` answers in the namespace; a kernel without nfacct (or a
machine without the tool) gives ``supported=False`` and no counters, so no rule names one.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyctl.backends.iptables.options import CT_INVALID_COUNTER, LOCALHOST_NODEPORT_COUNTER
from proxyctl.dataplane.runner import DEFAULT_RUNNER, Runner
from proxyctl.errors import KernelError
from proxyctl.node.capabilities import parse_nfacct_list

KUBE_PROXY_COUNTERS = (CT_INVALID_COUNTER, LOCALHOST_NODEPORT_COUNTER)


@dataclass(frozen=True)
class NfacctState:
    supported: bool
    existing: tuple[str, ...] = ()  # every counter in the namespace after ensuring
    created: tuple[str, ...] = ()  # the ones this call added
    reason: str = ""  # why nfacct counts as unsupported


def ensure_counters(names: tuple[str, ...] = KUBE_PROXY_COUNTERS, *, netns: str | None, timeout: float = 10.0,
                    runner: Runner = DEFAULT_RUNNER) -> NfacctState:
    """Create the counters of ``names`` that do not exist yet; KernelError if ``nfacct add`` fails."""
    try:
        before = parse_nfacct_list(runner(("nfacct", "list"), netns=netns, timeout=timeout))
    except KernelError as e:
        return NfacctState(False, reason=e.stderr or str(e))
    created = []
    for name in names:
        if name not in before:
            runner(("nfacct", "add", name), netns=netns, timeout=timeout)
            created.append(name)
    if not created:
        return NfacctState(True, before)
    after = parse_nfacct_list(runner(("nfacct", "list"), netns=netns, timeout=timeout))
    missing = [n for n in names if n not in after]
    if missing:
        raise KernelError(f"nfacct add succeeded but `nfacct list` does not show {', '.join(missing)}",
                          argv=("nfacct", "list"), netns=netns)
    return NfacctState(True, after, tuple(created))
