"""The partial-sync payload: replayed on the in-memory iptables it leaves exactly the new rules."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from proxyctl.backends.iptables import compile_ruleset
from proxyctl.backends.iptables.names import ChainNames
from proxyctl.dataplane.fake_iptables import FakeIptables
from proxyctl.rules.iptables.delta import delta_payload
from proxyctl.rules.iptables.render import render_restore
from tests.builders import make_endpoint, make_service, make_slice, options, views

PREFIXES = ChainNames().service_prefixes


def cluster(n_services: int, eps: dict[int, list[str]]):
    svcs = [make_service("ns", f"s{i}", f"172.30.0.{i + 1}", type="NodePort", node_port=30000 + i)
            for i in range(n_services)]
    slices = [make_slice("ns", f"s{i}", [make_endpoint(ip, "test-node" if ip.endswith(".1") else "n2")
                                         for ip in ips]) for i, ips in eps.items()]
    return svcs, slices


def payload(svcs, slices):
    return compile_ruleset(views(svcs, slices), options())


def replay(old, new) -> str:
    fake = FakeIptables()
    fake.restore("IPv4", render_restore(old), noflush=True)
    delta = delta_payload(old, new, deletable=PREFIXES)
    if delta is not None:
        fake.restore("IPv4", delta, noflush=True)
    return fake.save("IPv4")


def test_one_endpoint_change_edits_few_lines_and_lands_on_the_new_rules():
    svcs, slices = cluster(40, {i: [f"10.1.{i}.1", f"10.1.{i}.2"] for i in range(40)})
    old = payload(svcs, slices)
    slices2 = list(slices)
    slices2[7] = make_slice("ns", "s7", [make_endpoint("10.1.7.1", "test-node"), make_endpoint("10.1.7.3", "n2")])
    new = payload(svcs, slices2)
    delta = delta_payload(old, new, deletable=PREFIXES)
    assert delta is not None and len(delta.splitlines()) < 20
    assert ":KUBE-SERVICES" not in delta  # the big chains are edited, not rewritten
    fake_new = FakeIptables()
    fake_new.restore("IPv4", render_restore(new), noflush=True)
    assert replay(old, new) == fake_new.save("IPv4")


def test_nothing_changed_is_nothing_to_write():
    svcs, slices = cluster(5, {i: [f"10.1.{i}.1"] for i in range(5)})
    assert delta_payload(payload(svcs, slices), payload(svcs, slices), deletable=PREFIXES) is None


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_change_lands_exactly_on_the_new_rules(data):
    n = data.draw(st.integers(1, 8))
    def eps():
        return {i: [f"10.1.{i}.{j}" for j in data.draw(st.sets(st.integers(1, 6), max_size=4))]
                for i in range(n) if data.draw(st.booleans())}
    svcs_a, slices_a = cluster(n, eps())
    svcs_b, slices_b = cluster(data.draw(st.integers(0, 8)), eps())
    if data.draw(st.booleans()):
        svcs_b = [replace(s, session_affinity="ClientIP", session_affinity_timeout=60) for s in svcs_b]
    old, new = payload(svcs_a, slices_a), payload(svcs_b, slices_b)
    expected = FakeIptables()
    expected.restore("IPv4", render_restore(new), noflush=True)
    got = replay(old, new)
    # chains of deleted services are gone, everything else is the new payload
    assert got == expected.save("IPv4")


def test_cached_compile_equals_a_fresh_one_and_shares_unchanged_chains():
    from proxyctl.backends.iptables.fragments import FragmentCache
    from proxyctl.brain.build import ViewCache, build_views
    from proxyctl.cluster.objects import ClusterState

    svcs, slices = cluster(30, {i: [f"10.1.{i}.1", f"10.1.{i}.2"] for i in range(30)})
    vc, fc = ViewCache(), FragmentCache()
    state = ClusterState(tuple(svcs), tuple(slices))
    first = compile_ruleset(build_views(state, "IPv4", "test-node", cache=vc), options(), cache=fc)
    assert render_restore(first) == render_restore(payload(svcs, slices))
    slices2 = list(slices)
    slices2[4] = make_slice("ns", "s4", [make_endpoint("10.1.4.1", "test-node"), make_endpoint("10.1.4.9", "n2")])
    state2 = ClusterState(tuple(svcs), tuple(slices2))
    second = compile_ruleset(build_views(state2, "IPv4", "test-node", cache=vc), options(), cache=fc)
    assert render_restore(second) == render_restore(payload(svcs, slices2))
    shared = [n for n, c in second.tables["nat"].chains.items() if c is first.tables["nat"].chains.get(n)]
    assert len(shared) > 50 and not any(n in shared for n in ("KUBE-SERVICES", "KUBE-NODEPORTS"))
    assert fc.misses == 30 + 1  # every port once, then only the changed one
