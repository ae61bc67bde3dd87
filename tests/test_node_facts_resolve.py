"""Precedence between the sources of node facts: flags > config > facts file > Node object > discovery."""

from __future__ import annotations

import pytest

from proxyctl.cluster.objects import Node
from proxyctl.errors import ConfigError, InputError, KernelError
from proxyctl.node.facts import IPV4, IPV6, NodeFacts
from proxyctl.node.resolve import resolve_node_facts

FILE = NodeFacts(
    name="file-node",
    node_ips={IPV4: "192.168.0.2", IPV6: "2001:db8::2"},
    addresses={"lo": ("127.0.0.1/8",), "eth0": ("192.168.0.2/24", "2001:db8::2/64")},
    random_fully=True,
    nfacct=("ct_state_invalid_dropped_pkts",),
    tcp_be_liberal=True,
)
DISCOVERED = NodeFacts(
    name="discovered-node",
    node_ips={IPV4: "10.9.0.9", IPV6: "fd00::9"},
    addresses={"lo": ("127.0.0.1/8", "::1/128"), "ens3": ("10.9.0.9/16", "fd00::9/64")},
    random_fully=False,
    nfacct=("localhost_nps_accepted_pkts",),
    tcp_be_liberal=False,
)
NODE = Node(name="file-node", internal_ips=("192.168.7.7", "2001:db8::7"), external_ips=("203.0.113.7",))


class Discovery:
    """A discover callable that counts its calls."""

    def __init__(self, facts: NodeFacts = DISCOVERED):
        self.facts = facts
        self.calls = 0

    def __call__(self) -> NodeFacts:
        self.calls += 1
        return self.facts


# --- the name ---------------------------------------------------------------------------------

NAME_CASES = [
    # (case, kwargs, expected name)
    ("flag beats everything", dict(hostname_override_flag="Flag-Node", config_hostname_override="cfg",
                                   facts_file=FILE), "flag-node"),
    ("empty flag is no flag", dict(hostname_override_flag="", config_hostname_override="cfg"), "cfg"),
    ("config beats file", dict(config_hostname_override="  Cfg-Node ", facts_file=FILE), "cfg-node"),
    ("file beats Node object", dict(facts_file=FILE, node_object=NODE), "file-node"),
    ("Node object beats discovery", dict(node_object=Node(name="api-node")), "api-node"),
    ("discovery last", dict(), "discovered-node"),
    ("nameless file: discovery", dict(facts_file=NodeFacts(), discover=Discovery()), "discovered-node"),
]


@pytest.mark.parametrize("kwargs, expected", [c[1:] for c in NAME_CASES], ids=[c[0] for c in NAME_CASES])
def test_name_precedence(kwargs: dict, expected: str):
    kwargs.setdefault("discover", Discovery())
    assert resolve_node_facts(**kwargs).name == expected


def test_offline_without_a_name_source_leaves_the_name_empty():
    assert resolve_node_facts().name == ""
    assert resolve_node_facts(facts_file=NodeFacts(addresses=FILE.addresses)).name == ""


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(hostname_override_flag="   "), InputError, "--hostname-override: an empty host name is invalid"),
    (dict(config_hostname_override=" \t"), ConfigError, "hostnameOverride: an empty host name is invalid"),
])
def test_blank_overrides_are_errors_not_fallbacks(kwargs: dict, error: type, message: str):
    with pytest.raises(error) as info:
        resolve_node_facts(discover=Discovery(), **kwargs)
    assert str(info.value) == message


def test_a_node_object_for_another_node_is_an_error():
    with pytest.raises(InputError) as info:
        resolve_node_facts(hostname_override_flag="node-a", node_object=Node(name="node-b"))
    assert str(info.value) == "the Node object is 'node-b' but this node is 'node-a' (from --hostname-override)"


# --- the node IPs -----------------------------------------------------------------------------

IP_CASES = [
    # (case, kwargs, expected node_ips)
    ("flags beat everything",
     dict(node_ip_flags=["10.0.0.1", "fd00::1"], config_bind_address="10.0.0.2", facts_file=FILE, node_object=NODE),
     {IPV4: "10.0.0.1", IPV6: "fd00::1"}),
    ("one flag per family; the other family falls through",
     dict(node_ip_flags=["fd00::1"], facts_file=FILE), {IPV4: "192.168.0.2", IPV6: "fd00::1"}),
    ("a comma-separated dual-stack flag",
     dict(node_ip_flags=["10.0.0.1,fd00::1"]), {IPV4: "10.0.0.1", IPV6: "fd00::1"}),
    ("bindAddress sets its own family only",
     dict(config_bind_address="10.0.0.2", facts_file=FILE), {IPV4: "10.0.0.2", IPV6: "2001:db8::2"}),
    ("IPv6 bindAddress",
     dict(config_bind_address="fd00::2", node_object=NODE), {IPV4: "192.168.7.7", IPV6: "fd00::2"}),
    ("bindAddress 0.0.0.0 is no node IP", dict(config_bind_address="0.0.0.0", facts_file=FILE), FILE.node_ips),
    ("bindAddress :: is no node IP", dict(config_bind_address="::", facts_file=FILE), FILE.node_ips),
    ("empty bindAddress is no node IP", dict(config_bind_address="", node_object=NODE),
     {IPV4: "192.168.7.7", IPV6: "2001:db8::7"}),
    ("bindAddress read sloppily like kube-proxy", dict(config_bind_address="010.000.0.2", node_object=NODE),
     {IPV4: "10.0.0.2", IPV6: "2001:db8::7"}),
    ("file beats Node object", dict(facts_file=FILE, node_object=NODE), FILE.node_ips),
    ("Node object fills a family the file lacks",
     dict(facts_file=NodeFacts(name="file-node", node_ips={IPV6: "2001:db8::2"}), node_object=NODE),
     {IPV4: "192.168.7.7", IPV6: "2001:db8::2"}),
    ("Node object beats discovery", dict(node_object=NODE), {IPV4: "192.168.7.7", IPV6: "2001:db8::7"}),
    ("discovery last", dict(), DISCOVERED.node_ips),
    ("discovery fills a family nothing else gives", dict(node_ip_flags=["10.0.0.1"]),
     {IPV4: "10.0.0.1", IPV6: "fd00::9"}),
    ("discovery adds no family to a facts file", dict(facts_file=NodeFacts(node_ips={IPV4: "192.168.0.2"})),
     {IPV4: "192.168.0.2"}),
]


@pytest.mark.parametrize("kwargs, expected", [c[1:] for c in IP_CASES], ids=[c[0] for c in IP_CASES])
def test_node_ip_precedence(kwargs: dict, expected: dict):
    kwargs.setdefault("discover", Discovery())
    assert resolve_node_facts(**kwargs).node_ips == expected


NODE_OBJECT_CASES = [
    # (case, internal, external, expected) -- kube-proxy's GetNodeHostIPs, per family
    ("first InternalIP per family", ("10.0.0.1", "10.0.0.2", "fd00::1", "fd00::2"), (),
     {IPV4: "10.0.0.1", IPV6: "fd00::1"}),
    ("InternalIP beats an earlier-listed ExternalIP of the family", ("fd00::1", "10.0.0.1"), ("203.0.113.1",),
     {IPV4: "10.0.0.1", IPV6: "fd00::1"}),
    ("ExternalIP when no InternalIP of the family", ("10.0.0.1",), ("203.0.113.1", "2001:db8::1"),
     {IPV4: "10.0.0.1", IPV6: "2001:db8::1"}),
    ("only ExternalIPs", (), ("203.0.113.1", "203.0.113.2"), {IPV4: "203.0.113.1"}),
    ("unparseable addresses are skipped", ("not-an-ip", "10.0.0.1"), (), {IPV4: "10.0.0.1"}),
    ("no addresses", (), (), {}),
]


@pytest.mark.parametrize("internal, external, expected", [c[1:] for c in NODE_OBJECT_CASES],
                         ids=[c[0] for c in NODE_OBJECT_CASES])
def test_node_object_ips(internal: tuple, external: tuple, expected: dict):
    node = Node(name="n", internal_ips=internal, external_ips=external)
    assert resolve_node_facts(node_object=node).node_ips == expected


def test_node_ips_come_out_ipv4_first():
    facts = resolve_node_facts(node_ip_flags=["fd00::1", "10.0.0.1"])
    assert list(facts.node_ips) == [IPV4, IPV6]


@pytest.mark.parametrize("flags, message", [
    (["10.0.0.300"], "--node-ip: '10.0.0.300' is not an IP address"),
    (["10.0.0.1/24"], "--node-ip: '10.0.0.1/24' is not an IP address"),
    (["0.0.0.0"], "--node-ip: '0.0.0.0' is not a node IP (it is the unspecified address)"),
    (["10.0.0.1", "10.0.0.2"], "--node-ip: two IPv4 addresses (10.0.0.1, 10.0.0.2); give one per family"),
])
def test_bad_node_ip_flags(flags: list, message: str):
    with pytest.raises(InputError) as info:
        resolve_node_facts(node_ip_flags=flags)
    assert str(info.value) == message


def test_bad_bind_address_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^bindAddress: 'eth0' is not an IP address$"):
        resolve_node_facts(config_bind_address="eth0")


# --- everything else, and when discovery runs -------------------------------------------------

def test_the_file_supplies_addresses_and_capabilities_without_discovery():
    discovery = Discovery()
    facts = resolve_node_facts(facts_file=FILE, discover=discovery)
    assert facts == FILE
    assert discovery.calls == 0


def test_discovery_supplies_them_without_a_file_and_runs_once():
    discovery = Discovery()
    facts = resolve_node_facts(hostname_override_flag="n", node_ip_flags=["10.0.0.1", "fd00::1"],
                               discover=discovery)
    assert facts == NodeFacts(name="n", node_ips={IPV4: "10.0.0.1", IPV6: "fd00::1"},
                              addresses=DISCOVERED.addresses, random_fully=False,
                              nfacct=DISCOVERED.nfacct, tcp_be_liberal=False)
    assert discovery.calls == 1


def test_a_nameless_file_asks_discovery_for_the_name_only():
    discovery = Discovery()
    nameless = NodeFacts(node_ips={IPV4: "192.168.0.2"}, addresses=FILE.addresses, nfacct=("x",))
    facts = resolve_node_facts(facts_file=nameless, discover=discovery)
    assert facts == NodeFacts(name="discovered-node", node_ips={IPV4: "192.168.0.2"},
                              addresses=FILE.addresses, nfacct=("x",))
    assert discovery.calls == 1


def test_named_file_with_partial_node_ips_does_not_discover():
    discovery = Discovery()
    resolve_node_facts(facts_file=NodeFacts(name="n", node_ips={IPV4: "192.168.0.2"}), discover=discovery)
    assert discovery.calls == 0


def test_offline_without_file_gives_empty_values():
    assert resolve_node_facts(hostname_override_flag="n") == NodeFacts(name="n")


def test_discovery_errors_propagate():
    def broken() -> NodeFacts:
        raise KernelError("boom", argv=("nfacct", "list"))

    with pytest.raises(KernelError, match="boom"):
        resolve_node_facts(discover=broken)


def test_the_result_does_not_share_the_file_s_dicts():
    facts = resolve_node_facts(facts_file=FILE)
    assert facts.addresses == FILE.addresses and facts.addresses is not FILE.addresses
    assert facts.node_ips is not FILE.node_ips
