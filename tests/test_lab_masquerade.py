"""How the live trace decides a probe was masqueraded: by the address the pod saw, never by a port."""

from __future__ import annotations

from proxyctl.lab.live import Vantage, _category_views
from proxyctl.lab.probe import Answer, ConntrackEntry, ProbeResult

VANTAGE = Vantage("client", "ns-client", "10.0.0.2", "node", "ns-node", "eth0")
DEST = "10.180.0.1:80"


def _probe(i: int, seen: str) -> ProbeResult:
    return ProbeResult(i, "tcp", "answered", ("10.0.0.2", 40000 + i), Answer("pod", f"{seen}:{40000 + i}", DEST))


def _entry(reply_dst: str, reply_dport: int) -> ConntrackEntry:
    return ConntrackEntry("tcp", "10.0.0.2", 40000, "172.30.0.41", 80, "10.180.0.1", 80, reply_dst, reply_dport)


def _masqueraded(probes, ct) -> int:
    views = _category_views(VANTAGE, probes, ct, [DEST] * len(probes), {DEST: 1.0}, {DEST: False})
    return views[0].masqueraded


def test_a_source_port_rewrite_alone_is_not_masquerade():
    # conntrack moved the source port (the old one still had an entry): same address, not masquerade
    assert _masqueraded([_probe(0, "10.0.0.2")], {0: _entry("10.0.0.2", 1024)}) == 0


def test_an_address_rewrite_is_masquerade():
    assert _masqueraded([_probe(0, "192.0.2.1")], {0: _entry("192.0.2.1", 40000)}) == 1
    # conntrack says the address was rewritten even if the answer is missing its peer change
    assert _masqueraded([_probe(0, "10.0.0.2")], {0: _entry("192.0.2.1", 40000)}) == 1


def test_no_rewrite_is_not_masquerade():
    assert _masqueraded([_probe(0, "10.0.0.2")], {0: _entry("10.0.0.2", 40000)}) == 0
