"""Node facts read from a live network namespace (this one, or a named one).

Addresses and routes come from rtnetlink (pyroute2), nfacct objects from ``nfacct list`` run in
the namespace, tcp_be_liberal from ``/proc/sys/net`` read in the namespace, ``--random-fully``
from ``iptables --version``. The whole discovery shares one deadline.
"""

from __future__ import annotations

import time

from proxyctl.errors import KernelError
from proxyctl.node.capabilities import iptables_supports_random_fully, nfacct_objects, tcp_be_liberal
from proxyctl.node.facts import NodeFacts
from proxyctl.node.hostname import host_name
from proxyctl.node.links import InterfaceAddress, read_netlink_view
from proxyctl.node.primary import primary_ips


def discover_node_facts(netns: str | None = None, *, timeout: float = 10.0) -> NodeFacts:
    """Everything NodeFacts holds, read from ``netns`` (None: the namespace we run in).

    Raises KernelError (argv, netns, stderr) when a netlink call or a tool fails or the
    deadline of ``timeout`` seconds passes.
    """
    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KernelError(f"node facts discovery took longer than {timeout:g}s", netns=netns)
        return remaining

    view = read_netlink_view(netns, timeout=left())
    return NodeFacts(
        name=host_name(),
        node_ips=primary_ips(view.addresses, view.default_routes),
        addresses=addresses_by_interface(view.addresses),
        random_fully=iptables_supports_random_fully(timeout=left()),
        nfacct=nfacct_objects(netns=netns, timeout=left()),
        tcp_be_liberal=tcp_be_liberal(netns=netns, timeout=left()),
    )


def addresses_by_interface(addresses: tuple[InterfaceAddress, ...]) -> dict[str, tuple[str, ...]]:
    """Interfaces by index (``lo`` first), each with its addresses in the kernel's order, IPv4 first."""
    by_index: dict[int, list[InterfaceAddress]] = {}
    for a in addresses:
        by_index.setdefault(a.ifindex, []).append(a)
    out = {}
    for index in sorted(by_index):
        entries = sorted(by_index[index], key=lambda a: a.interface.version)  # stable within a family
        out[entries[0].ifname] = tuple(str(a.interface) for a in entries)
    return out
