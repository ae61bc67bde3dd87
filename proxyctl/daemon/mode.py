"""Which proxy mode runs, and what the other modes left behind.

v1.36: "" means iptables; a mode the kernel cannot do is fatal ("can't use the IPVS proxier: ...").
``--mode-fallback`` gives the older kube-proxy behaviour our operators' configs were written for:
"" is iptables, or userspace when the kernel lacks what iptables mode needs; ipvs falls back to
iptables when IP_VS is missing. Only iptables mode is implemented by this daemon so far; the
others are refused with a message saying so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from proxyctl.errors import ProxyctlError

IMPLEMENTED = ("iptables",)


class ModeError(ProxyctlError):
    exit_code = 1


@dataclass(frozen=True)
class Kernel:
    """What the kernel can do for each mode."""

    iptables: bool
    ipvs: bool
    nftables: bool


def probe_kernel() -> Kernel:
    """Look, without changing anything: IPVS shows /proc/net/ip_vs once loaded (and there are no
    loadable modules here); iptables needs its tools; nftables needs nft."""
    from shutil import which

    return Kernel(iptables=bool(which("iptables-nft") or which("iptables-legacy")),
                  ipvs=os.path.exists("/proc/net/ip_vs"), nftables=bool(which("nft")))


def select_mode(configured: str, kernel: Kernel, *, fallback: bool = False) -> tuple[str, str]:
    """(mode, why) for the configured mode ("" | iptables | ipvs | nftables | userspace)."""
    mode = configured or "iptables"
    why = "configured" if configured else 'mode "" means iptables'
    if mode == "ipvs" and not kernel.ipvs:
        if not fallback:
            raise ModeError("can't use the IPVS proxier: the kernel has no IP_VS support (/proc/net/ip_vs is "
                            "missing); load ip_vs or use mode iptables (--mode-fallback falls back by itself)")
        mode, why = "iptables", "IPVS missing: falling back to iptables (--mode-fallback)"
    if configured == "" and fallback and not kernel.iptables:
        mode, why = "userspace", "iptables missing: falling back to userspace (--mode-fallback)"
    if mode not in IMPLEMENTED:
        raise ModeError(f"mode {mode!r} is not implemented by proxyctl run yet; use mode iptables")
    return mode, why
