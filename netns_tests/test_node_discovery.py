"""Discovery against real namespaces: a node and its upstream peer joined by a veth pair.

    node namespace                                   peer namespace
    lo    127.0.0.1/8 ::1/128 192.0.2.55/24          lo
    eth0  10.20.30.2/24  10.20.31.2/24   <-veth->    up0  10.20.31.1/24
          2001:db8:20::2/64 2001:db8:21::2/64             2001:db8:21::1/64
    default via 10.20.31.1 and via 2001:db8:21::1    (no default route)
    nfacct: ct_state_invalid_dropped_pkts, localhost_nps_accepted_pkts
    nf_conntrack_tcp_be_liberal = 1

The default routes point at the *second* subnet of each family, so the node IPs prove that the
route decides, not the order of the addresses.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
from pyroute2 import IPRoute

from proxyctl.errors import KernelError
from proxyctl.node.discover import discover_node_facts
from proxyctl.node.facts import IPV4, IPV6
from proxyctl.node.load import dump_node_facts, parse_node_facts

IFA_F_NODAD = 0x02  # skip duplicate address detection: the address is usable at once


def add_addresses(ipr: IPRoute, ifname: str, *cidrs: str) -> None:
    index = ipr.link_lookup(ifname=ifname)[0]
    for cidr in cidrs:
        address, prefix = cidr.split("/")
        flags = IFA_F_NODAD if ":" in address else 0
        ipr.addr("add", index=index, address=address, prefixlen=int(prefix), flags=flags)


@pytest.fixture
def topology(netns_factory, netns_exec):
    node, peer = netns_factory("node"), netns_factory("peer")
    with IPRoute(netns=node, flags=0) as ipr:
        ipr.link("add", ifname="eth0", kind="veth", peer={"ifname": "up0", "net_ns_fd": peer})
        for name in ("lo", "eth0"):
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
        add_addresses(ipr, "lo", "192.0.2.55/24")
        add_addresses(ipr, "eth0", "10.20.30.2/24", "10.20.31.2/24", "2001:db8:20::2/64", "2001:db8:21::2/64")
    with IPRoute(netns=peer, flags=0) as ipr:
        for name in ("lo", "up0"):
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
        add_addresses(ipr, "up0", "10.20.31.1/24", "2001:db8:21::1/64")
    with IPRoute(netns=node, flags=0) as ipr:
        ipr.route("add", dst="0.0.0.0/0", gateway="10.20.31.1")
        ipr.route("add", dst="::/0", gateway="2001:db8:21::1", family=socket.AF_INET6)
    netns_exec(node, "nfacct", "add", "ct_state_invalid_dropped_pkts")
    netns_exec(node, "nfacct", "add", "localhost_nps_accepted_pkts")
    netns_exec(node, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_be_liberal=1")
    return node, peer


def iproute2_addresses(netns: str | None) -> dict[str, tuple[str, ...]]:
    """What `ip -j addr` reports, as an independent reading to compare with."""
    argv = ["ip", "-j", "addr", "show"] if netns is None else ["ip", "-n", netns, "-j", "addr", "show"]
    links = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    out = {}
    for link in sorted(links, key=lambda link: link["ifindex"]):
        infos = sorted(link.get("addr_info", []), key=lambda a: a["family"] != "inet")  # IPv4 first
        if infos:
            out[link["ifname"]] = tuple(f"{a['local']}/{a['prefixlen']}" for a in infos)
    return out


def expected_random_fully() -> bool:
    out = subprocess.run(["iptables", "--version"], capture_output=True, text=True, check=True).stdout
    major, minor, patch = (int(x) for x in re.search(r"v(\d+)\.(\d+)\.(\d+)", out).groups())
    return (major, minor, patch) >= (1, 6, 2)


def test_discovery_in_the_node_namespace(topology):
    node, _ = topology
    facts = discover_node_facts(node, timeout=20)

    assert facts.name == socket.gethostname().strip().lower()
    assert facts.node_ips == {IPV4: "10.20.31.2", IPV6: "2001:db8:21::2"}
    assert list(facts.addresses) == ["lo", "eth0"]
    assert facts.addresses["lo"] == ("127.0.0.1/8", "192.0.2.55/24", "::1/128")
    eth0 = facts.addresses["eth0"]
    assert eth0[:2] == ("10.20.30.2/24", "10.20.31.2/24")
    assert set(eth0[2:4]) | set(eth0[4:]) >= {"2001:db8:20::2/64", "2001:db8:21::2/64"}
    assert [a for a in eth0 if a.startswith("fe80:")] and all(a.endswith("/64") for a in eth0[2:])
    assert facts.addresses == iproute2_addresses(node)
    assert facts.is_local("192.0.2.99") and facts.is_local("127.1.2.3")  # lo makes its prefixes local
    assert facts.is_local("10.20.30.2") and not facts.is_local("10.20.30.3")
    assert facts.nfacct == ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")
    assert facts.tcp_be_liberal is True
    assert facts.random_fully is expected_random_fully() is True  # this machine has iptables >= 1.6.2


def test_discovery_in_a_namespace_without_default_route(topology):
    _, peer = topology
    facts = discover_node_facts(peer, timeout=20)
    assert facts.node_ips == {IPV4: "10.20.31.1", IPV6: "2001:db8:21::1"}  # first global, not on lo
    assert facts.addresses == iproute2_addresses(peer)
    assert facts.addresses["up0"][0] == "10.20.31.1/24"
    assert facts.nfacct == ()
    assert facts.tcp_be_liberal is False


def test_an_empty_namespace(netns):
    facts = discover_node_facts(netns, timeout=20)
    assert facts.node_ips == {} and facts.addresses == {} and facts.nfacct == ()
    assert facts.tcp_be_liberal is False


def test_discovered_facts_can_be_saved_and_reused(topology):
    node, _ = topology
    facts = discover_node_facts(node, timeout=20)
    assert parse_node_facts(dump_node_facts(facts)) == facts


def test_the_namespace_we_run_in_is_only_read():
    before = iproute2_addresses(None)
    facts = discover_node_facts(timeout=20)
    assert facts.addresses == before == iproute2_addresses(None)
    for family, ip in facts.node_ips.items():
        assert ip in facts.local_ips(family)


def test_unknown_namespace_is_a_kernel_error():
    with pytest.raises(KernelError) as info:
        discover_node_facts("pxctl-test-does-not-exist")
    assert info.value.netns == "pxctl-test-does-not-exist"
    assert "does not exist" in str(info.value)


def test_deadline(netns):
    with pytest.raises(KernelError, match="no answer within|took longer than") as info:
        discover_node_facts(netns, timeout=1e-6)
    assert info.value.netns == netns
