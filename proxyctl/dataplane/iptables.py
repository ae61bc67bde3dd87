"""The iptables seam: read tables with ``iptables-save``, write them with ``iptables-restore``.

``Iptables`` is what sync and cleanup need; ``ShellIptables`` runs the tools of one backend
(``iptables-nft-*`` or ``iptables-legacy-*``, ``ip6tables-*`` for IPv6) inside a network
namespace with a deadline; ``fake_iptables.FakeIptables`` is the in-memory stand-in for tests.

Restores wait for the xtables lock (``-w 5`` by default, as kube-proxy's utiliptables does): the
legacy backend serialises writers through ``/run/xtables.lock``, which is one file for every
namespace of the machine, so a long legacy restore in *any* namespace holds up the others; the
nft backend accepts the flag and needs no lock. kube-proxy also passes
``-W 100000``; iptables 1.8.9 ignores it with a deprecation warning, so we leave it out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from proxyctl.dataplane.errors import RestoreError
from proxyctl.dataplane.runner import DEFAULT_RUNNER, Runner
from proxyctl.errors import KernelError

LOCK_WAIT_SECONDS = 5
DEFAULT_TIMEOUT = 120.0  # one restore of a large payload on nft with --noflush takes minutes (KUBE-PROXY.md §10)


class Backend(StrEnum):
    NFT = "nft"
    LEGACY = "legacy"


def tool(backend: Backend | str, family: str, verb: str) -> str:
    """``iptables-nft-restore``, ``ip6tables-legacy-save``, ..."""
    base = "ip6tables" if family == "IPv6" else "iptables"
    return f"{base}-{Backend(backend).value}-{verb}"


class Iptables(Protocol):
    """One iptables backend in one network namespace."""

    backend: Backend
    netns: str | None

    def save(self, family: str, table: str | None = None) -> str:
        """``iptables-save [-t table]`` output; KernelError when the tool fails.

        On the legacy backend, naming a table that is not loaded yet loads it (empty); without
        a table only loaded tables are listed. On nft a missing table is listed empty, not made.
        """
        ...

    def restore(self, family: str, payload: str, *, noflush: bool = True, counters: bool = False) -> None:
        """Feed ``payload`` to ``iptables-restore``; RestoreError when it is rejected."""
        ...


class ShellIptables:
    """The real backend: runs the tools through ``runner`` (``ip netns exec`` when ``netns`` is set)."""

    def __init__(self, backend: Backend | str, *, netns: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 lock_wait: int = LOCK_WAIT_SECONDS, runner: Runner = DEFAULT_RUNNER):
        self.backend = Backend(backend)
        self.netns = netns
        self.timeout = timeout
        self.lock_wait = lock_wait
        self.runner = runner

    def save(self, family: str, table: str | None = None) -> str:
        argv = (tool(self.backend, family, "save"),) + (("-t", table) if table else ())
        return self.runner(argv, netns=self.netns, timeout=self.timeout)

    def restore(self, family: str, payload: str, *, noflush: bool = True, counters: bool = False) -> None:
        name = tool(self.backend, family, "restore")
        argv = (name,) + (("--noflush",) if noflush else ()) + (("--counters",) if counters else ()) + (
            "-w", str(self.lock_wait))
        try:
            # The deadline covers the wait for the lock and then the work.
            self.runner(argv, netns=self.netns, timeout=self.timeout + self.lock_wait, input=payload)
        except KernelError as e:
            raise RestoreError.from_failure(e, tool=name, payload=payload, family=family,
                                            backend=self.backend.value) from e

    def __repr__(self) -> str:
        return f"<ShellIptables {self.backend.value} netns={self.netns!r}>"
