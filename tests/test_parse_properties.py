"""Properties of the iptables-save / iptables-restore parser.

* Round trip: any ruleset (tests/strategies.py: random chains, core options, every module of
  canonical.MODULE_OPTIONS with plausible values, negations, comments with spaces, quotes and
  backslashes, extension targets, jumps and gotos) written as restore input parses back equal.
* The save form is a fixed point: parsing ``render_save(r)`` and rendering it again gives the
  same text.
* Fuzz: arbitrary text, line soup made of real dump fragments, and mutations of a real
  ``iptables-save`` dump either parse or raise RulesParseError naming a line of the input,
  and what parses renders as restore input without error.

Parser bugs these tests found are kept at the end as regression tests with their minimal inputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxyctl.errors import RulesParseError
from proxyctl.rules.iptables.model import Ruleset
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.rules.iptables.render import render_restore
from proxyctl.rules.iptables.save import render_save
from tests.strategies import rulesets

REAL_DUMP = Path(__file__).parent / "conformance/fixtures/real-kube-proxy/demo-iptables-nft/iptables-save.txt"
DUMP_LINES = REAL_DUMP.read_text().splitlines()

SCALE = float(os.environ.get("PROXYCTL_PROPERTY_SCALE", "1"))  # e.g. 50 for a thorough run
SETTINGS = settings(max_examples=int(100 * SCALE), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_SETTINGS = settings(max_examples=int(150 * SCALE), deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LINE_NUMBER = re.compile(r"^<fuzz>:(\d+): ")


def shape(rs: Ruleset) -> list:
    """Tables, chains (name, policy, rules without counters) and deleted chains, in order."""
    return [(t.name, [(c.name, c.policy, [r._replace(counters=None) for r in c.rules]) for c in t.chains.values()],
             list(t.deleted)) for t in rs.tables.values()]


# --- round trips ---------------------------------------------------------------------------------

@SETTINGS
@given(rulesets(max_chains=4, max_rules=4))
def test_restore_text_parses_back_to_the_same_ruleset(rs):
    text = render_restore(rs)
    parsed = parse_rules(text, source="generated", family=rs.family)
    assert shape(parsed.ruleset) == shape(rs)
    assert render_restore(parsed.ruleset) == text


@SETTINGS
@given(rulesets(max_chains=4, max_rules=4))
def test_save_form_is_a_fixed_point(rs):
    once = render_save(rs)
    parsed = parse_rules(once, source="saved", family=rs.family)
    assert render_save(parsed.ruleset) == once
    assert parsed.ruleset.rule_count() == rs.rule_count()


def test_real_dump_is_a_fixed_point():
    parsed = parse_rules(REAL_DUMP.read_text(), source=str(REAL_DUMP), family="IPv4")
    body = "".join(line + "\n" for line in DUMP_LINES if not line.startswith("#"))
    assert render_save(parsed.ruleset) == body


# --- fuzz ----------------------------------------------------------------------------------------

def parse_or_located_error(text: str) -> Ruleset | None:
    """Parse ``text``; a RulesParseError is fine if it names a line of the input (or the line
    after the last, for a missing COMMIT). Anything else propagates and fails the test."""
    try:
        return parse_rules(text, source="<fuzz>").ruleset
    except RulesParseError as e:
        m = LINE_NUMBER.match(str(e))
        assert m, f"error names no line: {e}"
        assert 1 <= int(m.group(1)) <= max(1, len(text.splitlines())), str(e)
        return None


FRAGMENTS = [
    "*filter", "*nat", "*mangle", "*raw", "*security", "*bogus", "COMMIT", "COMMIT extra", "# comment",
    ":INPUT ACCEPT [0:0]", ":KUBE-X - [0:0]", ":KUBE-X - [1:2]", ":KUBE-X DROP [0:0]", ":BAD", ":KUBE-X -",
    "-A KUBE-X -j ACCEPT", "-A KUBE-X", "-A INPUT -j KUBE-X", "-A KUBE-Y -j ACCEPT", "[3:4] -A KUBE-X -j DROP",
    "-I KUBE-X 1 -j RETURN", "-I KUBE-X 9 -j RETURN", "-D KUBE-X 1", "-D KUBE-X -j ACCEPT", "-N KUBE-Y", "-X KUBE-X",
    "-F KUBE-X", "-Z KUBE-X",
    "-A KUBE-X ! -s 10.0.0.0/8 -m comment --comment \"a \\\"b\\\" c\" -j MARK --or-mark 0x4000",
    "-A KUBE-X -m comment --comment \"unterminated",
    "-A KUBE-X -p tcp -m tcp --dport 80 -j DNAT --to-destination 1.2.3.4:80",
    "-A KUBE-X !", "-A KUBE-X -j", "-A KUBE-X word", "-A KUBE-X -m statistic --mode random --probability 0.5 -g KUBE-X",
    "", "   ", "\t", "*", ":", "-A", "[0:0]",
]


@FUZZ_SETTINGS
@given(st.text(max_size=300))
@example("*filter\n:X - [0:0]\n-A X\n")  # no COMMIT
@example("COMMIT\n")
@example("*filter\n*nat\n")
def test_arbitrary_text_parses_or_names_a_line(text):
    rs = parse_or_located_error(text)
    if rs is not None:
        render_restore(rs)


@FUZZ_SETTINGS
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(st.characters(codec="utf-8"), max_size=20)),
                max_size=15))
def test_line_soup_parses_or_names_a_line(lines):
    rs = parse_or_located_error("\n".join(lines) + "\n")
    if rs is not None:
        render_restore(rs)


@st.composite
def mutated_dumps(draw) -> str:
    """The real dump with 1..4 mutations: a line deleted, duplicated, moved or cut short, a
    character inserted, replaced or deleted, or the text truncated."""
    lines = list(DUMP_LINES)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "move", "cut", "insert", "replace", "remove",
                                     "truncate"]))
        line = lines[i]
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "move":
            lines.insert(draw(st.integers(0, len(lines) - 1)), lines.pop(i))
        elif kind == "cut":
            lines[i] = line[:draw(st.integers(0, len(line)))]
        elif kind in ("insert", "replace", "remove"):
            at = draw(st.integers(0, len(line)))
            char = draw(st.characters(codec="utf-8"))
            if kind == "insert":
                lines[i] = line[:at] + char + line[at:]
            elif kind == "replace":
                lines[i] = line[:at] + char + line[at + 1:]
            else:
                lines[i] = line[:at] + line[at + 1:]
        else:
            lines = lines[:i]
    return "\n".join(lines) + "\n"


@FUZZ_SETTINGS
@given(mutated_dumps())
def test_mutated_real_dump_parses_or_names_a_line(text):
    rs = parse_or_located_error(text)
    if rs is not None:
        render_restore(rs)


@FUZZ_SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_name_a_line(data):
    parse_or_located_error(data.decode("utf-8", errors="replace"))


# --- bugs these tests found, kept as regression tests with their minimal inputs -------------------

def in_chain(*lines: str) -> str:
    return "*filter\n:X - [0:0]\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"


def crash(text: str, error: type[Exception], id: str, *, save: bool = False):
    """A minimal input that once made parse_rules (or render_save) raise ``error``."""
    return pytest.param(text, id=id)


@pytest.mark.parametrize("text", [
    pytest.param(in_chain("-A X -c a b"), id="set-counters-not-numbers"),
    crash(in_chain("-I X \u00b2 -j ACCEPT"), ValueError, "insert-position-superscript-digit"),
    crash(in_chain("-I X 99999999999999999999 -j ACCEPT"), OverflowError, "insert-position-huge"),
    crash(in_chain("-A X -m mark --mark 1/zz", "-D X -m mark --mark 1/zz"), ValueError, "delete-bad-mark-mask"),
    crash(in_chain("-A X -j MARK --and-mark zz", "-D X -j MARK --and-mark zz"), ValueError, "delete-bad-and-mark"),
    crash(in_chain("-A X -m statistic --probability nan", "-D X -m statistic --probability nan"), ValueError,
          "delete-probability-nan"),
    crash(in_chain("-A X -m statistic --probability inf", "-D X -m statistic --probability inf"), OverflowError,
          "delete-probability-inf"),
])
def test_malformed_numbers_parse_or_name_a_line(text):
    """``-I`` positions are ASCII numbers within the chain; ``-D`` by rulespec compares canonical forms
    of rules whose numbers may be malformed (kept as written, so the delete finds its rule)."""
    try:
        parse_rules(text, source="<bug>")
    except RulesParseError as e:
        assert re.match(r"^<bug>:\d+: ", str(e))


@pytest.mark.parametrize("text", [
    crash(in_chain("-A X -m mark --mark 1/zz"), ValueError, "mark-mask-not-a-number", save=True),
    crash(in_chain("-A X -m statistic --probability 1e400"), OverflowError, "probability-infinite", save=True),
    crash(in_chain("-A X -m statistic --probability nan"), ValueError, "probability-nan", save=True),
])
def test_render_save_of_what_parses_does_not_crash(text):
    """canonical.mark_value and canonical.kernel_probability keep malformed numbers as written."""
    render_save(parse_rules(text, source="<bug>").ruleset)


def test_quoted_value_with_a_flag_like_word_round_trips():
    rs = parse_rules(in_chain('-A X --foo "a -b"')).ruleset
    assert rs.tables["filter"].chains["X"].rules[0].matches == (("--foo", "a -b", False),)
    again = parse_rules(render_restore(rs)).ruleset
    assert shape(again) == shape(rs)


def test_unquoted_comment_starting_with_a_dash():
    """iptables-save prints a comment of only [A-Za-z0-9_-] unquoted (xtables_save_string)."""
    rule = parse_rules(in_chain("-A X -m comment --comment -x -j ACCEPT")).ruleset.tables["filter"].chains["X"].rules[0]
    assert rule.comment == "-x"


def test_comment_with_a_unicode_line_separator():
    """iptables-restore splits lines at \\n only; str.splitlines() would also break at \\x85, \\u2028."""
    rule = parse_rules(in_chain('-A X -m comment --comment "a\x85b" -j ACCEPT')).ruleset.tables["filter"].chains["X"]
    assert rule.rules[0].comment == "a\x85b"
