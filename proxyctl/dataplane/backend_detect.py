"""Which iptables backend a node uses, decided as kubernetes-sigs/iptables-wrappers does.

kube-proxy's image runs ``iptables-wrapper``, which picks the backend the rest of the node (the
kubelet first of all) already writes with, so that both halves of the rules live in one place:

1. the kubelet (1.17+) creates ``KUBE-IPTABLES-HINT`` or ``KUBE-KUBELET-CANARY`` in mangle: if
   ``iptables-nft-save -t mangle`` (either family) shows one, nft;
2. else if the legacy tables show one, legacy. The wrapper reads legacy without ``-t`` because
   naming a table would load it into the kernel;
3. else the backend with more rules (``-`` lines) wins, nft on a tie: an empty node is nft.

A tool that fails counts as empty, as in the wrapper (``|| true``).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyctl.dataplane.iptables import Backend, tool
from proxyctl.dataplane.runner import DEFAULT_RUNNER, Runner
from proxyctl.errors import KernelError

KUBELET_HINT_CHAINS = ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY")
FAMILIES = ("IPv4", "IPv6")


@dataclass(frozen=True)
class Detection:
    backend: Backend
    reason: str


def detect_backend(*, netns: str | None, timeout: float = 10.0, runner: Runner = DEFAULT_RUNNER) -> Detection:
    def save(backend: Backend, table: str | None) -> str:
        text = []
        for family in FAMILIES:
            argv = (tool(backend, family, "save"),) + (("-t", table) if table else ())
            try:
                text.append(runner(argv, netns=netns, timeout=timeout))
            except KernelError:
                continue
        return "".join(text)

    nft_mangle = save(Backend.NFT, "mangle")
    hint = _hint(nft_mangle)
    if hint:
        return Detection(Backend.NFT, f"the kubelet's {hint} is in the nft mangle table")
    legacy = save(Backend.LEGACY, None)
    hint = _hint(legacy)
    if hint:
        return Detection(Backend.LEGACY, f"the kubelet's {hint} is in the legacy mangle table")
    legacy_rules = rule_count(legacy)
    nft_rules = rule_count(save(Backend.NFT, None))
    if legacy_rules > nft_rules:
        return Detection(Backend.LEGACY, f"no kubelet hint; legacy has more rules ({legacy_rules} > {nft_rules})")
    if legacy_rules == nft_rules == 0:
        return Detection(Backend.NFT, "no kubelet hint and no rules in either backend: nft")
    return Detection(Backend.NFT, f"no kubelet hint; nft has as many rules or more ({nft_rules} >= {legacy_rules})")


def _hint(save_text: str) -> str | None:
    """The first kubelet hint chain declared in a mangle section of ``save_text``."""
    table = None
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":") and table == "mangle":
            name = line[1:].split(" ", 1)[0]
            if name in KUBELET_HINT_CHAINS:
                return name
    return None


def rule_count(save_text: str) -> int:
    return sum(1 for line in save_text.splitlines() if line.startswith("-"))
