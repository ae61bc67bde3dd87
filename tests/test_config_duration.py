"""Go durations: what time.ParseDuration accepts and Duration.String() writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxyctl.config.duration import (
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


@pytest.mark.parametrize(("text", "ns"), [
    ("0", 0),
    ("+0", 0),
    ("-0", 0),
    ("30s", 30 * 10**9),
    ("-5s", -5 * 10**9),
    ("+5s", 5 * 10**9),
    ("5.6s", 5_600_000_000),
    ("5.s", 5 * 10**9),
    (".5s", 500_000_000),
    ("1.004s", 1_004_000_000),
    ("10ns", 10),
    ("11us", 11_000),
    ("12\u00b5s", 12_000),  # micro sign
    ("12\u03bcs", 12_000),  # Greek mu
    ("13ms", 13_000_000),
    ("15m", 900 * 10**9),
    ("16h", 16 * 3600 * 10**9),
    ("1.5h", 5400 * 10**9),
    ("3h30m", 12600 * 10**9),
    ("10.5s4m", 250_500_000_000),
    ("-2m3.4s", -123_400_000_000),
    ("1h2m3s4ms5us6ns", 3_723_004_005_006),
    ("15m0s", 900 * 10**9),
    ("24h0m0s", 86400 * 10**9),
    ("0.3333333333333333333h", 1200 * 10**9),
    ("0.830103483285477580700h", 2_988_372_539_827),  # Go truncates a long fraction the same way
    ("9223372036854775807ns", INT64_MAX),
    ("-9223372036854775808ns", INT64_MIN),
    ("9223372036s854ms775us807ns", INT64_MAX),
])
def test_parse_matches_go(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns
    assert parse_duration(text) == ns / 10**9


@pytest.mark.parametrize(("text", "message"), [
    ("", 'invalid duration "": empty'),
    ("30", 'missing unit in duration "30" ("30s" is 30 seconds)'),
    ("1s2", 'missing unit in duration "1s2"'),
    ("-", 'invalid duration "-": empty'),
    ("s", 'invalid duration "s"'),
    (".", 'invalid duration "."'),
    (".s", 'invalid duration ".s"'),
    ("1d", 'unknown unit "d" in duration "1d"'),
    ("1 s", 'unknown unit " s" in duration "1 s"'),
    (" 1s", 'invalid duration " 1s"'),
    ("9223372036854775808ns", 'invalid duration "9223372036854775808ns": out of range'),
    ("-9223372036854775809ns", 'invalid duration "-9223372036854775809ns": out of range'),
    ("3000000h", 'invalid duration "3000000h": out of range'),
])
def test_parse_rejects_what_go_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_duration(text)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"),
    (1, "1ns"),
    (1100, "1.1\u00b5s"),
    (2_200_000, "2.2ms"),
    (3_300_000_000, "3.3s"),
    (245 * 10**9, "4m5s"),
    (245_001_000_000, "4m5.001s"),
    (18367_001_000_000, "5h6m7.001s"),
    (480_000_000_001, "8m0.000000001s"),
    (INT64_MAX, "2562047h47m16.854775807s"),
    (INT64_MIN, "-2562047h47m16.854775808s"),
    (-1500, "-1.5\u00b5s"),
])
def test_format_matches_go(ns: int, text: str) -> None:
    assert format_duration_ns(ns) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (30, "30s"), (900, "15m0s"), (3600, "1h0m0s"), (0, "0s"), (0.25, "250ms"), (86400, "24h0m0s"),
    (1.5, "1.5s"), (0.001, "1ms"), (-1, "-1s"), (90.5, "1m30.5s"),
])
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_whole_milliseconds_round_trip(ms: int) -> None:
    seconds = ms / 1000
    text = format_duration(seconds)
    assert format_duration(parse_duration(text)) == text
    assert parse_duration(text) == seconds


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_nanoseconds_round_trip(ns: int) -> None:
    assert parse_duration_ns(format_duration_ns(ns)) == ns


def test_format_rejects_non_numbers() -> None:
    with pytest.raises(ValueError):
        format_duration(float("nan"))
    with pytest.raises(TypeError):
        format_duration(True)
