"""Does what the probes saw agree with what the static tracer predicted?

Categories are where a probe ended: a DNAT target ``ip:port`` (or the destination itself when
no rule rewrote it), ``REJECT`` (refused or unreachable at once), ``DROP`` (no answer in time).
The prediction gives each category a probability; the observation counts probes per category.

Agreement means: no probe ended somewhere the prediction gives probability 0, and Pearson's
chi-square goodness-of-fit test does not reject the predicted distribution at level ``alpha``.
With a single predicted category the test is exact (every probe must be in it: p is 1 or 0).
The p-value is the regularized upper incomplete gamma function, computed here (it agrees with
scipy's ``chi2.sf`` to ~1e-12; importing scipy.stats would cost a CLI run 1.5 s, more than the
probes themselves).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_ALPHA = 1e-3


@dataclass(frozen=True)
class Row:
    category: str
    predicted: float  # probability
    expected: float  # count
    observed: int


@dataclass(frozen=True)
class Comparison:
    rows: tuple[Row, ...]
    total: int
    statistic: float
    dof: int
    p_value: float
    alpha: float
    unexpected: tuple[str, ...] = field(default=())  # observed categories the prediction rules out

    @property
    def agrees(self) -> bool:
        return not self.unexpected and self.p_value > self.alpha


def compare(predicted: Mapping[str, float], observed: Mapping[str, int] | Counter,
            alpha: float = DEFAULT_ALPHA) -> Comparison:
    total = sum(observed.values())
    cats = [c for c, p in predicted.items() if p > 0]
    cats += [c for c in observed if c not in cats and observed[c] > 0]
    rows = tuple(Row(c, predicted.get(c, 0.0), predicted.get(c, 0.0) * total, int(observed.get(c, 0))) for c in cats)
    unexpected = tuple(r.category for r in rows if r.predicted <= 0 and r.observed > 0)
    live = [r for r in rows if r.predicted > 0]
    if total == 0:
        return Comparison(rows, 0, 0.0, 0, 1.0, alpha, unexpected)
    if unexpected:
        return Comparison(rows, total, math.inf, max(len(live) - 1, 0), 0.0, alpha, unexpected)
    if len(live) <= 1:
        p = 1.0 if all(r.observed == total for r in live) else 0.0
        return Comparison(rows, total, 0.0, 0, p, alpha, unexpected)
    norm = sum(r.predicted for r in live)
    stat = sum((r.observed - total * r.predicted / norm) ** 2 / (total * r.predicted / norm) for r in live)
    dof = len(live) - 1
    return Comparison(rows, total, stat, dof, chi2_sf(stat, dof), alpha, unexpected)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square with ``dof`` degrees of freedom: Q(dof/2, x/2)."""
    if x <= 0:
        return 1.0
    return gammaincc(dof / 2.0, x / 2.0)


def gammaincc(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x) (series below a+1, continued
    fraction above, as in Numerical Recipes' gammq)."""
    if x < 0 or a <= 0:
        raise ValueError("gammaincc needs a > 0 and x >= 0")
    if x == 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)
