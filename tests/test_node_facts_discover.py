"""The pure parts of discovery: primary IP choice, tool output parsing, error translation.

The real thing, in network namespaces, is netns_tests/test_node_discovery.py.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from proxyctl.errors import KernelError
from proxyctl.node import capabilities, netns
from proxyctl.node.capabilities import parse_iptables_version, parse_nfacct_list
from proxyctl.node.discover import addresses_by_interface
from proxyctl.node.facts import IPV4, IPV6
from proxyctl.node.links import IFA_F_DADFAILED, DefaultRoute, InterfaceAddress
from proxyctl.node.primary import primary_ips

HOST, LINK, GLOBAL = 254, 253, 0
LINKS = {1: "lo", 2: "eth0", 3: "eth1"}


def addr(ifindex: int, text: str, scope: int = GLOBAL, flags: int = 0) -> InterfaceAddress:
    return InterfaceAddress(ifindex, LINKS[ifindex], ipaddress.ip_interface(text), scope, flags)


LO = [addr(1, "127.0.0.1/8", HOST), addr(1, "::1/128", HOST)]
ETH0 = [addr(2, "10.0.0.2/24"), addr(2, "10.0.1.2/24"), addr(2, "fd00::2/64"), addr(2, "fd00:1::2/64"),
        addr(2, "fe80::2/64", LINK)]
ETH1 = [addr(3, "172.16.0.3/16"), addr(3, "2001:db8::3/64")]

PRIMARY_CASES = [
    # (case, addresses, default routes, expected)
    ("no default route: first global address off lo", LO + ETH0 + ETH1, [],
     {IPV4: "10.0.0.2", IPV6: "fd00::2"}),
    ("only lo: no node IP", LO, [], {}),
    ("a global address on lo does not count", [addr(1, "192.0.2.1/32"), *LO], [], {}),
    ("default route's src wins", LO + ETH0 + ETH1,
     [DefaultRoute(4, 2, "10.0.0.1", "10.0.1.2"), DefaultRoute(6, 2, "fd00::1", "fd00:1::2")],
     {IPV4: "10.0.1.2", IPV6: "fd00:1::2"}),
    ("no src: the address whose subnet holds the gateway", LO + ETH0 + ETH1,
     [DefaultRoute(4, 2, "10.0.1.1", None), DefaultRoute(6, 2, "fd00:1::1", None)],
     {IPV4: "10.0.1.2", IPV6: "fd00:1::2"}),
    ("default route on the second interface", LO + ETH0 + ETH1,
     [DefaultRoute(4, 3, "172.16.0.1", None), DefaultRoute(6, 3, "2001:db8::1", None)],
     {IPV4: "172.16.0.3", IPV6: "2001:db8::3"}),
    ("link-local gateway: first global address of the interface", LO + ETH0 + ETH1,
     [DefaultRoute(6, 3, "fe80::1", None)], {IPV4: "10.0.0.2", IPV6: "2001:db8::3"}),
    ("device route without gateway", LO + ETH0 + ETH1, [DefaultRoute(4, 3, None, None)],
     {IPV4: "172.16.0.3", IPV6: "fd00::2"}),
    ("lowest metric wins", LO + ETH0 + ETH1,
     [DefaultRoute(4, 2, "10.0.0.1", None, priority=200), DefaultRoute(4, 3, "172.16.0.1", None, priority=100)],
     {IPV4: "172.16.0.3", IPV6: "fd00::2"}),
    ("route through an interface without a global address is skipped", LO + ETH0 + ETH1,
     [DefaultRoute(4, 9, "10.0.0.1", None), DefaultRoute(4, 3, "172.16.0.1", None, priority=5)],
     {IPV4: "172.16.0.3", IPV6: "fd00::2"}),
    ("DAD-failed addresses are not candidates", [addr(2, "fd00::2/64", flags=IFA_F_DADFAILED), *ETH1], [],
     {IPV4: "172.16.0.3", IPV6: "2001:db8::3"}),
]


@pytest.mark.parametrize("addresses, routes, expected", [c[1:] for c in PRIMARY_CASES],
                         ids=[c[0] for c in PRIMARY_CASES])
def test_primary_ips(addresses, routes, expected):
    assert primary_ips(addresses, routes) == expected


def test_addresses_by_interface_keeps_prefixes_and_orders_ipv4_first():
    dump = [LO[0], ETH0[0], ETH0[1], LO[1], ETH0[2], ETH0[4], ETH0[3]]  # kernel: AF_INET dump, then AF_INET6
    assert addresses_by_interface(tuple(dump)) == {
        "lo": ("127.0.0.1/8", "::1/128"),
        "eth0": ("10.0.0.2/24", "10.0.1.2/24", "fd00::2/64", "fe80::2/64", "fd00:1::2/64"),
    }


@pytest.mark.parametrize("text, version", [
    ("iptables v1.8.9 (nf_tables)\n", (1, 8, 9)),
    ("iptables v1.8.7 (legacy)\n", (1, 8, 7)),
    ("iptables v1.6.2\n", (1, 6, 2)),
    ("iptables v1.4\n", (1, 4, 0)),
    ("iptables: command not found\n", None),
])
def test_parse_iptables_version(text, version):
    assert parse_iptables_version(text) == version


@pytest.mark.parametrize("output, supported", [
    ("iptables v1.6.1\n", False), ("iptables v1.6.2\n", True), ("iptables v1.8.11 (nf_tables)\n", True),
    ("iptables v1.10.0\n", True),
])
def test_random_fully_follows_the_version(monkeypatch, output, supported):
    monkeypatch.setattr(capabilities, "run_tool", lambda argv, netns, timeout: output)
    assert capabilities.iptables_supports_random_fully() is supported


def test_no_version_in_output_is_a_kernel_error(monkeypatch):
    monkeypatch.setattr(capabilities, "run_tool", lambda argv, netns, timeout: "huh\n")
    with pytest.raises(KernelError) as info:
        capabilities.iptables_supports_random_fully()
    assert info.value.argv == ("iptables", "--version")


def test_parse_nfacct_list():
    text = (
        "{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = ct_state_invalid_dropped_pkts;\n"
        "{ pkts = 00000000000000000012, bytes = 00000000000000001234 } = localhost_nps_accepted_pkts;\n"
    )
    assert parse_nfacct_list(text) == ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")
    assert parse_nfacct_list("") == ()


@pytest.mark.parametrize("value, expected", [("1\n", True), ("0\n", False), ("2\n", True), (None, False)])
def test_tcp_be_liberal(monkeypatch, value, expected):
    monkeypatch.setattr(capabilities, "read_proc_file", lambda path, netns, timeout: value)
    assert capabilities.tcp_be_liberal(netns=None) is expected


def test_tcp_be_liberal_garbage_is_a_kernel_error(monkeypatch):
    monkeypatch.setattr(capabilities, "read_proc_file", lambda path, netns, timeout: "yes\n")
    with pytest.raises(KernelError, match="unexpected value 'yes'"):
        capabilities.tcp_be_liberal(netns="ns1")


# --- error translation (runs harmless commands only) -------------------------------------------

def test_failing_tool_gives_argv_exit_status_and_stderr():
    argv = (sys.executable, "-c", "import sys; sys.stderr.write('nope\\n'); sys.exit(3)")
    with pytest.raises(KernelError) as info:
        netns.run_tool(argv, netns=None, timeout=10)
    e = info.value
    assert (e.argv, e.netns, e.returncode, e.stderr) == (argv, None, 3, "nope")
    assert e.__cause__ is None  # a non-zero exit is our own finding, not a foreign error
    assert "failed (exit 3): nope" in str(e)


def test_missing_tool():
    with pytest.raises(KernelError, match="no-such-tool-pxctl: command not found") as info:
        netns.run_tool(("no-such-tool-pxctl", "list"), netns=None, timeout=10)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_tool_timeout():
    argv = (sys.executable, "-c", "import time; time.sleep(5)")
    with pytest.raises(KernelError, match="no answer within 0.2s") as info:
        netns.run_tool(argv, netns=None, timeout=0.2)
    assert isinstance(info.value.__cause__, subprocess.TimeoutExpired)


def test_unknown_namespace(monkeypatch, tmp_path):
    monkeypatch.setattr(netns, "NETNS_RUN_DIR", str(tmp_path))
    with pytest.raises(KernelError) as info:
        netns.run_tool(("nfacct", "list"), netns="pxctl-test-absent", timeout=1)
    assert info.value.netns == "pxctl-test-absent"
    assert str(info.value) == "network namespace 'pxctl-test-absent' does not exist (see `ip netns list`)"


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_bad_namespace_names(name):
    with pytest.raises(KernelError, match="is not a network namespace name"):
        netns.netns_path(name)


def test_call_with_deadline():
    assert netns.call_with_deadline(lambda: 7, timeout=1, what="x") == 7
    with pytest.raises(ZeroDivisionError):
        netns.call_with_deadline(lambda: 1 / 0, timeout=1, what="x")
    with pytest.raises(KernelError, match="^slow: no answer within 0.1s$"):
        netns.call_with_deadline(lambda: __import__("time").sleep(2), timeout=0.1, what="slow")


def test_read_proc_file_in_this_namespace(tmp_path):
    path = tmp_path / "value"
    path.write_text("1\n")
    assert netns.read_proc_file(str(path), netns=None, timeout=5) == "1\n"
    assert netns.read_proc_file(str(tmp_path / "absent"), netns=None, timeout=5) is None


def test_read_proc_file_deadline_names_the_file(monkeypatch):
    def never(fn, *, timeout, what):
        raise KernelError(f"{what}: no answer within {timeout:g}s")

    monkeypatch.setattr(netns, "call_with_deadline", never)
    with pytest.raises(KernelError) as info:
        netns.read_proc_file("/proc/sys/x", netns="ns1", timeout=0.5)
    assert (info.value.argv, info.value.netns) == (("read", "/proc/sys/x"), "ns1")
    assert isinstance(info.value.__cause__, KernelError)


def test_empty_host_name_is_a_kernel_error(monkeypatch):
    from proxyctl.node import hostname

    monkeypatch.setattr(hostname.socket, "gethostname", lambda: "  ")
    with pytest.raises(KernelError, match="the host name is empty"):
        hostname.host_name()
    monkeypatch.setattr(hostname.socket, "gethostname", lambda: " Node-1\n")
    assert hostname.host_name() == "node-1"
