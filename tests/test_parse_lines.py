"""The parser reads a dump a chunk at a time; the lines must be exactly ``text.split("\\n")``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxyctl.rules.iptables import parse


@given(st.text(st.sampled_from("ab \n\r\t"), max_size=80), st.integers(1, 9))
def test_chunked_lines_are_the_split_lines(text, chunk):
    old = parse._CHUNK
    parse._CHUNK = chunk
    try:
        assert list(parse._lines(text)) == text.split("\n")
    finally:
        parse._CHUNK = old


def test_line_counters_win_over_a_rules_own_counters():
    from proxyctl.rules.iptables.parse import parse_rules

    text = ("*filter\n:X - [0:0]\n[7:700] -A X -c 1 100 -j ACCEPT\n-A X -c 2 200 -j DROP\n"
            "[3:30] -A X -j RETURN\nCOMMIT\n")
    rules = parse_rules(text).ruleset.tables["filter"].chains["X"].rules
    assert [r.counters for r in rules] == [(7, 700), (2, 200), (3, 30)]
