"""Reading and writing the node facts file (`--node-facts`)."""

from __future__ import annotations

import io
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyctl.errors import NodeFactsError
from proxyctl.node.facts import IPV4, IPV6, NodeFacts
from proxyctl.node.load import dump_node_facts, load_node_facts, parse_node_facts

DATA = Path(__file__).parent / "data" / "node_facts"
FIXTURES = sorted(DATA.rglob("node.yaml"))
KUBE_PROXY_TESTS = sorted((DATA / "kube-proxy").rglob("node.yaml"))
REAL_NODE = sorted((DATA / "real-kube-proxy").rglob("node.yaml"))


def fixture_id(path: Path) -> str:
    return str(path.parent.relative_to(DATA))


# --- the fixtures -----------------------------------------------------------------------------

def test_fixtures_were_copied():
    assert len(KUBE_PROXY_TESTS) == 10 and len(REAL_NODE) == 2


@pytest.mark.parametrize("path", KUBE_PROXY_TESTS, ids=fixture_id)
def test_kube_proxy_unit_test_node(path: Path):
    facts = load_node_facts(str(path))
    assert facts == NodeFacts(
        name="test-node",
        node_ips={IPV4: "192.168.0.2", IPV6: "2001:db8::1"},
        addresses={
            "lo": ("127.0.0.1/8", "::1/128"),
            "eth0": ("192.168.0.2/24", "192.168.1.2/24", "192.168.99.11/24", "2001:db8::1/64",
                     "2001:db8:1::2/64"),
        },
        random_fully=False,
        nfacct=("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"),
        tcp_be_liberal=False,
    )
    assert facts.node_ip(IPV6) == "2001:db8::1"
    assert facts.is_local("127.0.0.53")  # lo's whole prefix is local
    assert facts.is_local("192.168.1.2") and not facts.is_local("192.168.1.3")


@pytest.mark.parametrize("path", REAL_NODE, ids=fixture_id)
def test_real_kube_proxy_node(path: Path):
    facts = load_node_facts(str(path))
    assert facts == NodeFacts(
        name="anchor-node",
        node_ips={IPV4: "192.0.2.10"},
        addresses={"lo": ("127.0.0.1/8", "::1/128"), "anchor0": ("192.0.2.10/24",)},
        random_fully=True,
        nfacct=("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"),
        tcp_be_liberal=False,
    )
    assert facts.node_ip(IPV6) is None


@pytest.mark.parametrize("path", FIXTURES, ids=fixture_id)
def test_dump_reproduces_each_fixture_byte_for_byte(path: Path):
    assert dump_node_facts(load_node_facts(str(path))) == path.read_text()


# --- defaults and canonical forms -------------------------------------------------------------

def test_only_kind_is_required():
    assert parse_node_facts("kind: NodeFacts\n") == NodeFacts()


def test_null_sections_take_defaults():
    text = "kind: NodeFacts\nname:\nnodeIPs:\naddresses:\n  eth0:\niptables:\n  nfacct:\nconntrack:\n"
    assert parse_node_facts(text) == NodeFacts(addresses={"eth0": ()})


def test_partial_sections_take_defaults():
    facts = parse_node_facts("kind: NodeFacts\niptables: {nfacct: [a]}\nconntrack: {}\n")
    assert facts == NodeFacts(nfacct=("a",))


def test_addresses_and_ips_are_canonicalised_and_prefixes_kept():
    facts = parse_node_facts(
        "kind: NodeFacts\n"
        "nodeIPs: {IPv6: '2001:DB8:0::1'}\n"
        "addresses:\n  lo: ['::1/128', 127.0.0.1/8]\n  eth0: ['2001:DB8::0001/64', 10.1.2.3/0]\n")
    assert facts.node_ips == {IPV6: "2001:db8::1"}
    assert facts.addresses == {"lo": ("::1/128", "127.0.0.1/8"), "eth0": ("2001:db8::1/64", "10.1.2.3/0")}


def test_interface_order_and_address_order_are_kept():
    facts = parse_node_facts("kind: NodeFacts\naddresses:\n  zz0: [10.0.0.2/24, 10.0.0.1/24]\n  aa0: []\n")
    assert list(facts.addresses) == ["zz0", "aa0"]
    assert facts.addresses["zz0"] == ("10.0.0.2/24", "10.0.0.1/24")


def test_yaml_merge_keys_still_work():
    text = "kind: NodeFacts\nbase: &b {tcpBeLiberal: true}\n"
    with pytest.raises(NodeFactsError, match="base: unknown key"):
        parse_node_facts(text)
    facts = parse_node_facts("kind: NodeFacts\nconntrack:\n  <<: {tcpBeLiberal: true}\n")
    assert facts.tcp_be_liberal is True


def test_dump_of_empty_facts():
    assert dump_node_facts(NodeFacts()) == (
        "kind: NodeFacts\nname: ''\nnodeIPs: {}\naddresses: {}\n"
        "iptables:\n  randomFully: false\n  nfacct: []\nconntrack:\n  tcpBeLiberal: false\n")


def test_dump_quotes_what_yaml_would_misread():
    facts = NodeFacts(node_ips={IPV6: "1:2:3:4:5:6:7:8"}, addresses={"eth0": ("1:2:3:4:5:6:7:8/64",)})
    text = dump_node_facts(facts)
    assert "'1:2:3:4:5:6:7:8'" in text
    assert parse_node_facts(text) == facts


# --- reading files ----------------------------------------------------------------------------

def test_missing_file_names_the_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(NodeFactsError) as info:
        load_node_facts(str(path))
    assert info.value.lines() == [f"{path}: cannot read the node facts file: No such file or directory"]


def test_a_directory_is_not_a_file(tmp_path: Path):
    with pytest.raises(NodeFactsError, match=f"^{tmp_path}: cannot read the node facts file: Is a directory$"):
        load_node_facts(str(tmp_path))


def test_non_utf8_file(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: NodeFacts\nname: n\xe9\n")
    with pytest.raises(NodeFactsError) as info:
        load_node_facts(str(path))
    assert info.value.lines() == [f"{path}: not UTF-8 text (invalid byte at offset 23)"]


def test_stdin(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("kind: NodeFacts\nname: from-stdin\n"))
    assert load_node_facts("-").name == "from-stdin"


def test_every_problem_is_reported_at_once():
    with pytest.raises(NodeFactsError) as info:
        parse_node_facts("kind: NodeFacts\nname: A\nnodeIPs: {IPv4: x}\n", source="f.yaml")
    assert len(info.value.problems) == 2
    assert [p.field for p in info.value.problems] == ["name", "nodeIPs.IPv4"]
    assert all(p.source == "f.yaml" for p in info.value.problems)


# --- round trip and robustness (hypothesis) ---------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
node_names = st.one_of(st.just(""), st.lists(_label, min_size=1, max_size=3).map(".".join))
ipv4 = st.ip_addresses(v=4)
ipv6 = st.ip_addresses(v=6)
interfaces = st.one_of(
    st.tuples(ipv4, st.integers(0, 32)), st.tuples(ipv6, st.integers(0, 128))
).map(lambda t: f"{t[0]}/{t[1]}")
ifnames = st.text(string.ascii_letters + string.digits + "-_.@", min_size=1, max_size=15).filter(
    lambda s: s not in (".", ".."))
nfacct_names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=31)


@st.composite
def node_facts(draw) -> NodeFacts:
    node_ips = {}
    if draw(st.booleans()):
        node_ips[IPV4] = str(draw(ipv4))
    if draw(st.booleans()):
        node_ips[IPV6] = str(draw(ipv6))
    addresses = draw(st.dictionaries(ifnames, st.lists(interfaces, max_size=4, unique=True).map(tuple),
                                     max_size=4))
    return NodeFacts(
        name=draw(node_names),
        node_ips=node_ips,
        addresses=addresses,
        random_fully=draw(st.booleans()),
        nfacct=tuple(draw(st.lists(nfacct_names, max_size=4, unique=True))),
        tcp_be_liberal=draw(st.booleans()),
    )


@given(node_facts())
def test_dump_then_load_gives_the_same_facts(facts: NodeFacts):
    text = dump_node_facts(facts)
    again = parse_node_facts(text)
    assert again == facts
    assert list(again.addresses) == list(facts.addresses)
    assert dump_node_facts(again) == text


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=20), st.sampled_from(["10.0.0.1/24", "::1", "IPv4", "lo"]))
_yaml_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=3)),
    max_leaves=12,
)
_keys = st.sampled_from(["kind", "name", "nodeIPs", "addresses", "iptables", "conntrack", "other"])


@settings(max_examples=300)
@given(st.dictionaries(_keys, _yaml_values, max_size=6), st.booleans())
def test_any_document_gives_facts_or_a_node_facts_error(doc: dict, with_kind: bool):
    if with_kind:
        doc = {**doc, "kind": "NodeFacts"}
    text = yaml.safe_dump(doc)
    try:
        parse_node_facts(text, source="fuzz.yaml")
    except NodeFactsError as e:
        assert e.lines() and all(line.startswith("fuzz.yaml: ") for line in e.lines())


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_gives_facts_or_a_node_facts_error(text: str):
    try:
        parse_node_facts(text, source="fuzz.yaml")
    except NodeFactsError as e:
        assert e.lines()
