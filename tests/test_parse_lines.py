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
