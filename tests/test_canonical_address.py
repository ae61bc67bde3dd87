"""canonical.address: the IPv4 host fast path gives what the ipaddress-based path gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxyctl.rules.iptables.canonical import _address, address

octets = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "010", "", "a", "٣"]))
texts = st.one_of(
    st.builds(lambda parts, suffix: ".".join(parts) + suffix, st.lists(octets, min_size=3, max_size=5),
              st.sampled_from(["", "", "/32", "/24", "/0", "/032", "/33", " ", "\n"])),
    st.text(st.sampled_from("0123456789./:af "), max_size=20),
)


@given(texts, st.sampled_from(["IPv4", "IPv6"]))
def test_fast_path_agrees_with_ipaddress(text, family):
    assert address(text, family) == _address(text, family)


def test_hosts_get_their_prefix_and_networks_lose_host_bits():
    assert address("10.1.2.3", "IPv4") == "10.1.2.3/32"
    assert address("10.1.2.3/32", "IPv4") == "10.1.2.3/32"
    assert address("10.1.2.3/8", "IPv4") == "10.0.0.0/8"
    assert address("fd00::1", "IPv6") == "fd00::1/128"
    assert address("010.1.2.3", "IPv4") == "010.1.2.3"  # not an address Python accepts: kept as written
