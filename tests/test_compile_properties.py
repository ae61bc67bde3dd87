"""Properties of the iptables compiler over generated clusters and options (pure, no kernel).

Each test draws (cluster state, family, options) from tests/strategies.py and checks what must
hold for every input: the payload is deterministic and independent of input order, every jump
lands on a chain the payload declares, load balancing gives each endpoint an equal share, names
and comments fit what iptables accepts, and the payload survives parse → render unchanged.
"""

from __future__ import annotations

import math
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyctl.backends.iptables import IptablesOptions, compile_ruleset
from proxyctl.backends.iptables.node_state import after_first_sync, jump_rules
from proxyctl.backends.iptables.options import LocalDetector
from proxyctl.brain.build import build_views
from proxyctl.cluster.manifests import parse_object
from proxyctl.cluster.objects import ClusterState, EndpointSlice, Service
from proxyctl.errors import ManifestError
from proxyctl.rules.iptables.model import Opt, Rule, Ruleset
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.rules.iptables.render import render_restore
from proxyctl.rules.iptables.save import render_save
from tests.strategies import NODE_NAME, compile_inputs, endpoint_slice_manifest, service_manifest

# Targets that are kernel extensions rather than chains, and the tables they may be used in.
EXTENSION_TARGETS = {
    "ACCEPT": None, "DROP": None, "RETURN": None,  # any table
    "REJECT": {"filter", "mangle", "raw", "security"},
    "DNAT": {"nat"}, "SNAT": {"nat"}, "MASQUERADE": {"nat"},
    "MARK": None,
}
MAX_CHAIN_NAME = 28  # XT_EXTENSION_MAXNAMELEN - 1
MAX_COMMENT = 255  # XT_MAX_COMMENT_LEN - 1

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def compile_state(state: ClusterState, family: str, opts) -> Ruleset:
    return compile_ruleset(build_views(state, family, NODE_NAME), opts)


# --- checks, each usable on any ruleset ----------------------------------------------------------

def assert_targets_exist(rs: Ruleset) -> None:
    """Every -j/-g names a chain declared in the same table or an extension allowed there."""
    for tname, table in rs.tables.items():
        for chain in table.chains.values():
            for rule in chain.rules:
                t = rule.target
                if t is None or t in table.chains:
                    continue
                assert t in EXTENSION_TARGETS, f"{tname} {chain.name}: target {t} is not declared: {rule}"
                allowed = EXTENSION_TARGETS[t]
                assert allowed is None or tname in allowed, f"{tname} {chain.name}: {t} is not valid in {tname}"
                assert not rule.goto, f"{tname} {chain.name}: goto to the extension {t}"


def assert_targetless_rules_only_count(rs: Ruleset, fw_prefix: str = "KUBE-FW-") -> None:
    """kube-proxy writes a rule without a target in one place: the last rule of a KUBE-FW chain."""
    for table in rs.tables.values():
        for chain in table.chains.values():
            for i, rule in enumerate(chain.rules):
                if rule.target is None:
                    assert chain.name.startswith(fw_prefix) and i == len(chain.rules) - 1, (chain.name, rule)


def assert_names_fit(rs: Ruleset) -> None:
    for table in rs.tables.values():
        for name in table.chains:
            assert 0 < len(name) <= MAX_CHAIN_NAME, f"chain name {name!r} has {len(name)} characters"
            assert re.fullmatch(r"[A-Z0-9-]+", name), name


def assert_comments_clean(rs: Ruleset) -> None:
    for table in rs.tables.values():
        for chain in table.chains.values():
            for rule in chain.rules:
                for o in rule.matches:
                    if o.flag != "--comment":
                        continue
                    c = o.value or ""
                    assert '"' not in c and "\n" not in c and "\\" not in c, f"comment {c!r} in {chain.name}"
                    assert c.isprintable() and len(c.encode()) <= MAX_COMMENT, f"comment {c!r} in {chain.name}"


def balancing_rules(chain_rules: list[Rule], sep_prefix: str = "KUBE-SEP-") -> list[Rule]:
    """The rules of a KUBE-SVC/SVL chain that pick an endpoint (not the affinity checks, not the
    masquerade rule)."""
    return [r for r in chain_rules
            if r.target and r.target.startswith(sep_prefix) and not any(o.value == "recent" for o in r.matches)]


def endpoint_shares(rules: list[Rule]) -> list[float]:
    """P(endpoint i) = p_i × Π_{j<i} (1 − p_j), with p = 1 for a rule without --probability."""
    shares, remaining = [], 1.0
    for r in rules:
        opt = r.get("--probability")
        p = float(opt.value) if opt else 1.0
        shares.append(remaining * p)
        remaining *= 1.0 - p
    return shares


def assert_equal_shares(rs: Ruleset) -> None:
    nat = rs.tables.get("nat")
    if nat is None:
        return
    for chain in nat.chains.values():
        if not chain.name.startswith(("KUBE-SVC-", "KUBE-SVL-")):
            continue
        rules = balancing_rules(chain.rules)
        n = len(rules)
        assert n > 0, f"{chain.name} balances over no endpoint"
        assert len({r.target for r in rules}) == n, f"{chain.name} names an endpoint twice"
        assert rules[-1].get("--probability") is None, f"{chain.name}: the last endpoint must be unconditional"
        assert all(r.get("--probability") is not None for r in rules[:-1]), chain.name
        for i, share in enumerate(endpoint_shares(rules)):
            assert math.isclose(share, 1.0 / n, abs_tol=1e-9), f"{chain.name}: endpoint {i} of {n} gets {share}"
        affinity = [r for r in chain.rules if any(o.value == "recent" for o in r.matches)]
        if affinity:  # ClientIP: one check per endpoint, same order, before the balancing rules
            assert [r.target for r in affinity] == [r.target for r in rules], chain.name
            assert chain.rules.index(affinity[-1]) < chain.rules.index(rules[0]), chain.name


def assert_round_trip(rs: Ruleset, family: str) -> None:
    text = render_restore(rs)
    parsed = parse_rules(text, source="payload", family=family)
    assert parsed.unknown == [], parsed.unknown
    assert render_restore(parsed.ruleset) == text
    assert render_save(parsed.ruleset) == render_save(rs)
    assert sum(1 for line in text.splitlines() if line.startswith("-A ")) == rs.rule_count()


# --- properties ----------------------------------------------------------------------------------

@settings(PROPERTY_SETTINGS, max_examples=40)
@given(compile_inputs(), st.randoms(use_true_random=False))
def test_compile_is_deterministic_and_ignores_input_order(inputs, rnd):
    state, family, opts = inputs
    first = compile_state(state, family, opts)
    text = render_restore(first)
    assert render_restore(compile_state(state, family, opts)) == text
    services, slices = list(state.services), list(state.endpoint_slices)
    rnd.shuffle(services)
    rnd.shuffle(slices)
    shuffled = ClusterState(services=tuple(services), endpoint_slices=tuple(slices), nodes=state.nodes)
    again = compile_state(shuffled, family, opts)
    assert render_restore(again) == text
    assert render_save(again) == render_save(first)


@PROPERTY_SETTINGS
@given(compile_inputs())
def test_payload_is_well_formed(inputs):
    state, family, opts = inputs
    rs = compile_state(state, family, opts)
    assert list(rs.tables) == ["filter", "nat"]
    assert_targets_exist(rs)
    assert_targetless_rules_only_count(rs)
    assert_names_fit(rs)
    assert_comments_clean(rs)
    assert_equal_shares(rs)
    assert_round_trip(rs, family)

    node = after_first_sync(rs)
    assert_targets_exist(node)
    assert_names_fit(node)
    for j in jump_rules():
        assert j.rule.target in node.tables[j.table].chains, f"jump {j.source} -> {j.rule.target} in {j.table}"
        assert j.rule in node.tables[j.table].chains[j.source].rules
    assert_round_trip(node, family)


def test_equal_shares_check_catches_a_wrong_probability():
    """The share arithmetic itself: 3 endpoints written as 1/3, 1/2, 1 pass; 1/3, 1/3, 1 do not."""
    def chain(*ps):
        return [Rule((Opt("-m", "statistic"), Opt("--mode", "random"), Opt("--probability", p)), f"KUBE-SEP-{i}")
                for i, p in enumerate(ps)] + [Rule((), f"KUBE-SEP-{len(ps)}")]

    good = endpoint_shares(chain("0.3333333333", "0.5000000000"))
    assert all(math.isclose(s, 1 / 3, abs_tol=1e-9) for s in good)
    bad = endpoint_shares(chain("0.3333333333", "0.3333333333"))
    assert not all(math.isclose(s, 1 / 3, abs_tol=1e-9) for s in bad)


# --- nothing a manifest can say smuggles text into the payload ----------------------------------

NASTY = ['"', "a b", "a\nb", "a\tb", "-j ACCEPT", 'x" -j ACCEPT "', "x -j ACCEPT", "10.0.0.1 -j ACCEPT",
         "10.0.0.0/8\n-A KUBE-SERVICES -j ACCEPT", "10.0.0.0/8 ", " 10.0.0.0/8", "é", "\x00", "a" * 64, "a" * 300,
         "--comment", "!", "$(reboot)", "`id`", "a\\b", "1.2.3.4:80", "::ffff:1.2.3.4", "010.000.000.001",
         "0.0.0.0", "127.0.0.1", "fe80::1", "10.0.0.1/33", "*nat", "COMMIT", ":KUBE-X - [0:0]", "", "A", "-a", "a-"]
NASTY_TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=70))

# Where a user can put a string: (description, setter on [service, slice]).
FIELDS = {
    "namespace": lambda o, v: [x["metadata"].__setitem__("namespace", v) for x in o],
    "service name": lambda o, v: (o[0]["metadata"].__setitem__("name", v),
                                  o[1]["metadata"]["labels"].__setitem__("kubernetes.io/service-name", v)),
    "slice name": lambda o, v: o[1]["metadata"].__setitem__("name", v),
    "port name": lambda o, v: (o[0]["spec"]["ports"][0].__setitem__("name", v),
                               o[1]["ports"][0].__setitem__("name", v)),
    "protocol": lambda o, v: o[0]["spec"]["ports"][0].__setitem__("protocol", v),
    "targetPort": lambda o, v: o[0]["spec"]["ports"][0].__setitem__("targetPort", v),
    "clusterIP": lambda o, v: o[0]["spec"].__setitem__("clusterIPs", [v]),
    "externalIP": lambda o, v: o[0]["spec"]["externalIPs"].append(v),
    "ingress ip": lambda o, v: o[0]["status"]["loadBalancer"]["ingress"].append({"ip": v}),
    "ingress hostname": lambda o, v: o[0]["status"]["loadBalancer"]["ingress"].append({"hostname": v}),
    "source range": lambda o, v: o[0]["spec"]["loadBalancerSourceRanges"].append(v),
    "type": lambda o, v: o[0]["spec"].__setitem__("type", v),
    "externalTrafficPolicy": lambda o, v: o[0]["spec"].__setitem__("externalTrafficPolicy", v),
    "sessionAffinity": lambda o, v: o[0]["spec"].__setitem__("sessionAffinity", v),
    "endpoint address": lambda o, v: o[1]["endpoints"][0].__setitem__("addresses", [v]),
    "nodeName": lambda o, v: o[1]["endpoints"][0].__setitem__("nodeName", v),
    "zone": lambda o, v: o[1]["endpoints"][0].__setitem__("zone", v),
    "hostname": lambda o, v: o[1]["endpoints"][0].__setitem__("hostname", v),
    "zone hint": lambda o, v: o[1]["endpoints"][0].__setitem__("hints", {"forZones": [{"name": v}]}),
    "slice port name": lambda o, v: o[1]["ports"][0].__setitem__("name", v),
    "appProtocol": lambda o, v: o[1]["ports"][0].__setitem__("appProtocol", v),
    "label value": lambda o, v: o[0]["metadata"].__setitem__("labels", {"app": v}),
}
SAFE_COMMENT_CHARS = frozenset(string.ascii_letters + string.digits + " -./:[];>,")


def base_manifests(family: str) -> list[dict]:
    v4 = family == "IPv4"
    svc = service_manifest(
        "ns", "svc", [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
        cluster_ips=["10.96.0.10" if v4 else "fd00:10:96::10"], svc_type="LoadBalancer",
        external_ips=["203.0.113.7" if v4 else "2001:db8:ff::7"], ingress=["203.0.113.10" if v4 else "2001:db8:ff::10"],
        source_ranges=["192.168.0.0/24" if v4 else "2001:db8:1::/120"], affinity="ClientIP", etp="Local",
        health_check_node_port=30999)
    ep = {"addresses": ["10.244.0.5" if v4 else "fd00:10:244::5"], "conditions": {"ready": True}, "nodeName": NODE_NAME}
    port = {"name": "http", "port": 8080, "protocol": "TCP"}
    sl = endpoint_slice_manifest("ns", "svc-1", "svc", family, [ep], [port])
    return [svc, sl]


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(st.sampled_from(["IPv4", "IPv6"]), st.sampled_from(sorted(FIELDS)), NASTY_TEXT)
def test_manifest_text_cannot_leave_its_rule(family, field, value):
    objs = base_manifests(family)
    FIELDS[field](objs, value)
    try:
        parsed = [parse_object(o, source="attack") for o in objs]
    except ManifestError:
        return  # refused, with a message: nothing reaches the payload
    state = ClusterState(services=tuple(p for p in parsed if isinstance(p, Service)),
                         endpoint_slices=tuple(p for p in parsed if isinstance(p, EndpointSlice)))
    rs = compile_state(state, family, IptablesOptions(family=family, detector=LocalDetector.by_cidr(
        "10.244.0.0/16" if family == "IPv4" else "fd00:10:244::/64")))
    text = render_restore(rs)
    assert_payload_lines_are_rules(rs, text, family)
    for table in rs.tables.values():
        for chain in table.chains.values():
            for rule in chain.rules:
                assert set(rule.comment or "") <= SAFE_COMMENT_CHARS, (field, value, rule.comment)


def assert_payload_lines_are_rules(rs: Ruleset, text: str, family: str) -> None:
    """Every ``-A`` line is one rule, the one compiled, and there is one line per rule."""
    lines = [line for line in text.splitlines() if line.startswith("-A ")]
    assert len(lines) == rs.rule_count()
    assert len(text.splitlines()) == rs.rule_count() + sum(len(t.chains) + 2 for t in rs.tables.values())
    expected = [(t.name, c.name, r) for t in rs.tables.values() for c in t.chains.values() for r in c.rules]
    for line, (table, chain, rule) in zip(lines, expected, strict=True):
        one = parse_rules(f"*{table}\n:{chain} - [0:0]\n{line}\nCOMMIT\n", source="line", family=family)
        assert one.ruleset.tables[table].chains[chain].rules == [rule], line
