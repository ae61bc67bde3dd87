"""The simulator, one netfilter behaviour at a time, on small hand-written rulesets."""

from __future__ import annotations

import pytest

from proxyctl.node.facts import NodeFacts
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.trace.matches import Context
from proxyctl.trace.packet import Packet, parse_destination
from proxyctl.trace.walk import Tracer

FACTS = NodeFacts(name="n", node_ips={"IPv4": "192.168.0.2"},
                  addresses={"lo": ("127.0.0.1/8",), "eth0": ("192.168.0.2/24",), "cbr0": ("10.244.0.1/24",)})


def trace(rules: str, src="10.244.0.5", dst="10.96.0.1", dport=80, proto="tcp", recent=frozenset(), iface=None):
    parsed = parse_rules(rules)
    t = Tracer(parsed.ruleset, Context(FACTS, recent_hits=recent), parsed.lines)
    return t.trace(Packet(src, dst, proto, 40000, dport, iface))


def nat(*lines: str, filter_lines: tuple[str, ...] = ()) -> str:
    chains = sorted({x.split()[1] for x in lines} - {"PREROUTING", "OUTPUT", "POSTROUTING", "INPUT"})
    fchains = sorted({x.split()[1] for x in filter_lines} - {"INPUT", "FORWARD", "OUTPUT"})
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            + "".join(f":{c} - [0:0]\n" for c in chains) + "".join(x + "\n" for x in lines) + "COMMIT\n"
            + "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "".join(f":{c} - [0:0]\n" for c in fchains) + "".join(x + "\n" for x in filter_lines) + "COMMIT\n")


def test_xor_mark_trick_masquerades_once_and_clears_the_mark():
    rules = nat(
        "-A PREROUTING -j KUBE-MARK-MASQ",
        "-A PREROUTING -j DNAT --to-destination 10.244.1.5:8080",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        "-A POSTROUTING -j KUBE-POSTROUTING",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        "-A KUBE-POSTROUTING -j KUBE-POSTROUTING-SEEN",
        "-A KUBE-POSTROUTING-SEEN -m mark --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE",
    )
    (o,) = trace(rules).outcomes
    assert o.masquerade and o.snat == "192.168.0.2"  # the node's address toward 10.244.1.5
    assert o.destination == ("10.244.1.5", 8080)
    assert not any(s.chain == "KUBE-POSTROUTING-SEEN" and s.rule == 1 for s in o.path)  # mark was cleared


def test_unmarked_packet_returns_before_masquerade():
    rules = nat("-A POSTROUTING -j KUBE-POSTROUTING",
                "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                "-A KUBE-POSTROUTING -j MASQUERADE")
    (o,) = trace(rules).outcomes
    assert o.snat is None and not o.masquerade


@pytest.mark.parametrize("src,verdict", [("192.168.0.9", "DROP"), ("127.0.0.1", "ACCEPT")])
def test_negated_ctstate_and_negated_source(src, verdict):
    rules = nat(filter_lines=(
        "-A INPUT -j KUBE-FIREWALL",
        "-A KUBE-FIREWALL -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
    ))
    (o,) = trace(rules, src=src, dst="127.0.0.1").outcomes
    assert o.verdict == verdict


def test_dnat_state_exempts_from_localnet_drop():
    rules = nat("-A PREROUTING -d 127.0.0.1 -j DNAT --to-destination 127.0.0.1:9000", filter_lines=(
        "-A INPUT -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",))
    (o,) = trace(rules, src="192.168.0.9", dst="127.0.0.1").outcomes
    assert o.verdict == "ACCEPT" and o.destination == ("127.0.0.1", 9000)


def test_goto_returns_to_the_callers_caller():
    rules = nat("-A PREROUTING -j A", "-A PREROUTING -j DNAT --to-destination 10.0.0.9",
                "-A A -g B", "-A A -j DNAT --to-destination 10.0.0.1",
                "-A B -j RETURN")
    (o,) = trace(rules).outcomes
    assert o.destination == ("10.0.0.9", 80)  # B's RETURN skipped the rest of A


def test_jump_returns_to_the_next_rule():
    rules = nat("-A PREROUTING -j A", "-A PREROUTING -j DNAT --to-destination 10.0.0.9",
                "-A A -j B", "-A A -j DNAT --to-destination 10.0.0.1",
                "-A B -j RETURN")
    (o,) = trace(rules).outcomes
    assert o.destination == ("10.0.0.1", 80)


def test_statistic_branches_multiply_to_equal_shares():
    rules = nat("-A PREROUTING -j SVC",
                "-A SVC -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.0.0.1",
                "-A SVC -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.0.0.2",
                "-A SVC -j DNAT --to-destination 10.0.0.3")
    r = trace(rules)
    assert [o.destination[0] for o in r.outcomes] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [round(o.probability, 6) for o in r.outcomes] == [0.333333, 0.333333, 0.333333]
    assert abs(sum(o.probability for o in r.outcomes) - 1) < 1e-12


def test_recent_affinity_first_packet_versus_returning_client():
    rules = nat("-A PREROUTING -j SVC",
                "-A SVC -m recent --name SEP-B --rcheck --seconds 10800 --reap -j SEP-B",
                "-A SVC -m statistic --mode random --probability 0.5 -j SEP-A",
                "-A SVC -j SEP-B",
                "-A SEP-A -m recent --name SEP-A --set -j DNAT --to-destination 10.0.0.1",
                "-A SEP-B -m recent --name SEP-B --set -j DNAT --to-destination 10.0.0.2")
    assert len(trace(rules).outcomes) == 2
    (o,) = trace(rules, recent=frozenset({"SEP-B"})).outcomes
    assert o.destination == ("10.0.0.2", 80) and o.probability == 1.0


def test_policy_drop_is_decided_by_policy():
    rules = nat().replace(":FORWARD ACCEPT", ":FORWARD DROP")
    (o,) = trace(rules, dst="10.244.1.9").outcomes
    assert (o.verdict, o.decided_by) == ("DROP", "policy")


def test_unknown_interface_is_reported_not_guessed():
    rules = nat("-A PREROUTING -i cbr0 -j DNAT --to-destination 10.0.0.1")
    r = trace(rules)
    assert r.outcomes[0].destination is None
    assert r.unevaluated and "interface" in r.unevaluated[0].reason and r.unevaluated[0].rule == 1
    r = trace(rules, iface="cbr0")
    assert r.outcomes[0].destination == ("10.0.0.1", 80) and not r.unevaluated


def test_ports_multiport_and_protocol():
    rules = nat("-A PREROUTING -p udp -m multiport --dports 53,1000:2000 -j DNAT --to-destination 10.0.0.1")
    assert trace(rules, proto="udp", dport=1500).outcomes[0].destination == ("10.0.0.1", 1500)
    assert trace(rules, proto="tcp", dport=1500).outcomes[0].destination is None


def test_local_packets_take_output_then_input():
    rules = nat("-A OUTPUT -d 192.168.0.2 -p tcp --dport 30000 -j DNAT --to-destination 10.0.0.7:80",
                filter_lines=("-A INPUT -p tcp --dport 30001 -j REJECT",))
    (o,) = trace(rules, src="192.168.0.2", dst="192.168.0.2", dport=30000).outcomes
    assert o.destination == ("10.0.0.7", 80)
    (o,) = trace(rules, src="192.168.0.2", dst="192.168.0.2", dport=30001).outcomes
    assert o.verdict == "REJECT"


def test_parse_destination_forms():
    assert parse_destination("10.96.0.10:53") == ("10.96.0.10", 53)
    assert parse_destination("[fd00::1]:53") == ("fd00::1", 53)
    assert parse_destination("fd00::1") == ("fd00::1", None)
    with pytest.raises(Exception, match="not an IP"):
        parse_destination("svc.example:80")


# --- where the kernel and kube-proxy's test tracer part ways -------------------------------------
# kube-proxy's tracer runs filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS and
# KUBE-PROXY-FIREWALL for every packet; the kernel only reaches them from the hooks that jump there.

def _compiled_tracer(services, slices=()):
    from proxyctl.backends.iptables import compile_ruleset
    from proxyctl.backends.iptables.node_state import after_first_sync
    from tests.builders import NODE_FACTS, options, views

    rs = after_first_sync(compile_ruleset(views(services, slices), options()))
    return Tracer(rs, Context(NODE_FACTS))


def test_forwarded_packet_to_a_health_check_port_is_not_accepted_by_the_health_check_rule():
    from tests.builders import make_service

    lb = make_service("ns1", "svc1", type="LoadBalancer", node_port=3001, health_check_node_port=30000,
                      external_traffic_policy="Local", load_balancer_ingress=("1.2.3.4",))
    t = _compiled_tracer([lb])
    (o,) = t.trace(Packet("203.0.113.2", "10.9.9.9", "tcp", 40000, 30000)).outcomes  # forwarded: not for us
    assert (o.verdict, o.decided_by) == ("ACCEPT", "policy")  # kube-proxy's tracer: ACCEPT by the rule
    (o,) = t.trace(Packet("203.0.113.2", "192.168.0.2", "tcp", 40000, 30000)).outcomes  # to the node: INPUT
    assert (o.verdict, o.decided_by) == ("ACCEPT", "rule")


def test_node_to_external_ip_without_endpoints_is_not_rejected_by_the_kernel():
    from tests.builders import make_service

    svc = make_service("ns1", "svc1", external_ips=("192.168.99.22",), type="ClusterIP")
    t = _compiled_tracer([svc])
    (o,) = t.trace(Packet("192.168.0.2", "192.168.99.22", "tcp", 40000, 80)).outcomes
    assert (o.verdict, o.destination) == ("ACCEPT", None)  # OUTPUT never jumps to KUBE-EXTERNAL-SERVICES
    (o,) = t.trace(Packet("203.0.113.2", "192.168.99.22", "tcp", 40000, 80)).outcomes
    assert o.verdict == "REJECT"  # forwarded traffic does
