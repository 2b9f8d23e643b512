"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005).

Each transaction of a customer is worth z ~ Gamma(p, ν); across customers
ν ~ Gamma(q, γ). A customer is summarised by x repeat transactions and
their mean value m (only customers with x > 0 enter the fit, as in the
paper). Integrating ν out gives the density of m given x::

    f(m | p, q, γ, x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q m^(px-1) x^(px) / (γ + m x)^(px+q)

which is the per-customer likelihood here, evaluated in log space.
Spend is assumed independent of the purchase process (the paper checks
this by the correlation of m and x).

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using
iso-value curves for customer base analysis. *Journal of Marketing Research*
42(4), 415-430.
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary
value. http://brucehardie.com/notes/025/
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma, gammaln

from kizuna.analytics.clv.mle import Fit, FloatArray, Params, check_weights, maximise
from kizuna.errors import ValidationError

NAMES = ("p", "q", "gamma")


def _arrays(
    frequency: Sequence[float] | np.ndarray, monetary: Sequence[float] | np.ndarray
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    if x.shape != m.shape:
        raise ValidationError("frequency and monetary must have the same length")
    if np.any(x <= 0) or np.any(m <= 0):
        raise ValidationError(
            "Gamma-Gamma needs customers with at least one repeat purchase and a positive "
            "mean spend; leave out the others"
        )
    return x, m


def log_likelihood(params: Params, frequency: FloatArray, monetary: FloatArray) -> FloatArray:
    """Per-customer ln f(m | p, q, γ, x), the marginal density of the mean spend."""
    p, q, gamma = params
    x, m = _arrays(frequency, monetary)
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


def fit(
    frequency: Sequence[float] | np.ndarray,
    monetary: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
) -> Fit:
    """Maximum-likelihood (p, q, γ) with standard errors, on customers with x > 0."""
    x, m = _arrays(frequency, monetary)
    w = check_weights(weights, x.size)
    if w.sum() == 0:
        raise ValidationError("Gamma-Gamma needs at least one customer with repeat purchases")
    log_m, log_x, mx = np.log(m), np.log(x), m * x
    n = float(w.sum())

    def value_grad(params: FloatArray) -> tuple[float, FloatArray]:
        p, q, gamma = params
        px = p * x
        log_gmx = np.log(gamma + mx)
        ll = (
            gammaln(px + q) - gammaln(px) + (px - 1) * log_m + px * log_x - (px + q) * log_gmx
        ) @ w + n * (q * np.log(gamma) - gammaln(q))
        psi = digamma(px + q)
        d_p = (x * (psi - digamma(px) + log_m + log_x - log_gmx)) @ w
        d_q = (psi - log_gmx) @ w + n * (np.log(gamma) - digamma(q))
        d_g = n * q / gamma - ((px + q) / (gamma + mx)) @ w
        return float(-ll), -np.array([d_p, d_q, d_g])

    mean_m = float(np.average(m, weights=w))
    return maximise(
        "gamma-gamma",
        NAMES,
        lambda params: value_grad(params)[0],
        (1.0, 2.0, mean_m),
        n_customers=n,
        n_rows=x.size,
        neg_ll_grad=value_grad,
    )


def conditional_expected_spend(
    params: Params, frequency: FloatArray, monetary: FloatArray
) -> FloatArray:
    """E[Z | x, m]: the expected value of a customer's future transactions.

    The posterior mean of p/ν, a weighted average of the population mean
    pγ/(q-1) and the customer's own mean m (weight grows with x); customers
    with no repeat purchase get the population mean.
    """
    p, q, gamma = params
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    population = p * gamma / (q - 1) if q > 1 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        own = p * (gamma + m * x) / (p * x + q - 1)
    return np.asarray(np.where(x > 0, own, population))


def simulate(params: Params, frequency: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Mean spend of customers with ``frequency`` transactions each, drawn from the model."""
    p, q, gamma = params
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / gamma, x.size)
    # The sum of x Gamma(p, ν) values is Gamma(p·x, ν).
    return np.asarray(rng.gamma(p * x, 1.0 / nu) / x)
