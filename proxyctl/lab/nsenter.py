"""Running Python code inside a lab namespace: a thread that has entered it.

``setns(2)`` changes the network namespace of the calling thread only, and a socket belongs to
the namespace of the thread that created it. So probes, sysctl writes and socket servers for a
namespace run on threads that entered it first; the caller's own thread never moves.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from proxyctl.errors import KernelError
from proxyctl.node.netns import call_with_deadline, enter_netns_in_this_thread

T = TypeVar("T")


def enter(netns: str) -> None:
    """Move the calling thread into ``netns`` (KernelError when there is no such namespace)."""
    enter_netns_in_this_thread(netns)


def run_in(netns: str, fn: Callable[[], T], *, timeout: float = 30.0, what: str = "") -> T:
    """``fn()`` on a fresh thread inside ``netns``; its result, its exception, or KernelError at the deadline."""

    def inside() -> T:
        enter(netns)
        return fn()

    return call_with_deadline(inside, timeout=timeout, what=what or f"work in {netns}")


def pool(netns: str, workers: int) -> ThreadPoolExecutor:
    """Threads that all live in ``netns``: submit work that opens sockets there."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"netns-{netns}", initializer=enter,
                              initargs=(netns,))


def write_sysctl(netns: str, key: str, value: str | int, *, timeout: float = 10.0) -> None:
    """``sysctl -w key=value`` inside ``netns`` (``key`` dotted, as sysctl names it)."""
    path = "/proc/sys/" + key.replace(".", "/")

    def write() -> None:
        with open(path, "w", encoding="ascii") as f:
            f.write(f"{value}\n")

    try:
        run_in(netns, write, timeout=timeout, what=f"setting {key}")
    except OSError as e:
        raise KernelError(f"cannot set {key}={value}: {e.strerror}", argv=("sysctl", f"{key}={value}"),
                          netns=netns) from e


