"""The iptables compiler, one kube-proxy behaviour at a time (KUBE-PROXY.md §1)."""

from __future__ import annotations

from dataclasses import replace

from proxyctl.backends.iptables import compile_ruleset
from proxyctl.backends.iptables.names import ChainNames, port_proto_hash
from proxyctl.backends.iptables.options import LocalDetector, masquerade_mark
from proxyctl.cluster.objects import LoadBalancerIngress
from proxyctl.rules.iptables.render import render_restore
from tests.builders import make_endpoint, make_service, make_slice, options, views

SVC1 = make_service("ns1", "svc1")


def payload(services, slices=(), family="IPv4", **opts) -> str:
    return render_restore(compile_ruleset(views(services, slices, family), options(family=family, **opts)))


def lines(text: str, chain: str) -> list[str]:
    return [x for x in text.splitlines() if x.startswith(f"-A {chain} ")]


def test_chain_hashes_match_kube_proxy():
    assert port_proto_hash("ns1/svc1:p80", "tcp") == "XPGD46QRK7WJZT7O"
    assert port_proto_hash("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "SXIVWICOYRO3J4NJ"


def test_masquerade_mark_is_go_zero_padded_hex():
    assert masquerade_mark(14) == "0x00004000"
    assert masquerade_mark(0) == "0x00000001"
    assert masquerade_mark(31) == "0x80000000"


def test_no_endpoints_rejects_and_writes_no_service_chain():
    out = payload([SVC1])
    assert ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp '
            "-d 172.30.0.41 --dport 80 -j REJECT") in out
    assert "KUBE-SVC-" not in out


def test_detect_local_by_bridge_and_prefix():
    s = [make_slice("ns1", "svc1", ["10.180.0.1"])]
    out = payload([SVC1], s, detector=LocalDetector.by_interface("cbr0"))
    assert "--dport 80 ! -i cbr0 -j KUBE-MARK-MASQ" in out
    out = payload([SVC1], s, detector=LocalDetector.by_interface("veth+"))
    assert "--dport 80 ! -i veth+ -j KUBE-MARK-MASQ" in out


def test_without_a_detector_cluster_ip_traffic_is_not_masqueraded():
    out = payload([SVC1], [make_slice("ns1", "svc1", ["10.180.0.1"])], detector=LocalDetector())
    assert not [x for x in lines(out, "KUBE-SVC-XPGD46QRK7WJZT7O") if "KUBE-MARK-MASQ" in x]


def test_masquerade_all_marks_every_cluster_ip_packet():
    out = payload([SVC1], [make_slice("ns1", "svc1", ["10.180.0.1"])], masquerade_all=True)
    assert ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
            "-d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ") in out


def test_probabilities_and_endpoint_order_are_lexicographic():
    eps = [f"10.180.0.{i}" for i in (1, 2, 10)]
    out = payload([SVC1], [make_slice("ns1", "svc1", eps)])
    svc = lines(out, "KUBE-SVC-XPGD46QRK7WJZT7O")[1:]
    assert [x.split('"')[1].split(" -> ")[1] for x in svc] == ["10.180.0.10:80", "10.180.0.1:80", "10.180.0.2:80"]
    assert "--probability 0.3333333333" in svc[0] and "--probability 0.5000000000" in svc[1]
    assert "statistic" not in svc[2]


def test_session_affinity_rules_come_first_and_sep_sets_recent():
    svc = replace(SVC1, session_affinity="ClientIP", session_affinity_timeout=0)
    out = payload([svc], [make_slice("ns1", "svc1", ["10.180.0.1"])])
    sep = "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert f"-m recent --name {sep} --rcheck --seconds 10800 --reap -j {sep}" in out
    assert f"-m recent --name {sep} --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80" in out


def test_internal_policy_local_without_local_endpoints_drops():
    svc = replace(SVC1, internal_traffic_policy="Local")
    out = payload([svc], [make_slice("ns1", "svc1", [make_endpoint("10.180.0.1", "node2")])])
    assert '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints"' in out
    assert "-j DROP" in lines(out, "KUBE-SERVICES")[0]


def test_internal_policy_local_uses_svl_chain_with_masquerade_rule():
    svc = replace(SVC1, internal_traffic_policy="Local")
    out = payload([svc], [make_slice("ns1", "svc1", [make_endpoint("10.180.0.1", "test-node"),
                                                   make_endpoint("10.180.0.2", "node2")])])
    svl = lines(out, "KUBE-SVL-XPGD46QRK7WJZT7O")
    assert svl[0].endswith("! -s 10.0.0.0/8 -j KUBE-MARK-MASQ")
    assert svl[1].endswith("-j KUBE-SEP-SXIVWICOYRO3J4NJ") and len(svl) == 2
    assert "KUBE-SVC-XPGD46QRK7WJZT7O" not in out


def test_terminating_endpoints_are_used_only_without_ready_ones():
    eps = [make_endpoint("10.180.0.1", ready=False, serving=True, terminating=True),
           make_endpoint("10.180.0.2", ready=False, serving=False, terminating=True)]
    out = payload([SVC1], [make_slice("ns1", "svc1", eps)])
    assert "10.180.0.1:80" in out and "10.180.0.2:80" not in out
    eps.append(make_endpoint("10.180.0.3"))
    out = payload([SVC1], [make_slice("ns1", "svc1", eps)])
    assert "10.180.0.1:80" not in out and "10.180.0.3:80" in out


def test_zone_hints_narrow_cluster_endpoints_when_all_ready_endpoints_have_them():
    eps = [make_endpoint("10.180.0.1", zones=("zone-a",)), make_endpoint("10.180.0.2", zones=("zone-b",))]
    vs = views([SVC1], [make_slice("ns1", "svc1", eps)], zone="zone-a")
    assert [e.addr for e in vs[0].sets.cluster] == ["10.180.0.1:80"]
    vs = views([SVC1], [make_slice("ns1", "svc1", eps)], zone="zone-c")  # no hint for us: ignore hints
    assert len(vs[0].sets.cluster) == 2
    eps[1] = make_endpoint("10.180.0.2")  # one endpoint without a hint: ignore hints
    vs = views([SVC1], [make_slice("ns1", "svc1", eps)], zone="zone-a")
    assert len(vs[0].sets.cluster) == 2


def test_node_hints_beat_zone_hints():
    eps = [make_endpoint("10.180.0.1", zones=("zone-a",), nodes=("node2",)),
           make_endpoint("10.180.0.2", zones=("zone-a",), nodes=("test-node",))]
    vs = views([SVC1], [make_slice("ns1", "svc1", eps)], zone="zone-a")
    assert [e.addr for e in vs[0].sets.cluster] == ["10.180.0.2:80"]


def test_load_balancer_ip_mode_proxy_gets_no_rule():
    svc = replace(SVC1, type="LoadBalancer",
                  load_balancer_ingress=(LoadBalancerIngress("1.2.3.4", "Proxy"), LoadBalancerIngress("1.2.3.5")))
    out = payload([svc], [make_slice("ns1", "svc1", ["10.180.0.1"])])
    assert "-d 1.2.3.5 --dport 80" in out and "1.2.3.4" not in out


def test_source_ranges_holding_the_node_ip_allow_the_vip_as_source():
    svc = make_service("ns1", "svc1", type="LoadBalancer", load_balancer_ingress=("1.2.3.4",),
                       load_balancer_source_ranges=("192.168.0.0/24", " 203.0.113.000/025"))
    out = payload([svc], [make_slice("ns1", "svc1", ["10.180.0.1"])])
    fw = lines(out, "KUBE-FW-XPGD46QRK7WJZT7O")
    assert [x.split(" -s ")[1].split()[0] for x in fw[:-1]] == ["192.168.0.0/24", "203.0.113.0/25", "1.2.3.4"]
    assert fw[-1].endswith('"other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL"')


def test_external_policy_local_without_local_endpoints_keeps_short_circuit_only():
    svc = make_service("ns1", "svc1", type="NodePort", node_port=3001, external_traffic_policy="Local")
    out = payload([svc], [make_slice("ns1", "svc1", [make_endpoint("10.180.0.1", "node2")])])
    ext = lines(out, "KUBE-EXT-XPGD46QRK7WJZT7O")
    assert len(ext) == 3 and all("KUBE-SVL" not in x for x in ext)
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" '
            "-m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP") in out


def test_health_check_node_port_only_for_local_load_balancers():
    lb = make_service("ns1", "svc1", type="LoadBalancer", node_port=3001, health_check_node_port=30000,
                      load_balancer_ingress=("1.2.3.4",))
    assert "health check node port" not in payload([lb])
    out = payload([replace(lb, external_traffic_policy="Local")])
    assert ('-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80 health check node port" -m tcp -p tcp '
            "--dport 30000 -j ACCEPT") in out


def test_node_port_addresses_write_one_tail_rule_per_node_ip():
    out = payload([SVC1], node_port_match_all=False, node_port_ips=("192.168.0.2", "127.0.0.1"),
                  localhost_node_ports=False)
    tail = [x for x in lines(out, "KUBE-SERVICES") if "must be the last rule" in x]
    assert [x.split(" -d ")[1].split()[0] for x in tail] == ["192.168.0.2"]


def test_ipv6_has_no_localhost_node_ports():
    svc = make_service("ns1", "svc1", "fd00:172:30::41", type="NodePort", node_port=3001)
    out = payload([svc], [make_slice("ns1", "svc1", ["fd00:10:180::1"], address_type="IPv6")], family="IPv6")
    assert "KUBE-FIREWALL" not in out and "127.0.0.0/8" not in out
    assert "-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS" in out
    assert "-j DNAT --to-destination [fd00:10:180::1]:80" in out


def test_tcp_be_liberal_drops_no_invalid_packets_and_missing_counters_are_not_named():
    out = payload([SVC1], tcp_be_liberal=True)
    assert "INVALID" not in out
    out = payload([SVC1], nfacct=frozenset())
    assert "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP" in out and "nfacct" not in out


def test_large_cluster_mode_drops_endpoint_comments_only():
    svcs, slices = [], []
    for i in range(101):
        svcs.append(make_service("ns1", f"svc{i}", f"172.30.1.{i}"))
        slices.append(make_slice("ns1", f"svc{i}", [f"10.180.{i}.{j}" for j in range(1, 11)]))
    out = payload(svcs, slices)  # 1010 endpoints > 1000
    sep = [x for x in out.splitlines() if x.startswith("-A KUBE-SEP-")]
    assert sep and not any("comment" in x for x in sep)
    svc_jumps = [x for x in out.splitlines() if x.startswith("-A KUBE-SVC-") and "KUBE-SEP-" in x]
    assert not any("comment" in x for x in svc_jumps)
    assert all('cluster IP"' in x for x in out.splitlines() if x.startswith("-A KUBE-SVC-") and "MARK-MASQ" in x)


def test_chain_prefix_renames_every_chain_but_kubelets():
    out = payload([SVC1], [make_slice("ns1", "svc1", ["10.180.0.1"])], names=ChainNames("PXCTL-"))
    chains = {x.split()[0][1:] for x in out.splitlines() if x.startswith(":")}
    assert chains - {"KUBE-FIREWALL"} and all(c.startswith("PXCTL-") for c in chains - {"KUBE-FIREWALL"})
    assert max(len(c) for c in chains) <= 28


def test_ports_match_endpoint_ports_by_name_and_protocol():
    svc = make_service("ns1", "svc1", port=53, protocol="UDP", port_name="dns")
    wrong = make_slice("ns1", "svc1", ["10.180.0.1"], port=53, protocol="TCP", port_name="dns")
    right = make_slice("ns1", "svc1", ["10.180.0.2"], port=5353, protocol="UDP", port_name="dns", name="svc1-2")
    out = payload([svc], [wrong, right])
    assert "10.180.0.2:5353" in out and "10.180.0.1" not in out


def test_first_address_only_and_local_copy_wins():
    dup_remote = make_slice("ns1", "svc1", [make_endpoint("10.180.0.1", "node2")], name="a")
    dup_local = make_slice("ns1", "svc1", [make_endpoint("10.180.0.1", "test-node")], name="b")
    vs = views([replace(SVC1, internal_traffic_policy="Local")], [dup_local, dup_remote])
    assert [e.addr for e in vs[0].sets.local] == ["10.180.0.1:80"]
