"""The shifted-Beta-Geometric model of contractual retention (Fader & Hardie 2007).

Each subscriber renews at the end of every period with their own
probability 1 − θ, and θ ~ Beta(α, β) across subscribers. The aggregate
retention rate then rises over time, as the ones likely to leave leave
first, which is what real cohorts show and what a constant-churn projection
gets wrong. Input is a cohort's survivor counts: how many are still active
at the start of each period 0, 1, ..., n.

* P(T = t) = B(α + 1, β + t − 1) / B(α, β)   (eq. 7)
* S(t) = B(α, β + t) / B(α, β)               (eq. 8)
* retention r_t = (β + t − 1) / (α + β + t − 1)   (eq. 9)

References
----------
Fader, P. S. & Hardie, B. G. S. (2007). How to project customer retention.
*Journal of Interactive Marketing* 21(1), 76-90.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import betaln

from kizuna.analytics.clv.mle import Fit, FloatArray, Params, maximise
from kizuna.errors import ValidationError

NAMES = ("alpha", "beta")


def _counts(active: Sequence[float] | np.ndarray) -> tuple[FloatArray, float, int]:
    a = np.asarray(active, dtype=float)
    if a.ndim != 1 or a.size < 2 or np.any(a < 0) or np.any(np.diff(a) > 0) or a[0] <= 0:
        raise ValidationError(
            "sBG needs the customers active at the start of periods 0, 1, ..., n: "
            "at least two periods, positive at period 0, never increasing"
        )
    lost = -np.diff(a)
    return lost, float(a[-1]), a.size - 1


def log_likelihood(params: Params, active: Sequence[float] | np.ndarray) -> float:
    """ln L(α, β | survivor counts): lost in each period t, still active after n (eq. 11)."""
    alpha, beta = params
    lost, survivors, n = _counts(active)
    t = np.arange(1, n + 1, dtype=float)
    log_p = betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)
    log_s = betaln(alpha, beta + n) - betaln(alpha, beta)
    return float(lost @ log_p + survivors * log_s)


def fit(active: Sequence[float] | np.ndarray) -> Fit:
    """Maximum-likelihood (α, β) with standard errors from one cohort's survivor counts."""
    lost, survivors, _ = _counts(active)
    return maximise(
        "sbg",
        NAMES,
        lambda p: -log_likelihood(p, active),
        (1.0, 1.0),
        n_customers=float(lost.sum() + survivors),
        n_rows=len(lost) + 1,
    )


def survival(params: Params, t: FloatArray) -> FloatArray:
    """S(t): share of the cohort still active after t periods (eq. 8)."""
    alpha, beta = params
    t = np.asarray(t, dtype=float)
    return np.asarray(np.exp(betaln(alpha, beta + t) - betaln(alpha, beta)))


def retention_rate(params: Params, t: FloatArray) -> FloatArray:
    """r_t: the share of those active in period t−1 who renew for period t (eq. 9)."""
    alpha, beta = params
    t = np.asarray(t, dtype=float)
    return np.asarray((beta + t - 1) / (alpha + beta + t - 1))


def simulate(params: Params, n: int, periods: int, rng: np.random.Generator) -> FloatArray:
    """Survivor counts at the start of periods 0..periods for a cohort of ``n``."""
    alpha, beta = params
    theta = rng.beta(alpha, beta, n)
    lifetime = rng.geometric(theta)  # the period in which each one leaves
    t = np.arange(periods + 1)
    return np.asarray([(lifetime > k).sum() for k in t], dtype=float)
