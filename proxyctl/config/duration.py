"""Go's time.Duration text form, which Kubernetes configuration files use for every period.

``parse_duration`` reads what Go's ``time.ParseDuration`` reads ("30s", "1h0m0s", "1.5h", "250ms",
"-1s", "0") and rejects what it rejects; ``format_duration`` writes what ``Duration.String()`` writes
("30s", "15m0s", "1h0m0s", "250ms", "0s"). Both work on whole nanoseconds underneath, as Go does;
the float-seconds functions are the convenient face, the ``_ns`` ones the exact one.
"""

from __future__ import annotations

import math
from decimal import Decimal

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

# Go's int64 Duration: a text that parses beyond this is an error there, so it is one here.
_MAX_MAGNITUDE = 1 << 63

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_NUMBER_CHARS = frozenset("0123456789.")


def _invalid(text: str, why: str = "") -> ValueError:
    detail = f": {why}" if why else ""
    return ValueError(f'invalid duration "{text}"{detail} (write a number and a unit: "30s", "1m30s")')


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration text into integer nanoseconds. Raises ValueError on text Go rejects."""
    if not isinstance(text, str):
        raise TypeError(f"a duration is text, not {type(text).__name__}")
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise _invalid(text, "empty")
    total = 0
    while rest:
        amount, rest = _parse_term(text, rest)
        total += amount
        if total > _MAX_MAGNITUDE:
            raise _invalid(text, "out of range")
    if not negative and total > _MAX_MAGNITUDE - 1:
        raise _invalid(text, "out of range")
    return -total if negative else total


def _parse_term(text: str, rest: str) -> tuple[int, str]:
    """One "<number><unit>" term off the front of ``rest``: (nanoseconds, what is left)."""
    if rest[0] not in _NUMBER_CHARS:
        raise _invalid(text)
    term = rest
    digits = _leading_digits(rest)
    whole_text, rest = rest[: len(digits)], rest[len(digits):]
    fraction_text = ""
    has_point = rest[:1] == "."
    if has_point:
        rest = rest[1:]
        fraction_text = _leading_digits(rest)
        rest = rest[len(fraction_text):]
    if not whole_text and not fraction_text:
        raise _invalid(text)
    unit_len = next((i for i, c in enumerate(rest) if c in _NUMBER_CHARS), len(rest))
    if unit_len == 0:
        alone = not rest and term == text.lstrip("+-")  # the whole text is one number
        hint = f' ("{text}s" is {text} seconds)' if alone else ""
        raise ValueError(f'missing unit in duration "{text}"{hint}')
    unit_text, rest = rest[:unit_len], rest[unit_len:]
    unit = _UNITS.get(unit_text)
    if unit is None:
        raise ValueError(f'unknown unit "{unit_text}" in duration "{text}" (units: ns, us, ms, s, m, h)')
    whole = int(whole_text) if whole_text else 0
    if whole > _MAX_MAGNITUDE // unit:
        raise _invalid(text, "out of range")
    amount = whole * unit
    if fraction_text:
        amount += _fraction_ns(fraction_text, unit)
        if amount > _MAX_MAGNITUDE:
            raise _invalid(text, "out of range")
    return amount, rest


def _leading_digits(s: str) -> str:
    end = 0
    while end < len(s) and "0" <= s[end] <= "9":
        end += 1
    return s[:end]


def _fraction_ns(digits: str, unit: int) -> int:
    """The fraction ``.digits`` of ``unit``, truncated the way Go computes it (in float64)."""
    value, scale = 0, 1.0
    for d in digits:
        if value > ((1 << 63) - 1) // 10:  # Go stops accumulating once more digits would overflow
            break
        value = value * 10 + int(d)
        scale *= 10
    return int(float(value) * (float(unit) / scale))


def format_duration_ns(ns: int) -> str:
    """Go's ``Duration.String()`` of integer nanoseconds: "30s", "15m0s", "1h0m0s", "250ms", "0s"."""
    magnitude = abs(ns)
    sign = "-" if ns < 0 else ""
    if magnitude == 0:
        return "0s"
    if magnitude < SECOND:
        if magnitude < MICROSECOND:
            return f"{sign}{magnitude}ns"
        if magnitude < MILLISECOND:
            return f"{sign}{_with_fraction(magnitude, 3)}\u00b5s"
        return f"{sign}{_with_fraction(magnitude, 6)}ms"
    seconds = _with_fraction(magnitude % MINUTE, 9)
    minutes_total = magnitude // MINUTE
    if minutes_total == 0:
        return f"{sign}{seconds}s"
    hours, minutes = divmod(minutes_total, 60)
    if hours == 0:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{hours}h{minutes}m{seconds}s"


def _with_fraction(value: int, precision: int) -> str:
    """``value / 10**precision`` written with trailing zeros (and a bare point) left out."""
    whole, fraction = divmod(value, 10**precision)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:0{precision}d}".rstrip("0")


def seconds_to_ns(seconds: float) -> int:
    """Seconds (int or float) to whole nanoseconds, reading a float as the decimal it prints as."""
    if isinstance(seconds, bool):
        raise TypeError("a duration in seconds is a number, not a bool")
    if isinstance(seconds, int):
        return seconds * SECOND
    if not math.isfinite(seconds):
        raise ValueError(f"{seconds!r} seconds is not a duration")
    return int((Decimal(repr(float(seconds))) * SECOND).to_integral_value())


def parse_duration(text: str) -> float:
    """Go ``time.ParseDuration`` as seconds: "30s" -> 30.0, "15m0s" -> 900.0, "250ms" -> 0.25."""
    return parse_duration_ns(text) / SECOND


def format_duration(seconds: float) -> str:
    """Go ``Duration.String()`` of a number of seconds: 30 -> "30s", 900 -> "15m0s", 0.25 -> "250ms"."""
    return format_duration_ns(seconds_to_ns(seconds))
