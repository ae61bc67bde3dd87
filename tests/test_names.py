"""Name and label syntax checks: the API server's rules, and nothing unsafe ever accepted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyctl.cluster import names

UNSAFE = set(" \t\r\n\v\f\"'`\\$;#&|<>()[]{}*?!%,=+@~^:/") | {chr(c) for c in range(32)} | {"\x7f"}


@pytest.mark.parametrize("value", ["a", "abc", "a-b", "a1", "abc-123", "a" * 63])
def test_dns1035_label_accepts(value):
    assert names.is_dns1035_label(value) == []


@pytest.mark.parametrize("value", ["", "1abc", "-a", "a-", "A", "a_b", "a.b", "a b", "a\n", "a" * 64, 'a"'])
def test_dns1035_label_rejects(value):
    assert names.is_dns1035_label(value)


@pytest.mark.parametrize("value", ["a", "1abc", "123", "a-b", "0" * 63])
def test_dns1123_label_accepts(value):
    assert names.is_dns1123_label(value) == []


@pytest.mark.parametrize("value", ["", "-a", "a-", "Ab", "a.b", "a\n", "a\nb", "a" * 64, "ä"])
def test_dns1123_label_rejects(value):
    assert names.is_dns1123_label(value)


@pytest.mark.parametrize("value", ["a", "a.b", "node-1.example.com", "1.2.3.4", "a" * 253])
def test_dns1123_subdomain_accepts(value):
    assert names.is_dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", ["", ".a", "a.", "a..b", "a.-b", "A.b", "a_b", "a b", "a\n", "a" * 254])
def test_dns1123_subdomain_rejects(value):
    assert names.is_dns1123_subdomain(value)


def test_length_error_names_the_limit():
    assert names.is_dns1123_label("a" * 64) == ["must be at most 63 characters (has 64)"]


@pytest.mark.parametrize("value", ["http", "h2c", "a-b-c", "x" * 15, "8080a"])
def test_port_name_accepts(value):
    assert names.is_port_name(value) == []


@pytest.mark.parametrize("value, error", [
    ("", "must be lowercase letters, digits and '-' only"),
    ("8080", "must contain at least one letter (a-z)"),
    ("a--b", "must not contain '--'"),
    ("-ab", "must not start or end with '-'"),
    ("ab-", "must not start or end with '-'"),
    ("x" * 16, "must be at most 15 characters (has 16)"),
    ("HTTP", "must be lowercase letters, digits and '-' only"),
    ("ht tp", "must be lowercase letters, digits and '-' only"),
])
def test_port_name_rejects(value, error):
    assert error in names.is_port_name(value)


@pytest.mark.parametrize("value", ["app", "kubernetes.io/service-name", "a.b/C_d.e", "x/" + "a" * 63])
def test_qualified_name_accepts(value):
    assert names.is_qualified_name(value) == []


@pytest.mark.parametrize("value", ["", "/a", "a/", "a/b/c", "-a", "a b", "Example.com/a", "a/" + "b" * 64, "a\n"])
def test_qualified_name_rejects(value):
    assert names.is_qualified_name(value)


@pytest.mark.parametrize("value", ["", "a", "A-b_c.d", "true", "x" * 63])
def test_label_value_accepts(value):
    assert names.is_label_value(value) == []


@pytest.mark.parametrize("value", ["-a", "a-", "a b", "a\n", "a/b", "x" * 64, "é"])
def test_label_value_rejects(value):
    assert names.is_label_value(value)


def test_trailing_newline_is_not_accepted_by_any_check():
    # Python's "$" matches before a final newline; the checks must use the whole string.
    for check in (names.is_dns1035_label, names.is_dns1123_label, names.is_dns1123_subdomain,
                  names.is_port_name, names.is_qualified_name, names.is_label_value):
        assert check("abc\n"), check.__name__


CHECKS = [names.is_dns1035_label, names.is_dns1123_label, names.is_dns1123_subdomain,
          names.is_port_name, names.is_qualified_name, names.is_label_value]


# Arbitrary text, and text mostly made of name characters with a few dangerous ones mixed in
# (so that some generated values pass and the property is not vacuous).
NAMEISH = st.text(alphabet="abz019-._/A \"'\n\t\r\\`$;#\x00\u00e9\u2028", max_size=70)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(), NAMEISH), st.sampled_from(CHECKS))
def test_accepted_names_hold_no_unsafe_character(value, check):
    if check(value) == []:
        assert value.isascii()
        # qualified names keep their one '/', which is fine in a comment
        allowed = {"/"} if check is names.is_qualified_name else set()
        assert not (set(value) & (UNSAFE - allowed)), repr(value)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[a-z0-9][-a-z0-9.]{0,30}[a-z0-9]", fullmatch=True), st.sampled_from(CHECKS))
def test_likely_names_never_crash(value, check):
    assert isinstance(check(value), list)
