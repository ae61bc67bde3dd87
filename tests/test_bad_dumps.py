"""Broken iptables dumps: each gives one RulesParseError that names the line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyctl.errors import RulesParseError
from proxyctl.rules.iptables.parse import parse_rules

CORPUS = sorted((Path(__file__).parent / "bad_inputs" / "dumps").glob("*.txt"))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_broken_dump_names_the_problem(path):
    text = path.read_text()
    expect = text.splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(RulesParseError) as e:
        parse_rules(text, source=path.name)
    assert str(e.value).startswith(path.name + ":")
    if expect.startswith("line "):
        lineno, _, message = expect.partition(": ")
        assert e.value.line == int(lineno.split()[1])
        assert message in str(e.value)
    else:
        assert expect in str(e.value)


def test_corpus_is_not_empty():
    assert len(CORPUS) >= 10
