"""What the node's iptables and conntrack offer: ``--random-fully``, nfacct objects, tcp_be_liberal.

kube-proxy decides ``--random-fully`` from the version ``iptables --version`` prints (supported
from 1.6.2 on), not by trying the flag; we do the same. The version is the binary's, so it does
not depend on the namespace. nfacct objects and conntrack sysctls are per namespace.
"""

from __future__ import annotations

import re

from proxyctl.errors import KernelError
from proxyctl.node.netns import read_proc_file, run_tool

RANDOM_FULLY_MIN_VERSION = (1, 6, 2)
TCP_BE_LIBERAL_SYSCTL = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"

_VERSION = re.compile(r"v(\d+)\.(\d+)(?:\.(\d+))?")
_NFACCT_LINE = re.compile(r"^\{.*\}\s*=\s*(\S+?);\s*$")


def iptables_supports_random_fully(*, timeout: float = 10.0) -> bool:
    argv = ("iptables", "--version")
    out = run_tool(argv, netns=None, timeout=timeout)
    version = parse_iptables_version(out)
    if version is None:
        raise KernelError(f"cannot find a version in the output of `iptables --version`: {out.strip()!r}",
                          argv=argv)
    return version >= RANDOM_FULLY_MIN_VERSION


def parse_iptables_version(text: str) -> tuple[int, int, int] | None:
    """``"iptables v1.8.9 (nf_tables)"`` -> ``(1, 8, 9)``; None when no version is printed."""
    m = _VERSION.search(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def nfacct_objects(*, netns: str | None, timeout: float = 10.0) -> tuple[str, ...]:
    """Names of the nfacct objects in ``netns``, as ``nfacct list`` prints them."""
    return parse_nfacct_list(run_tool(("nfacct", "list"), netns=netns, timeout=timeout))


def parse_nfacct_list(text: str) -> tuple[str, ...]:
    """Each ``{ pkts = ..., bytes = ... } = NAME;`` line gives one name, in listing order."""
    names = []
    for line in text.splitlines():
        m = _NFACCT_LINE.match(line.strip())
        if m:
            names.append(m.group(1))
    return tuple(names)


def tcp_be_liberal(*, netns: str | None, timeout: float = 10.0) -> bool:
    """net.netfilter.nf_conntrack_tcp_be_liberal in ``netns``; False when conntrack has no such sysctl."""
    text = read_proc_file(TCP_BE_LIBERAL_SYSCTL, netns=netns, timeout=timeout)
    if text is None:
        return False
    value = text.strip()
    if not value.isdigit():
        raise KernelError(f"{TCP_BE_LIBERAL_SYSCTL}: unexpected value {value!r}",
                          argv=("read", TCP_BE_LIBERAL_SYSCTL), netns=netns)
    return int(value) != 0
