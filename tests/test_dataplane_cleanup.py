"""Cleanup removes kube-proxy's leftovers of every mode and nothing of the kubelet's or anyone else's."""

from __future__ import annotations

import pytest

from proxyctl.dataplane.cleanup import cleanup_node, is_owned, plan_table
from proxyctl.dataplane.errors import CleanupError
from proxyctl.dataplane.fake_iptables import FakeIptables
from proxyctl.dataplane.fake_runner import Expect, ScriptedRunner
from proxyctl.dataplane.sync import full_sync
from proxyctl.rules.iptables.parse import parse_rules
from tests.test_dataplane_sync import FOREIGN_FILTER, FOREIGN_NAT, payload

NS = "node-a"
KUBELET = """*mangle
:PREROUTING ACCEPT [0:0]
:KUBE-IPTABLES-HINT - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
"""  # noqa: E501
IPVS_MODE = """*filter
:INPUT ACCEPT [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-NODE-PORT - [0:0]
-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
COMMIT
"""


@pytest.mark.parametrize("chain, owned", [
    ("KUBE-SERVICES", True), ("KUBE-SVC-ABCDEF", True), ("KUBE-SEP-ABC", True), ("KUBE-XLB-ABC", True),
    ("KUBE-IPVS-OUT-FILTER", True), ("KUBE-PORTALS-HOST", True), ("KUBE-PROXY-CANARY", True),
    ("KUBE-FIREWALL", False), ("KUBE-KUBELET-CANARY", False), ("KUBE-IPTABLES-HINT", False),
    ("KUBE-MARK-DROP", False), ("KUBE-EXTERNAL", False), ("CNI-FOO", False), ("INPUT", False),
])
def test_what_is_kube_proxys(chain, owned):
    assert is_owned(chain) is owned


def test_plan_keeps_what_foreign_chains_use_and_what_that_uses():
    nat = parse_rules("*nat\n:POSTROUTING ACCEPT [0:0]\n:CNI-FOO - [0:0]\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-A - [0:0]\n"
                      ":KUBE-SERVICES - [0:0]\n-A POSTROUTING -j KUBE-SERVICES\n-A CNI-FOO -j KUBE-SVC-A\n"
                      "-A KUBE-SVC-A -j KUBE-SEP-A\n-A KUBE-SERVICES -j KUBE-SVC-A\nCOMMIT\n").ruleset.tables["nat"]
    plan = plan_table(nat)
    assert plan.remove == ("KUBE-SERVICES",)
    assert plan.kept == (("KUBE-SVC-A", "CNI-FOO"), ("KUBE-SEP-A", "KUBE-SVC-A"))
    assert plan.lines() == ["*nat", ":KUBE-SERVICES - [0:0]", "-D POSTROUTING -j KUBE-SERVICES",
                            "-X KUBE-SERVICES", "COMMIT"]


def scripted(*expects: Expect) -> ScriptedRunner:
    return ScriptedRunner(list(expects), netns=NS)


NOTHING = (Expect(("ipset", "list", "-n")), Expect(("nft", "list", "tables")))


def no_link(**_kw) -> list[str]:
    return []


def node_after_apply() -> tuple[FakeIptables, FakeIptables]:
    nft, legacy = FakeIptables("nft", netns=NS), FakeIptables("legacy", netns=NS)
    for text in (KUBELET, FOREIGN_FILTER, FOREIGN_NAT):
        nft.load("IPv4", text)
    full_sync(nft, payload("a", "b"))
    legacy.load("IPv6", IPVS_MODE)
    return nft, legacy


def test_cleanup_after_apply_leaves_the_kubelets_and_foreign_rules_then_is_idempotent():
    nft, legacy = node_after_apply()
    runner = scripted(
        Expect(("ipset", "list", "-n"), stdout="KUBE-CLUSTER-IP\nKUBE-6-CLUSTER-IP\ncni-other\n"),
        Expect(("ipset", "destroy", "KUBE-CLUSTER-IP")),
        Expect(("ipset", "destroy", "KUBE-6-CLUSTER-IP")),
        Expect(("nft", "list", "tables"),
               stdout="table ip filter\ntable ip kube-proxy\ntable ip6 kube-proxy\ntable inet firewalld\n"),
        Expect(("nft", "delete", "table", "ip", "kube-proxy")),
        Expect(("nft", "delete", "table", "ip6", "kube-proxy")))
    done = cleanup_node([nft, legacy], netns=NS, runner=runner, ipvs_link=no_link)
    runner.assert_done()
    assert "ipset: destroyed KUBE-CLUSTER-IP" in done and "nftables: deleted table ip6 kube-proxy" in done
    assert "legacy IPv6 filter: deleted 2 jump rule(s) and 2 chain(s)" in done
    left = nft.dump("IPv4")
    assert "KUBE-" not in left.replace("KUBE-FIREWALL", "").replace("KUBE-IPTABLES-HINT", "").replace(
        "KUBE-KUBELET-CANARY", "")
    for line in ("-A INPUT -j KUBE-FIREWALL", "-A OUTPUT -j KUBE-FIREWALL", ":KUBE-IPTABLES-HINT - [0:0]",
                 "-A INPUT -s 1.2.3.4/32 -j DROP", "-A CNI-FOO -j MASQUERADE"):
        assert line in left.splitlines()
    assert legacy.dump("IPv6") == "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    restores = len(nft.restores) + len(legacy.restores)
    again = cleanup_node([nft, legacy], netns=NS, runner=scripted(
        Expect(("ipset", "list", "-n"), stdout="cni-other\n"), Expect(("nft", "list", "tables"),
                                                                      stdout="table ip filter\n")), ipvs_link=no_link)
    assert again == [] and len(nft.restores) + len(legacy.restores) == restores


def test_a_chain_foreign_rules_jump_to_is_kept_and_reported():
    nft = FakeIptables("nft", netns=NS)
    full_sync(nft, payload("a"))
    nft.restore("IPv4", "*nat\n:CNI-FOO - [0:0]\n-A CNI-FOO -j KUBE-MARK-MASQ\nCOMMIT\n")
    done = cleanup_node([nft], netns=NS, runner=scripted(*NOTHING), ipvs_link=no_link)
    assert "nft IPv4 nat: kept KUBE-MARK-MASQ: CNI-FOO, which is not removed, jumps to it" in done
    assert [c for c in nft.state["IPv4"].tables["nat"].chains if c.startswith("KUBE-")] == ["KUBE-MARK-MASQ"]


def test_a_failing_step_does_not_stop_the_others():
    nft, _ = node_after_apply()
    runner = scripted(
        Expect(("ipset", "list", "-n"), stdout="KUBE-CLUSTER-IP\n"),
        Expect(("ipset", "destroy", "KUBE-CLUSTER-IP"), returncode=1,
               stderr="ipset v7.17: Set cannot be destroyed: it is in use by a kernel component"),
        Expect(("nft", "list", "tables"), stdout="table ip kube-proxy\n"),
        Expect(("nft", "delete", "table", "ip", "kube-proxy")))
    with pytest.raises(CleanupError) as caught:
        cleanup_node([nft], netns=NS, runner=runner, ipvs_link=no_link)
    runner.assert_done()
    e = caught.value
    assert e.exit_code == 1 and len(e.failures) == 1
    assert "nftables: deleted table ip kube-proxy" in e.done
    assert e.lines()[0].startswith("cleanup failed: ipset destroy KUBE-CLUSTER-IP failed (exit 1)")
