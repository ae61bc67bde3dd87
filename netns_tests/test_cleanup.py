"""``proxyctl cleanup`` in fresh network namespaces: kube-proxy's leftovers of every mode go, on both
iptables backends and both families; the kubelet's chains and other software's rules, sets, tables
and links stay; a second run has nothing to do.

This kernel has no dummy links and no IPVS, so ``kube-ipvs0`` is a bridge here (cleanup deletes the
link whatever its kind) and IPVS virtual servers are not covered.
"""

from __future__ import annotations

import pytest

from netns_tests.test_apply import BACKENDS, FAMILIES, LOCK_WAIT, apply, iptables
from netns_tests.test_apply import run as run_cli
from proxyctl.dataplane.iptables import ShellIptables
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.rules.iptables.save import save_table_lines

# What the kubelet writes (1.36: the hint, its canaries, KUBE-FIREWALL; its localnet rule is IPv4
# only), and what some CNI writes.
KUBELET_AND_FOREIGN = """*mangle
:KUBE-IPTABLES-HINT - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
COMMIT
*filter
:KUBE-FIREWALL - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A INPUT -s {foreign_source} -j DROP
{localnet}COMMIT
*nat
:KUBE-KUBELET-CANARY - [0:0]
:CNI-FOO - [0:0]
-A POSTROUTING -s {pod_cidr} -j CNI-FOO
-A CNI-FOO -j MASQUERADE
COMMIT
"""
KUBELET_AND_FOREIGN_BY_FAMILY = {
    "IPv4": KUBELET_AND_FOREIGN.format(foreign_source="1.2.3.4/32", pod_cidr="10.88.0.0/16", localnet=(
        '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" '
        "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n")),
    "IPv6": KUBELET_AND_FOREIGN.format(foreign_source="2001:db8::1234/128", pod_cidr="fd00:88::/64", localnet=""),
}

# Leftovers of ipvs and userspace mode (chains, jumps, a rule naming an ipset), put in the nft backend;
# the legacy backend gets the kubelet's, other software's and an iptables-mode apply.
OTHER_MODES = """*filter
:KUBE-IPVS-FILTER - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
-A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
-A KUBE-IPVS-FILTER -m set --match-set {cluster_ip_set} dst,dst -j RETURN
COMMIT
*nat
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER
-A KUBE-LOAD-BALANCER -j RETURN
COMMIT
"""  # noqa: E501


def significant(netns_exec, ns: str, backend: str) -> dict[str, dict[str, list[str]]]:
    """Per family and table, the user chains and the rules (built-in chain declarations left out)."""
    out = {}
    for family, binary in FAMILIES:
        rs = parse_rules(netns_exec(ns, f"{binary}-{backend}-save"), family=family).ruleset
        out[family] = {name: lines for name, t in rs.tables.items()
                       if (lines := [x for x in save_table_lines(t, family)
                                     if x.startswith("-A") or (x.startswith(":") and x.split()[1] == "-")])}
    return out


def restore(ns: str, backend: str, family: str, text: str) -> None:
    ShellIptables(backend, netns=ns, timeout=30, lock_wait=int(LOCK_WAIT)).restore(family, text)


def run(capsys, *args: str):
    if args[0] == "cleanup":
        args = (*args, "--lock-wait", LOCK_WAIT)
    return run_cli(capsys, *args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cleanup_after_apply_leaves_only_the_kubelets_and_foreign_rules(capsys, netns, netns_exec, backend):
    for family, text in KUBELET_AND_FOREIGN_BY_FAMILY.items():
        restore(netns, backend, family, text)
    before = significant(netns_exec, netns, backend)
    apply(capsys, netns, backend)
    assert significant(netns_exec, netns, backend) != before
    code, out, err = run(capsys, "cleanup", "--netns", netns)
    assert (code, err) == (0, "")
    assert f"{backend} IPv4 nat: deleted 3 jump rule(s) and 36 chain(s)" in out.splitlines()
    assert significant(netns_exec, netns, backend) == before
    assert run(capsys, "cleanup", "--netns", netns) == (0, "nothing to clean up\n", "")


def test_cleanup_removes_every_modes_leftovers_and_nothing_else(capsys, netns, netns_exec):
    netns_exec(netns, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
    netns_exec(netns, "ipset", "create", "KUBE-6-CLUSTER-IP", "hash:ip,port", "family", "inet6")
    netns_exec(netns, "ipset", "create", "cni-other", "hash:ip")
    restore(netns, "nft", "IPv4", OTHER_MODES.format(cluster_ip_set="KUBE-CLUSTER-IP"))
    restore(netns, "nft", "IPv6", OTHER_MODES.format(cluster_ip_set="KUBE-6-CLUSTER-IP"))
    for family, text in KUBELET_AND_FOREIGN_BY_FAMILY.items():
        restore(netns, "legacy", family, text)
    kept_legacy = significant(netns_exec, netns, "legacy")
    apply(capsys, netns, "legacy")
    # nftables mode
    for family in ("ip", "ip6"):
        netns_exec(netns, "nft", "add", "table", family, "kube-proxy")
        netns_exec(netns, "nft", "add", "chain", family, "kube-proxy", "services")
    netns_exec(netns, "nft", "add", "table", "inet", "other")
    # ipvs mode's link (a bridge: this kernel has no dummy links) and a foreign link
    netns_exec(netns, "ip", "link", "add", "kube-ipvs0", "type", "bridge")
    netns_exec(netns, "ip", "addr", "add", "10.96.0.1/32", "dev", "kube-ipvs0")
    netns_exec(netns, "ip", "link", "add", "eth9", "type", "bridge")

    code, out, err = run(capsys, "cleanup", "--netns", netns)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    for line in ("nft IPv4 filter: deleted 3 jump rule(s) and 3 chain(s)",
                 "nft IPv4 nat: deleted 1 jump rule(s) and 2 chain(s)",
                 "nft IPv6 filter: deleted 3 jump rule(s) and 3 chain(s)",
                 "legacy IPv4 nat: deleted 3 jump rule(s) and 36 chain(s)",
                 "ipset: destroyed KUBE-CLUSTER-IP", "ipset: destroyed KUBE-6-CLUSTER-IP",
                 "nftables: deleted table ip kube-proxy", "nftables: deleted table ip6 kube-proxy",
                 "link: deleted kube-ipvs0 and its addresses 10.96.0.1/32"):
        assert line in lines
    assert significant(netns_exec, netns, "nft") == {"IPv4": {}, "IPv6": {}}
    assert significant(netns_exec, netns, "legacy") == kept_legacy
    assert netns_exec(netns, "ipset", "list", "-n").split() == ["cni-other"]
    tables = netns_exec(netns, "nft", "list", "tables").splitlines()
    assert "table inet other" in tables and not [t for t in tables if t.endswith(" kube-proxy")]
    links = netns_exec(netns, "ip", "-o", "link", "show")
    assert "kube-ipvs0" not in links and "eth9" in links
    assert run(capsys, "cleanup", "--netns", netns) == (0, "nothing to clean up\n", "")


def test_a_kube_proxy_chain_that_foreign_rules_use_is_kept(capsys, netns, netns_exec):
    apply(capsys, netns, "legacy")
    iptables(netns_exec, netns, "iptables-legacy", "-t", "nat", "-N", "CNI-FOO")
    iptables(netns_exec, netns, "iptables-legacy", "-t", "nat", "-A", "CNI-FOO", "-j", "KUBE-MARK-MASQ")
    code, out, _ = run(capsys, "cleanup", "--netns", netns, "--iptables-backend", "legacy")
    assert code == 0
    assert "legacy IPv4 nat: kept KUBE-MARK-MASQ: CNI-FOO, which is not removed, jumps to it" in out.splitlines()
    nat = significant(netns_exec, netns, "legacy")["IPv4"]["nat"]
    assert nat == [":CNI-FOO - [0:0]", ":KUBE-MARK-MASQ - [0:0]", "-A CNI-FOO -j KUBE-MARK-MASQ",
                   "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"]
