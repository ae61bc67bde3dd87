"""kube-proxy's shared fixture flows as real packets, each also checked against the static tracer.

tests/conformance/test_flows.py traces every ``expected.flows.yaml`` statically. Here each flow a
lab can host runs on a real kernel (netns_tests/fixture_flows_lab.py builds the world: the
fixture's node with its addresses and its rules applied by ``proxyctl apply --netns``, one
namespace per endpoint, the clients, and "beyond", where an untouched packet ends), on the nft
and the legacy iptables backend. Per flow:

- the static tracer, run on the node's live rules (iptables-save in the node, parsed), gives the
  fixture's ``output`` and ``masq`` (or the kernel's answer recorded in KERNEL_DIFFERS);
- the real probes agree with that prediction (``trace --live``'s comparison: no probe where the
  prediction never goes, the chi-square test, the masquerade decision, conntrack's DNAT target);
- the places the probes reached are exactly the fixture's: every DNAT destination (40 probes for
  2 or 3 endpoints: a miss has probability < 1e-6), the original destination itself for "" and
  ACCEPT, connection refused at once for REJECT, no answer for DROP;
- masquerade: the endpoint saw the node's cbr0 address (the address of the interface the node
  sent it out of, where MASQUERADE rewrites to) iff the fixture says masq, else the client's own.

Flows that cannot be hosted are listed with their reason in LEFT_OUT, and a test holds that list
exactly; the end of the run prints which flows ran on which backend.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("netns_tests.fixture_flows_lab")  # it is also this module's plugin (below)

from netns_tests.fixture_flows_lab import (  # noqa: E402
    BACKENDS,
    KERNEL_DIFFERS,
    KP,
    LEFT_OUT,
    POD_GATEWAY,
    Flow,
    build_world,
    cases,
    explain,
    load_flows,
    why_not_hosted,
)
from proxyctl.lab.probe import DROP, REJECT  # noqa: E402

pytest_plugins = ["netns_tests.fixture_flows_lab"]

FLOWS = load_flows()
HOSTED = [f for f in FLOWS if why_not_hosted(f) is None]


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    yield from build_world(request.param, tmp_path_factory.mktemp(f"fixture-flows-{request.param}"), FLOWS)


def probes_for(flow: Flow, output: str) -> tuple[int, float]:
    """How many probes, with what timeout: enough that every expected destination is reached."""
    if output == DROP:
        return 2, 2.0
    if output == REJECT:
        return 3, 3.0
    return (40 if len(flow.expected_categories(output)) > 1 else 12), 2.0


@pytest.mark.parametrize("flow", HOSTED, ids=lambda f: f.id)
def test_fixture_flow(world, flow):
    world.ensure(flow.case, flow.phase)
    output, masq = flow.output, flow.masq
    if flow.id in KERNEL_DIFFERS:
        output, masq, _why = KERNEL_DIFFERS[flow.id]
    count, timeout = probes_for(flow, output)
    report, kind = world.probe(flow, count, timeout)
    why = explain(flow, report, kind)

    assert (report.first.flow_output(), report.first.masquerade) == (output, masq), why
    assert report.agrees, why
    assert set(report.observed()) == flow.expected_categories(output), why
    assert sum(report.observed().values()) == count, why
    seen_as = POD_GATEWAY[flow.family] if masq else flow.src
    for c in report.categories:
        if c.category in (REJECT, DROP) or not c.observed:
            continue
        assert c.peers == (seen_as,), why
        assert c.masqueraded == (c.observed if masq else 0), why
    if output == REJECT:
        assert all(p.result == "refused" and p.elapsed < 0.5 for p in report.probes), why
    if output == DROP:
        assert all(p.result == "timeout" for p in report.probes), why


def test_the_fixtures_with_flows():
    """Every fixture folder with an expected.flows.yaml is here (a new one runs without a change)."""
    assert [str(c.relative_to(KP)) for c in cases()] == [
        "cluster_ip_general", "external_traffic_policy_local", "internal_traffic_policy/case1_cluster",
        "internal_traffic_policy/case2_local_one_local", "node_ports/case1_ipv4_localhost-nodeports-enabled",
        "node_ports/case5_ipv6_localhost-nodeports-enabled", "trace_packet_static"]
    assert {f.case for f in HOSTED} == {str(c.relative_to(KP)) for c in cases()}


def test_left_out_flows_are_exactly_the_listed_ones():
    """The flows that do not run as real packets, each with its reason (printed at the end of the run)."""
    left = {f.id: why_not_hosted(f) for f in FLOWS if why_not_hosted(f) is not None}
    assert left == LEFT_OUT
    assert len(HOSTED) + len(LEFT_OUT) == len(FLOWS)


def test_recorded_kernel_differences_are_real_differences():
    """Each entry of KERNEL_DIFFERS names a fixture flow and a different answer than the fixture's."""
    by_id = {f.id: f for f in FLOWS}
    for fid, (output, masq, why) in KERNEL_DIFFERS.items():
        assert fid in by_id and (output, masq) != (by_id[fid].output, by_id[fid].masq) and why


REFUSED_OR_DROPPED = [f for f in HOSTED if f.output in (REJECT, DROP)]


@pytest.mark.parametrize("flow", REFUSED_OR_DROPPED, ids=lambda f: f.id)
def test_without_the_rules_the_packet_reaches_its_own_destination(world, flow):
    """The world does not refuse or drop by itself: on a node without rules, a REJECT or DROP flow's
    packets reach the destination they were sent to (so the REJECT and DROP above are the rules')."""
    world.ensure_no_rules()
    report, kind = world.probe(flow, 3, 2.0)
    why = explain(flow, report, kind)
    assert report.first.flow_output() == "" and report.agrees, why
    assert report.observed() == {flow.expected_categories("").pop(): 3}, why
