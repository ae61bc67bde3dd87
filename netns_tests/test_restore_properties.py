"""The compiled payload against real iptables, in fresh namespaces, on both backends.

For generated clusters and options (tests/strategies.py, TCP and UDP only: this kernel has no SCTP):

* the restore payload loads with ``iptables-restore -w --noflush --counters`` (what kube-proxy
  runs) on ``iptables-legacy-restore`` and ``iptables-nft-restore`` (ip6tables for IPv6), once
  the nfacct objects the options name exist, and the namespace then holds exactly the payload;
* the node's tables after a first sync (payload plus jump rules and canaries), written in our
  ``iptables-save`` form, load with a plain ``iptables-restore``, and ``iptables-save`` prints
  back exactly that text (apart from its ``#`` lines and, on legacy, the order of the tables);
* nothing a manifest can say, even with the longest names, adds a word to a rule;
* free text (comments, log prefixes) and single rules of many modules: iptables-save's line is
  what render_save makes of the parsed rule; the differences these tests found are fixed and kept as cases.

Hypothesis examples share the test's ``netns_factory`` (a function-scoped fixture, hence the
suppressed health check): each example makes its own namespaces, all removed when the test ends.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings

from netns_tests.conftest import NetnsRegistry
from netns_tests.restore import BACKENDS, add_nfacct, restore, save, strip_save_comments
from proxyctl.backends.iptables import IptablesOptions, compile_ruleset
from proxyctl.backends.iptables.node_state import after_first_sync
from proxyctl.backends.iptables.options import (
    CT_INVALID_COUNTER,
    LOCALHOST_NODEPORT_COUNTER,
    LocalDetector,
    masquerade_mark,
)
from proxyctl.brain.build import build_views
from proxyctl.cluster.manifests import parse_object
from proxyctl.cluster.objects import ClusterState, EndpointSlice, Service
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Opt, Rule, Ruleset
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.rules.iptables.render import render_restore
from proxyctl.rules.iptables.save import render_save
from tests.strategies import (
    NODE_NAME,
    compile_inputs,
    endpoint_slice_manifest,
    longest_label,
    longest_subdomain,
    service_manifest,
)

# The order iptables-save prints tables in. nft: a fixed order (iptables' enum nft_table_type);
# legacy: /proc/net/ip_tables_names, newest table first, so it depends on the namespace's history.
NFT_SAVE_ORDER = ("mangle", "security", "raw", "filter", "nat")

# PROXYCTL_KERNEL_EXAMPLES=500 for a thorough run; CI keeps to a modest number.
KERNEL_SETTINGS = settings(
    max_examples=int(os.environ.get("PROXYCTL_KERNEL_EXAMPLES", "25")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


def compile_payload(state, family, opts) -> Ruleset:
    return compile_ruleset(build_views(state, family, NODE_NAME), opts)


def with_builtins(payload: Ruleset) -> Ruleset:
    """What a namespace holds after the payload is restored into it: each table's built-in
    chains (policy ACCEPT, no rules) and the payload's chains."""
    rs = Ruleset(family=payload.family)
    for tname, table in payload.tables.items():
        t = rs.table(tname)
        for b in BUILTIN_CHAINS[tname]:
            t.chain(b, policy="ACCEPT")
        for chain in table.chains.values():
            t.chain(chain.name).rules = list(chain.rules)
    return rs


def split_tables(save_text: str) -> list[tuple[str, str]]:
    """(table, its block from ``*table`` to ``COMMIT``) in the order printed."""
    out: list[tuple[str, str]] = []
    for line in save_text.splitlines(keepends=True):
        if line.startswith("*"):
            out.append((line[1:].strip(), ""))
        if out:
            out[-1] = (out[-1][0], out[-1][1] + line)
    return out


def expected_table_order(backend: str, created: list[str]) -> list[str]:
    """The order iptables-save prints tables that were created in ``created`` order."""
    if backend == "legacy":
        return list(reversed(created))
    return [t for t in NFT_SAVE_ORDER if t in created]


def assert_same_save(printed: str, ours: str, backend: str) -> None:
    """Each table's block identical; the table order that of the backend (see NFT_SAVE_ORDER)."""
    got, want = split_tables(printed), split_tables(ours)
    assert dict(got) == dict(want), backend
    assert [t for t, _ in got] == expected_table_order(backend, [t for t, _ in want]), backend


def kernel_save_form(ns: str, backend: str, family: str) -> str:
    """iptables-save of ``ns``, parsed and rendered back in our save form."""
    return render_save(parse_rules(save(ns, backend=backend, family=family), source=f"{backend}-save",
                                   family=family).ruleset)


@KERNEL_SETTINGS
@given(inputs=compile_inputs(kernel=True, max_services=10))
def test_payload_restores_on_both_backends(netns_factory, inputs):
    state, family, opts = inputs
    payload = compile_payload(state, family, opts)
    text = render_restore(payload)
    want = render_save(with_builtins(payload))
    for backend in BACKENDS:
        ns = netns_factory(f"payload-{backend}")
        add_nfacct(ns, *sorted(opts.nfacct))
        restore(ns, text, backend=backend, family=family, noflush=True, counters=True)
        assert_same_save(kernel_save_form(ns, backend, family), want, backend)


@KERNEL_SETTINGS
@given(inputs=compile_inputs(kernel=True, max_services=10))
def test_save_form_is_what_the_kernel_prints(netns_factory, inputs):
    state, family, opts = inputs
    node = after_first_sync(compile_payload(state, family, opts))
    text = render_save(node)
    for backend in BACKENDS:
        ns = netns_factory(f"save-{backend}")
        add_nfacct(ns, *sorted(opts.nfacct))
        restore(ns, text, backend=backend, family=family, noflush=False, counters=False)
        printed = strip_save_comments(save(ns, backend=backend, family=family))
        assert_same_save(printed, text, backend)
        if backend == "nft":  # the order we write is nft's: the whole text is what the kernel prints
            assert printed == text


# --- nothing a manifest can say adds a word to a rule --------------------------------------------

LONG_NODE = longest_subdomain()


def longest_names_state() -> ClusterState:
    """Dual-stack Services in a 63-character namespace, 63-character names and port names holding
    every allowed character, exercising every per-service chain (SVC, SVL, EXT, FW, SEP, affinity,
    health check) and both kinds of no-endpoint rules; slices and node with 253-character names."""
    ns = longest_label("")
    lb, np, bare, remote = (longest_label(c) for c in "stuv")
    ports = [{"name": longest_label(""), "port": 80, "protocol": "TCP", "nodePort": 30080},
             {"name": longest_label("u"), "port": 53, "protocol": "UDP", "nodePort": 30053},
             {"name": longest_label("v"), "port": 443, "protocol": "TCP", "nodePort": 30443}]
    v4v6 = {"external_ips": ["203.0.113.7", "2001:db8:ff::7"]}
    objs = [
        service_manifest(ns, lb, ports, cluster_ips=["10.96.0.10", "fd00:10:96::10"], svc_type="LoadBalancer",
                         ingress=["203.0.113.10", "2001:db8:ff::10"],
                         source_ranges=["192.168.0.0/24", "2001:db8:1::/120"], affinity="ClientIP", etp="Local",
                         health_check_node_port=30999, **v4v6),
        service_manifest(ns, np, ports, cluster_ips=["fd00:10:96::11", "10.96.0.11"], svc_type="NodePort", itp="Local",
                         **v4v6),
        service_manifest(ns, bare, ports[:1], cluster_ips=["10.96.0.12", "fd00:10:96::12"], **v4v6),
        service_manifest(ns, remote, [{**p, "nodePort": p["nodePort"] + 1} for p in ports],
                         cluster_ips=["10.96.0.13", "fd00:10:96::13"], svc_type="NodePort", etp="Local", **v4v6),
    ]
    for i, name in enumerate((lb, np, remote)):
        for family, base in (("IPv4", "10.244.0."), ("IPv6", "fd00:10:244::")):
            endpoints = [{"addresses": [f"{base}{10 * i + j + 1}"], "conditions": {"ready": j != 2},
                          "nodeName": LONG_NODE if j % 2 == 0 and name != remote else "other"} for j in range(3)]
            slice_name = longest_subdomain(253 - 8) + f"-{i}-{family.lower()}"
            objs.append(endpoint_slice_manifest(ns, slice_name, name, family, endpoints,
                                                [{"name": p["name"], "port": 8000 + j, "protocol": p["protocol"]}
                                                 for j, p in enumerate(ports)]))
    parsed = [parse_object(o, source="longest-names") for o in objs]
    return ClusterState(services=tuple(p for p in parsed if isinstance(p, Service)),
                        endpoint_slices=tuple(p for p in parsed if isinstance(p, EndpointSlice)))


def longest_names_options(family: str) -> IptablesOptions:
    v4 = family == "IPv4"
    return IptablesOptions(
        family=family, masquerade_mark=masquerade_mark(31), localhost_node_ports=True,
        detector=LocalDetector.by_cidr("10.244.0.0/16" if v4 else "fd00:10:244::/64"),
        node_ip="192.168.0.2" if v4 else "2001:db8:1::2", random_fully=True,
        nfacct=frozenset({CT_INVALID_COUNTER, LOCALHOST_NODEPORT_COUNTER}))


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
def test_longest_names_stay_inside_their_rules(netns_factory, family):
    state = longest_names_state()
    payload = compile_ruleset(build_views(state, family, LONG_NODE), longest_names_options(family))
    text = render_restore(payload)
    for kind in (":KUBE-SVC-", ":KUBE-SVL-", ":KUBE-EXT-", ":KUBE-FW-", ":KUBE-SEP-", "--rcheck",
                 "health check node port", "has no endpoints", "has no local endpoints"):
        assert kind in text, f"the case no longer exercises {kind}"
    rule_lines = [line for line in text.splitlines() if line.startswith("-A ")]
    assert len(rule_lines) == payload.rule_count()
    expected = [(t.name, c.name, r) for t in payload.tables.values() for c in t.chains.values() for r in c.rules]
    for line, (table, chain, rule) in zip(rule_lines, expected, strict=True):
        one = parse_rules(f"*{table}\n:{chain} - [0:0]\n{line}\nCOMMIT\n", source="line", family=family)
        assert one.ruleset.rule_count() == 1, line
        assert one.ruleset.tables[table].chains[chain].rules == [rule], line
    longest = max(len((r.comment or "").encode()) for _, _, r in expected)
    assert 240 <= longest <= 255, f"longest comment has {longest} bytes"
    for backend in BACKENDS:
        ns = netns_factory(f"longest-{backend}")
        add_nfacct(ns, CT_INVALID_COUNTER, LOCALHOST_NODEPORT_COUNTER)
        restore(ns, text, backend=backend, family=family)
        assert_same_save(kernel_save_form(ns, backend, family), render_save(with_builtins(payload)), backend)


# --- free text in the save form: what iptables-save prints ---------------------------------------
# iptables-save prints comments and log prefixes with xtables_save_string(): bare when the text
# is only [A-Za-z0-9_-], else in double quotes with '"', '\' and "'" backslash-escaped.

def _known(reason: str):
    """A difference these tests once found between render_save and iptables-save, now fixed; the
    reason says what iptables-save prints."""
    return ()


FREE_TEXT = [
    pytest.param(("--comment", "ns1/svc1:p80 cluster IP"), id="kube-proxy-comment"),
    pytest.param(("--comment", ""), id="empty"),
    pytest.param(("--comment", 'say "hi"'), id="double-quote"),
    pytest.param(("--comment", "back\\slash"), id="backslash"),
    pytest.param(("--comment", "tab\there"), id="tab"),
    pytest.param(("--comment", "caf\u00e9"), id="non-ascii"),
    pytest.param(("--comment", "!"), id="bang"),
    pytest.param(("--comment", "a\x85b"), id="unicode-next-line"),
    pytest.param(("--log-prefix", "my prefix: "), id="log-prefix-quoted"),
    pytest.param(("--comment", "abc"), id="bare-word", marks=_known(
        "iptables-save prints --comment abc bare; render_save always quotes")),
    pytest.param(("--comment", "-x"), id="bare-dash-word", marks=_known(
        "iptables-save prints --comment -x bare; render_save always quotes")),
    pytest.param(("--comment", "it's"), id="single-quote", marks=_known(
        "iptables-save escapes ' as \\'; render_save does not")),
    pytest.param(("--log-prefix", "plain"), id="log-prefix-bare", marks=_known(
        "iptables-save prints --log-prefix plain bare; render_save always quotes")),
]


def free_text_rule(flag: str, value: str) -> Rule:
    if flag == "--comment":
        return Rule((Opt("-m", "comment"), Opt("--comment", value)), "ACCEPT")
    return Rule((), "LOG", (Opt(flag, value),))


def printed_by_iptables_save(ns: str, backend: str, rule: Rule) -> tuple[str, str]:
    """(the line iptables-save prints for ``rule`` restored into ``ns``, our render_save line)."""
    rs = Ruleset()
    rs.table("filter").append("X", rule)
    restore(ns, render_restore(rs), backend=backend, noflush=False, counters=False)
    # split at "\n" only, as iptables does: str.splitlines() would also break at U+0085 and the like
    (printed,) = [line for line in save(ns, backend=backend).split("\n") if line.startswith("-A X ")]
    (ours,) = [line for line in render_save(rs).split("\n") if line.startswith("-A X ")]
    return printed, ours


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", [p.values[0] for p in FREE_TEXT], ids=[p.id for p in FREE_TEXT])
def test_free_text_reads_back_from_iptables_save(netns_factory, backend, opt):
    """Whatever iptables-save prints for a comment or log prefix, the parser reads the same text."""
    rule = free_text_rule(*opt)
    printed, _ = printed_by_iptables_save(netns_factory(f"text-{backend}"), backend, rule)
    back = parse_rules(f"*filter\n:X - [0:0]\n{printed}\nCOMMIT\n", source=f"{backend}-save").ruleset
    assert back.tables["filter"].chains["X"].rules == [rule]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", FREE_TEXT)
def test_free_text_save_form_matches_iptables_save(netns_factory, backend, opt):
    printed, ours = printed_by_iptables_save(netns_factory(f"text-{backend}"), backend, free_text_rule(*opt))
    assert printed == ours


# --- canonical form against the kernel, one rule at a time ----------------------------------------
# Rules written the way people (and kube-proxy) write them; iptables-save's line for each must be
# what render_save makes of the parsed rule. The differences these tests found are fixed; _diff keeps their story.

def _diff(rule: str, printed: str):
    """A rule whose canonical form once differed from iptables-save's line ``printed``."""
    return pytest.param(rule, id=rule)


CANONICAL_CASES = {
    "IPv4": [
        # kube-proxy's vocabulary
        "-m comment --comment \"ns/svc:p cluster IP\" -m tcp -p tcp -d 10.96.0.1 --dport 80 -j ACCEPT",
        "-m mark ! --mark 0x00004000/0x00004000 -j RETURN", "-j MARK --xor-mark 0x00004000",
        "-j MARK --or-mark 0x00004000", "-m mark --mark 5 -j ACCEPT", "-m mark --mark 0x1/0xffffffff -j ACCEPT",
        "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j ACCEPT", "-m addrtype --src-type LOCAL -j ACCEPT",
        "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        "-m conntrack --ctstate INVALID -m nfacct --nfacct-name acct-1 -j DROP",
        "-m statistic --mode random --probability 0.3333333333 -j ACCEPT",
        "-m recent --name KUBE-SEP-X --rcheck --seconds 10800 --reap -j ACCEPT", "-m recent --name KUBE-SEP-X --set",
        "-m udp -p udp -j DNAT --to-destination 10.244.0.5:53", "-s 10.244.0.0/16 -j ACCEPT",
        "! -s 10.244.0.5 -j ACCEPT",
        "-i veth+ -j ACCEPT", "! -i cbr0 -j ACCEPT", "-j MASQUERADE --random-fully", "-j REJECT",
        # others that match
        "-p tcp -m multiport --dports 80,443 -j ACCEPT", "-m statistic --mode nth --every 3 --packet 0 -j ACCEPT",
        "-m iprange --src-range 10.0.0.1-10.0.0.9 -j ACCEPT", "-m pkttype --pkt-type unicast -j ACCEPT",
        "-m physdev --physdev-is-bridged -j ACCEPT", "-j MARK --and-mark 0xff", "-j MARK --set-mark 0x10",
        "-p tcp -j REJECT --reject-with tcp-reset", "-s 10.1.2.3/255.255.0.0 -j ACCEPT", "-p udp -m udp -j ACCEPT",
        "-m recent --set -j ACCEPT", "-m limit --limit 5/sec -j ACCEPT",
        # differences
        _diff("-s 0.0.0.0/0 -j ACCEPT", "-j ACCEPT"),
        _diff("-s 10.1.2.3/0 -j ACCEPT", "-j ACCEPT"),
        _diff("-m conntrack --ctorigsrc 10.0.0.1 -j ACCEPT", "--ctorigsrc 10.0.0.1 (no /32)"),
        _diff("-m conntrack --ctorigdst 10.0.0.1/32 -j ACCEPT", "--ctorigdst 10.0.0.1 (no /32)"),
        _diff("-p tcp -m tcp --tcp-flags ALL NONE -j ACCEPT", "--tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE"),
        _diff("-p tcp -m tcp --syn -j ACCEPT", "--tcp-flags FIN,SYN,RST,ACK SYN"),
        _diff("-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", "--ctstate RELATED,ESTABLISHED (bit order)"),
        _diff("-m conntrack --ctstate DNAT,NEW -j ACCEPT", "--ctstate NEW,DNAT"),
        _diff("-m state --state ESTABLISHED,RELATED -j ACCEPT", "--state RELATED,ESTABLISHED"),
        _diff("-m addrtype --src-type LOCAL,UNICAST -j ACCEPT", "--src-type UNICAST,LOCAL"),
        _diff("-m limit --limit 10/minute -j ACCEPT", "--limit 10/min"),
        _diff("-m limit --limit-burst 3 -j ACCEPT", "--limit 3/hour --limit-burst 3"),
        _diff("-m conntrack --ctorigsrcport 80:80 -j ACCEPT", "--ctorigsrcport 80"),
        _diff("-m conntrack --ctexpire 10:10 -j ACCEPT", "--ctexpire 10"),
        _diff("-p tcp -m tcp --sport 80:80 -j ACCEPT", "--sport 80"),
        _diff("-p tcp -m tcp --dport 0:65535 -j ACCEPT", "-p tcp -m tcp -j ACCEPT (full range dropped)"),
        _diff("-p 17 -j ACCEPT", "-p udp"),
        _diff("-m comment --comment x -m comment --comment y -j ACCEPT",
              "-m comment --comment x -m comment --comment y (a module loaded twice stays twice)"),
    ],
    "IPv6": [
        "-s 2001:db8::1 -j ACCEPT", "-d fd00:10:96::1 -p udp -m udp --dport 53 -j ACCEPT", "-j REJECT",
        "! -d ::1/128 -m addrtype --dst-type LOCAL -j ACCEPT",
        "-m recent --name X --rcheck --seconds 10 --reap -j ACCEPT",
        "-p tcp -m tcp -j DNAT --to-destination [fd00:10:244::5]:8080", "-p ipv6-icmp -j ACCEPT",
        _diff("-s ::/0 -j ACCEPT", "-j ACCEPT"),
        _diff("-s 2001:db8::/ffff:ffff:: -j ACCEPT", "-s 2001:db8::/32"),
        _diff("-m conntrack --ctorigsrc 2001:db8::1 -j ACCEPT", "--ctorigsrc 2001:db8::1 (no /128)"),
        _diff("-p icmpv6 -j ACCEPT", "-p ipv6-icmp"),
    ],
}


def _case_text(case) -> str:
    return case.values[0] if hasattr(case, "values") else case


def _table(rule: str) -> str:
    return "nat" if re.search(r"-j (DNAT|MASQUERADE)\b", rule) else "filter"


@pytest.fixture(scope="module")
def kernel_canonical_lines():
    """For each family and backend, iptables-save's line for every case, restored once into one
    namespace (each rule in its table: DNAT and MASQUERADE in nat, the rest in filter)."""
    registry = NetnsRegistry()
    out: dict[tuple[str, str, str], str] = {}
    try:
        for family, cases in CANONICAL_CASES.items():
            by_table: dict[str, list[str]] = {"filter": [], "nat": []}
            for case in cases:
                rule = _case_text(case)
                by_table[_table(rule)].append(rule)
            text = "".join(f"*{t}\n:X - [0:0]\n" + "".join(f"-A X {r}\n" for r in rules) + "COMMIT\n"
                           for t, rules in by_table.items())
            for backend in BACKENDS:
                ns = registry.create(f"canon-{backend}")
                add_nfacct(ns, "acct-1")
                restore(ns, text, backend=backend, family=family, noflush=False, counters=False)
                printed = save(ns, backend=backend, family=family).split("\n")
                for tname, rules in by_table.items():
                    block = printed[printed.index(f"*{tname}"):]
                    lines = [line for line in block[:block.index("COMMIT")] if line.startswith("-A X ")]
                    assert len(lines) == len(rules)
                    out.update({(family, backend, r): line for r, line in zip(rules, lines, strict=True)})
        yield out
    finally:
        registry.cleanup()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("family", "rule"), [
    pytest.param(f, c, marks=getattr(c, "marks", ()), id=f"{f}: {_case_text(c)}")
    for f, cases in CANONICAL_CASES.items() for c in cases])
def test_canonical_form_matches_iptables_save(kernel_canonical_lines, family, rule, backend):
    rule = _case_text(rule)
    table = _table(rule)
    ours = render_save(parse_rules(f"*{table}\n:X - [0:0]\n-A X {rule}\nCOMMIT\n", family=family).ruleset)
    (line,) = [x for x in ours.split("\n") if x.startswith("-A X ")]
    assert line == kernel_canonical_lines[(family, backend, rule)]
