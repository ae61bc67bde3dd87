"""Running a tool, a file read or a netlink call inside a named network namespace.

Discovery reads a namespace three ways: netlink sockets opened in it (pyroute2 does that for us),
tools run through ``ip netns exec``, and ``/proc/sys/net`` files, which show the namespace of the
thread that opens them. Every entry point takes a deadline in seconds and turns a failure into
a KernelError that carries the argv, the namespace and the stderr, chained with ``from``.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import netns as pyroute2_netns

from proxyctl.errors import KernelError

NETNS_RUN_DIR = "/var/run/netns"  # where `ip netns add` and pyroute2 bind-mount named namespaces

T = TypeVar("T")


def netns_path(name: str) -> str:
    """The bind mount of a named namespace; KernelError when there is no such namespace."""
    if not name or "/" in name or name in (".", ".."):
        raise KernelError(f"{name!r} is not a network namespace name", netns=name)
    path = os.path.join(NETNS_RUN_DIR, name)
    if not os.path.exists(path):
        raise KernelError(f"network namespace {name!r} does not exist (see `ip netns list`)", netns=name)
    return path


def run_tool(argv: tuple[str, ...], *, netns: str | None, timeout: float, input: str | None = None) -> str:
    """Run ``argv`` (through ``ip netns exec`` when ``netns`` is set) and return its stdout.

    ``input`` is written to the tool's stdin (an ``iptables-restore`` payload)."""
    if netns is not None:
        netns_path(netns)
        argv = ("ip", "netns", "exec", netns, *argv)
    try:
        done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as e:
        raise KernelError(f"{argv[0]}: command not found", argv=argv, netns=netns) from e
    except subprocess.TimeoutExpired as e:
        raise KernelError(f"{' '.join(argv)}: no answer within {timeout:g}s", argv=argv, netns=netns,
                          stderr=_text(e.stderr)) from e
    except OSError as e:
        raise KernelError(f"{argv[0]}: {e.strerror}", argv=argv, netns=netns) from e
    if done.returncode != 0:
        stderr = done.stderr.strip()
        raise KernelError(f"{' '.join(argv)} failed (exit {done.returncode}): {stderr or 'no error text'}",
                          argv=argv, netns=netns, returncode=done.returncode, stderr=stderr)
    return done.stdout


def read_proc_file(path: str, *, netns: str | None, timeout: float) -> str | None:
    """The text of a ``/proc/sys/net`` file as seen from ``netns``; None when it does not exist."""

    def read() -> str | None:
        if netns is not None:
            enter_netns_in_this_thread(netns)
        try:
            with open(path, encoding="ascii") as f:
                return f.read()
        except FileNotFoundError:
            return None

    argv = ("read", path)
    try:
        return call_with_deadline(read, timeout=timeout, what=f"reading {path}")
    except KernelError as e:
        if e.netns is not None or e.argv:  # already located (an unknown namespace)
            raise
        raise KernelError(str(e), argv=argv, netns=netns) from e
    except OSError as e:
        raise KernelError(f"cannot read {path}: {e.strerror}", argv=argv, netns=netns,
                          stderr=str(e)) from e


def call_with_deadline(fn: Callable[[], T], *, timeout: float, what: str) -> T:
    """Call ``fn`` in a fresh thread; KernelError if it has not returned after ``timeout`` seconds.

    The thread is private to the call, so a namespace it enters never leaks into the caller. A
    call that times out is abandoned (a daemon thread), not interrupted.
    """
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as e:  # handed to the caller below
            failure.append(e)

    worker = threading.Thread(target=target, name=f"proxyctl: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise KernelError(f"{what}: no answer within {timeout:g}s")
    if failure:
        raise failure[0]
    return result[0]


def enter_netns_in_this_thread(name: str) -> None:
    path = netns_path(name)
    fd = os.open(path, os.O_RDONLY)
    try:
        pyroute2_netns.setns(fd)  # setns(2) on the calling thread only
    finally:
        os.close(fd)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace").strip()
    return data.strip()
