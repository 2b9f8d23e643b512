"""The Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys as a Poisson process of rate λ; their lifetime
is exponential with rate μ, unobserved. Across customers λ ~ Gamma(r, α)
and μ ~ Gamma(s, β). Unlike the BG/NBD, dropout can happen at any moment,
not only just after a purchase.

The likelihood (Fader & Hardie 2005, eq. 22 of the derivation note) is the
sum of "alive at T" and "died in (t_x, T]"; the second involves a Gauss
hypergeometric function, which overflows for long histories. Here both
terms are handled as logarithms, and the hypergeometric function is taken
through Euler's transformation, ``2F1(a, b; c; z) = (1 − z)^(c−a−b)
2F1(c−a, c−b; c; z)``, so that its arguments stay small whatever x is.

References
----------
Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your
customers: Who are they and what will they do next? *Management Science*
33(1), 1-24.
Fader, P. S. & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD
model and related expressions. http://brucehardie.com/notes/009/
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit, gammaln, hyp2f1

from kizuna.analytics.clv.mle import Fit, FloatArray, Params, check_weights, maximise
from kizuna.errors import ValidationError

NAMES = ("r", "alpha", "s", "beta")


def _log_terms(
    params: Params, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ln of the constant, of "alive at T" and of "died in (t_x, T]" (without the constant)."""
    r, alpha, s, beta = params
    rsx = r + s + x
    const = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    # A0 = F(t_x) - F(T), F(u) = 2F1(r+s+x, b; r+s+x+1; z(u)) / (m + u)^(r+s+x), where the
    # larger of α and β is m, z(u) = |α-β| / (m + u), b = s+1 (α ≥ β) or r+x (α < β).
    # After Euler's transformation 2F1(...) = (1-z)^(c-a-b) 2F1(1, c-b; c; z).
    m = max(alpha, beta)
    b = np.full(x.shape, s + 1.0) if alpha >= beta else r + x
    c = rsx + 1.0

    def log_f(u: FloatArray) -> FloatArray:
        z = abs(alpha - beta) / (m + u)
        return np.asarray(
            (c - rsx - b) * np.log1p(-z) + np.log(hyp2f1(1.0, c - b, c, z)) - rsx * np.log(m + u)
        )

    lf_tx, lf_T = log_f(t_x), log_f(T)
    with np.errstate(divide="ignore"):
        log_a0 = lf_tx + np.log(-np.expm1(np.minimum(lf_T - lf_tx, 0.0)))
    died = np.log(s) - np.log(rsx) + log_a0
    return np.asarray(const), alive, np.asarray(died)


def log_likelihood(params: Params, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """Per-customer ln L(r, α, s, β | x, t_x, T)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    const, alive, died = _log_terms(params, x, t_x, T)
    return np.asarray(const + np.logaddexp(alive, died))


def fit(
    frequency: Sequence[float] | np.ndarray,
    recency: Sequence[float] | np.ndarray,
    T: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
) -> Fit:
    """Maximum-likelihood (r, α, s, β) with standard errors."""
    x, t_x, TT = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    if not (x.shape == t_x.shape == TT.shape) or np.any(t_x > TT) or np.any(x < 0):
        raise ValidationError("Pareto/NBD histories need frequency >= 0 and recency <= T")
    w = check_weights(weights, x.size)
    if w.sum() == 0:
        raise ValidationError("Pareto/NBD needs at least one customer")
    scale = float(np.average(TT, weights=w))

    def neg_ll(params: np.ndarray) -> float:
        return float(-(log_likelihood(params, x, t_x, TT) @ w))

    return maximise(
        "pareto-nbd",
        NAMES,
        neg_ll,
        (1.0, scale / 10, 1.0, scale),
        n_customers=w.sum(),
        n_rows=x.size,
    )


def probability_alive(params: Params, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(alive | x, t_x, T): the share of the likelihood from "alive at T"."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    _, alive, died = _log_terms(params, x, t_x, T)
    return np.asarray(expit(alive - died))


def conditional_expected_purchases(
    params: Params, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[Y(t) | x, t_x, T] (Schmittlein et al. 1987; Fader & Hardie 2005 note, eq. 41)."""
    r, alpha, s, beta = params
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    if s == 1:
        tail = np.log((beta + T + t) / (beta + T))
    else:
        tail = (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1)
    rate = (r + x) * (beta + T) / (alpha + T)
    return np.asarray(rate * tail * probability_alive(params, x, t_x, T))


def simulate(
    params: Params, T: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Histories (x, t_x) drawn from the model for customers observed for ``T``."""
    r, alpha, s, beta = params
    T = np.asarray(T, dtype=float)
    lam = rng.gamma(r, 1.0 / alpha, T.size)
    mu = rng.gamma(s, 1.0 / beta, T.size)
    life = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * life)
    t_x = np.zeros(T.size)
    pos = x > 0
    # The last of x uniform arrivals on (0, life) is life · U^(1/x).
    t_x[pos] = life[pos] * rng.random(int(pos.sum())) ** (1.0 / x[pos])
    return x.astype(float), t_x
