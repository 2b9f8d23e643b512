"""Uplift of treated over hold-out, with 95% confidence intervals.

Two estimators, both standard and both explicit:

* conversion: difference in proportions with the unpooled (Wald) standard
  error, ``se = sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)``;
* revenue per customer: Welch's two-sample t interval, which does not assume
  equal variances (revenue in a treated group rarely has the hold-out's
  variance), with the Welch–Satterthwaite degrees of freedom.

References
----------
Welch, B. L. (1947). The generalization of "Student's" problem when several
different population variances are involved. Biometrika 34, 28–35.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def proportion_uplift(
    conv_t: int, n_t: int, conv_c: int, n_c: int, level: float = 0.95
) -> Interval:
    """Treated minus control conversion rate, with its confidence interval."""
    if n_t == 0 or n_c == 0:
        return Interval(math.nan, math.nan, math.nan)
    p_t, p_c = conv_t / n_t, conv_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    z = float(stats.norm.ppf(0.5 + level / 2))
    diff = p_t - p_c
    return Interval(diff, diff - z * se, diff + z * se)


def welch_uplift(
    treated: Sequence[float], control: Sequence[float], level: float = 0.95
) -> Interval:
    """Difference in mean (e.g. revenue per customer), Welch interval."""
    n_t, n_c = len(treated), len(control)
    if n_t < 2 or n_c < 2:
        return Interval(math.nan, math.nan, math.nan)
    m_t, m_c = sum(treated) / n_t, sum(control) / n_c
    v_t = sum((x - m_t) ** 2 for x in treated) / (n_t - 1)
    v_c = sum((x - m_c) ** 2 for x in control) / (n_c - 1)
    a, b = v_t / n_t, v_c / n_c
    se = math.sqrt(a + b)
    diff = m_t - m_c
    if se == 0:
        return Interval(diff, diff, diff)
    df = (a + b) ** 2 / (a**2 / (n_t - 1) + b**2 / (n_c - 1))
    q = float(stats.t.ppf(0.5 + level / 2, df))
    return Interval(diff, diff - q * se, diff + q * se)


def cuped_uplift(
    treated: Sequence[float],
    control: Sequence[float],
    treated_before: Sequence[float],
    control_before: Sequence[float],
    level: float = 0.95,
) -> Interval:
    """Difference in means adjusted by a pre-period covariate (CUPED), Welch interval.

    Each outcome Y becomes Y - θ(X - mean X), with X the same customer's
    value before the campaign (revenue in an equally long window before the
    run started) and θ = cov(X, Y) / var(X) over both groups together. X is
    fixed before assignment, so the adjustment leaves the estimate unbiased
    and removes the share of the variance that X explains: the interval
    narrows by about sqrt(1 - ρ²).

    Deng, A., Xu, Y., Kohavi, R. & Walker, T. (2013). Improving the
    sensitivity of online controlled experiments by utilizing pre-experiment
    data. *WSDM '13*, 123–132.
    """
    if not (len(treated) == len(treated_before) and len(control) == len(control_before)):
        raise ValueError("every outcome needs its pre-period value")
    ys = [*treated, *control]
    xs = [*treated_before, *control_before]
    n = len(xs)
    if n < 3:
        return Interval(math.nan, math.nan, math.nan)
    mx, my = sum(xs) / n, sum(ys) / n
    var_x = sum((x - mx) ** 2 for x in xs) / (n - 1)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (n - 1)
    theta = cov / var_x if var_x > 0 else 0.0
    adjusted_t = [y - theta * (x - mx) for y, x in zip(treated, treated_before, strict=True)]
    adjusted_c = [y - theta * (x - mx) for y, x in zip(control, control_before, strict=True)]
    return welch_uplift(adjusted_t, adjusted_c, level)
