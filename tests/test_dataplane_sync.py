"""kube-proxy's full sync (sync.full_sync, apply.apply_full_sync) against the in-memory iptables.

What a node holds after a sync is compared with ``node_tables`` (what ``proxyctl compile --format
save`` prints), table by table; the calls made are compared by count and flags.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from proxyctl.backends.iptables import compile_ruleset
from proxyctl.backends.iptables.node_state import after_first_sync
from proxyctl.compiler import node_tables
from proxyctl.dataplane.apply import apply_full_sync
from proxyctl.dataplane.errors import RestoreError
from proxyctl.dataplane.fake_iptables import FakeIptables
from proxyctl.dataplane.nfacct import NfacctState
from proxyctl.dataplane.sync import full_sync
from proxyctl.inputs import gather
from proxyctl.rules.iptables.model import Opt, Rule, Ruleset
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.rules.iptables.save import save_table_lines
from tests.builders import NODE, make_service, make_slice, options, views

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
FOREIGN_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 1.2.3.4/32 -j DROP\nCOMMIT\n"
FOREIGN_NAT = ("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:CNI-FOO - [0:0]\n"
               "-A POSTROUTING -s 10.88.0.0/16 -j CNI-FOO\n-A CNI-FOO -j MASQUERADE\nCOMMIT\n")


def payload(*names: str) -> Ruleset:
    """The IPv4 payload for services ns1/<name> (one local endpoint each), in kube-proxy's test plan."""
    services = [make_service("ns1", n, f"172.30.0.{41 + i}") for i, n in enumerate(names)]
    slices = [make_slice("ns1", n, [f"10.180.0.{1 + i}"]) for i, n in enumerate(names)]
    return compile_ruleset(views(services, slices, "IPv4", NODE), options())


def by_table(text: str, family: str = "IPv4") -> dict[str, str]:
    """iptables-save text as {table: its lines}, so table order does not matter."""
    rs = parse_rules(text, family=family).ruleset
    return {name: "\n".join(save_table_lines(t, family)) for name, t in rs.tables.items()}


def expected(p: Ruleset) -> dict[str, str]:
    rs = after_first_sync(p)
    return {name: "\n".join(save_table_lines(t, rs.family)) for name, t in rs.tables.items()}


def test_first_sync_on_an_empty_node_gives_what_compile_save_shows():
    ipt, p = FakeIptables(), payload("a", "b")
    result = full_sync(ipt, p)
    assert by_table(ipt.dump("IPv4")) == expected(p)
    assert [(c.noflush, c.counters) for c in ipt.restores] == [(True, False), (True, True)]
    assert result.created_chains[:3] == ("mangle/KUBE-PROXY-CANARY", "nat/KUBE-PROXY-CANARY", "nat/KUBE-SERVICES")
    assert len(result.added_jumps) == 14 and result.stale_chains == ()
    assert result.rules == {"filter": sum(len(c.rules) for c in p.tables["filter"].chains.values()),
                            "nat": sum(len(c.rules) for c in p.tables["nat"].chains.values())}


def test_the_ensure_step_writes_only_what_is_missing():
    ipt = FakeIptables()
    full_sync(ipt, payload("a"))
    ensure = ipt.restores[0].payload
    assert ensure.startswith("*mangle\n-N KUBE-PROXY-CANARY\nCOMMIT\n*nat\n-N KUBE-PROXY-CANARY\n")
    assert ('-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
            'portals" -j KUBE-EXTERNAL-SERVICES') in ensure.splitlines()
    assert not any(line.startswith(":") for line in ensure.splitlines()), "a ':' line would flush the chain"


def test_a_second_sync_is_idempotent():
    ipt, p = FakeIptables(), payload("a", "b")
    full_sync(ipt, p)
    before = ipt.dump("IPv4")
    result = full_sync(ipt, p)
    assert ipt.dump("IPv4") == before
    assert len(ipt.restores) == 3, "nothing to ensure the second time: only the payload is restored"
    assert (result.created_chains, result.added_jumps, result.stale_chains) == ((), (), ())


def test_jump_rules_already_there_are_not_duplicated_and_missing_ones_lead():
    ipt = FakeIptables()
    # One of kube-proxy's jumps as iptables-save prints it, behind a foreign rule.
    ipt.load("IPv4", "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -s 1.2.3.4/32 -j ACCEPT\n"
                     '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n')
    result = full_sync(ipt, payload("a"))
    assert "nat/PREROUTING -> KUBE-SERVICES" not in result.added_jumps
    prerouting = [line for line in ipt.dump("IPv4", "nat").splitlines() if line.startswith("-A PREROUTING")]
    assert prerouting == ["-A PREROUTING -s 1.2.3.4/32 -j ACCEPT",
                          '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    filter_input = [line for line in ipt.dump("IPv4", "filter").splitlines() if line.startswith("-A INPUT")]
    assert [line.rsplit(" ", 1)[1] for line in filter_input] == [
        "KUBE-FIREWALL", "KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES"]


def test_stale_service_chains_are_flushed_and_deleted():
    ipt = FakeIptables()
    full_sync(ipt, payload("a", "b"))
    p = payload("a")
    result = full_sync(ipt, p)
    gone = set(payload("a", "b").tables["nat"].chains) - set(p.tables["nat"].chains)
    assert len(gone) == 2 and set(result.stale_chains) == gone  # KUBE-SVC- and KUBE-SEP- of ns1/b
    sent = ipt.restores[-1].payload.splitlines()
    for chain in result.stale_chains:
        assert f":{chain} - [0:0]" in sent and f"-X {chain}" in sent
    assert by_table(ipt.dump("IPv4")) == expected(p)


def test_foreign_rules_and_chains_survive():
    ipt = FakeIptables()
    ipt.load("IPv4", FOREIGN_FILTER)
    ipt.load("IPv4", FOREIGN_NAT)
    full_sync(ipt, payload("a"))
    full_sync(ipt, payload("b"))
    dump = ipt.dump("IPv4")
    for line in ("-A INPUT -s 1.2.3.4/32 -j DROP", ":CNI-FOO - [0:0]", "-A POSTROUTING -s 10.88.0.0/16 -j CNI-FOO",
                 "-A CNI-FOO -j MASQUERADE"):
        assert line in dump.splitlines()


def bad_nat(p: Ruleset) -> Ruleset:
    """``p`` plus a filter rule (accepted) and a nat rule that jumps to a missing chain (rejected)."""
    p.tables["filter"].append("KUBE-FORWARD", Rule((Opt("-s", "192.0.2.1"),), "DROP"))
    p.tables["nat"].append("KUBE-SERVICES", Rule((Opt("-d", "192.0.2.2"),), "KUBE-SVC-DOESNOTEXIST"))
    return p


def test_a_rejected_nat_section_keeps_nat_and_the_next_full_sync_converges():
    ipt = FakeIptables()
    full_sync(ipt, payload("a", "b"))
    nat_before = ipt.dump("IPv4", "nat")
    with pytest.raises(RestoreError) as caught:
        full_sync(ipt, bad_nat(payload("a")))
    e = caught.value
    assert ipt.dump("IPv4", "nat") == nat_before, "stale-chain deletion and all are undone with the nat table"
    assert "-A KUBE-FORWARD -s 192.0.2.1/32 -j DROP" in ipt.dump("IPv4", "filter"), "filter was committed"
    assert e.line_text == "-A KUBE-SERVICES -d 192.0.2.2 -j KUBE-SVC-DOESNOTEXIST"
    assert e.payload.splitlines()[e.line - 1] == e.line_text
    assert e.outcome.describe() == "filter was applied; nat kept its previous rules"
    assert e.lines()[-1] == "The next sync must be a full one."
    p = payload("a")
    full_sync(ipt, p)
    assert by_table(ipt.dump("IPv4")) == expected(p)


def test_a_stale_chain_that_foreign_rules_use_fails_the_nat_table_as_in_kube_proxy():
    ipt = FakeIptables()
    full_sync(ipt, payload("a", "b"))
    svc_b = next(c for c in payload("b").tables["nat"].chains if c.startswith("KUBE-SVC-"))
    ipt.restore("IPv4", f"*nat\n:CNI-FOO - [0:0]\n-A CNI-FOO -j {svc_b}\nCOMMIT\n")
    nat_before = ipt.dump("IPv4", "nat")
    with pytest.raises(RestoreError) as caught:
        full_sync(ipt, payload("a"))
    assert caught.value.outcome.failed == "nat" and ipt.dump("IPv4", "nat") == nat_before


def demo_inputs():
    return gather([str(DEMO / "cluster.yaml")], config_path=str(DEMO / "kube-proxy-config.yaml"),
                  node_facts_path=str(DEMO / "node.yaml"))


@pytest.mark.parametrize("counters", [(), ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")])
def test_apply_compiles_with_the_counters_that_exist_and_syncs_both_families(counters):
    inputs, ipt = demo_inputs(), FakeIptables()
    seen = []
    result = apply_full_sync(inputs, ipt, NfacctState(bool(counters), counters), on_synced=seen.append)
    assert [r.family for r in result.syncs] == [r.family for r in seen] == ["IPv4", "IPv6"]
    dump = ipt.dump("IPv4") + ipt.dump("IPv6")
    assert ("--nfacct-name" in dump) == bool(counters), "a rule never names a counter that does not exist"
    facts = replace(inputs.facts, nfacct=counters)
    for family in ("IPv4", "IPv6"):
        want = node_tables(replace(inputs, facts=facts), family)
        assert by_table(ipt.dump(family), family) == {
            n: "\n".join(save_table_lines(t, family)) for n, t in want.tables.items()}
