"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

A customer, while alive, buys as a Poisson process of rate λ; after every
repeat purchase they drop out for good with probability p. Across customers
λ ~ Gamma(r, α) and p ~ Beta(a, b). The history of one customer is
(x, t_x, T): x repeat purchases, the last at t_x, observed for T since the
first purchase, in any one time unit.

The likelihood is evaluated in log space with a log-sum-exp for the two
ways a history can arise (still alive at T, or dropped out just after t_x),
so histories with thousands of purchases over decades neither overflow nor
lose precision.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers"
the easy way: An alternative to the Pareto/NBD model. *Marketing Science*
24(2), 275-284.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2008). Computing P(alive) using
the BG/NBD model. http://brucehardie.com/notes/021/
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from kizuna.analytics.clv.mle import Fit, FloatArray, Params, check_weights, maximise
from kizuna.errors import ValidationError

NAMES = ("r", "alpha", "a", "b")


def _check(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if not (x.shape == t_x.shape == T.shape):
        raise ValidationError("frequency, recency and T must have the same length")
    if x.size and (
        np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or np.any((x == 0) & (t_x != 0))
    ):
        raise ValidationError(
            "BG/NBD histories need frequency >= 0, 0 <= recency <= T and recency 0 "
            "when frequency is 0"
        )


def log_likelihood(params: Params, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """Per-customer log-likelihood ln L(r, α, a, b | x, t_x, T), FHL (2005) eq. (6).

    Written as ln A + ln(exp(ln B) + exp(ln C)) with::

        ln A = ln Γ(r+x) - ln Γ(r) + r ln α + ln B(a, b+x) - ln B(a, b)
        ln B = -(r+x) ln(α+T)
        ln C = ln a - ln(b+x-1) - (r+x) ln(α+t_x)      (x > 0 only)
    """
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    ln_a = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    ln_b = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_c = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return np.asarray(ln_a + np.logaddexp(ln_b, ln_c))


class _Objective:
    """Negative weighted log-likelihood and its gradient, for fitting.

    Everything that depends on x alone is computed once per distinct x, and
    everything that depends on T alone once per distinct T (customers with
    no repeat purchase collapse entirely onto their T). Only the mixture
    term of customers with repeat purchases is evaluated per distinct
    history: one exponential and one logarithm per row.
    """

    def __init__(self, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray) -> None:
        self.ux, ix = np.unique(x, return_inverse=True)
        self.uT, iT = np.unique(T, return_inverse=True)
        self.wx = np.bincount(ix, weights=w, minlength=self.ux.size)
        self.wT = np.bincount(iT, weights=w, minlength=self.uT.size)
        self.wxT = np.bincount(iT, weights=w * x, minlength=self.uT.size)
        self.n = float(w.sum())
        pos = (x > 0) & (w > 0)
        self.ut, it = np.unique(t_x[pos], return_inverse=True)
        # The mixture term is summed over chunks on two threads: NumPy lets go
        # of the GIL inside each operation, so two cores do half the rows each.
        parts = max(1, min(CHUNKS, int(pos.sum()) // 50_000))
        self.chunks = [
            (it[c], iT[pos][c], ix[pos][c], x[pos][c], w[pos][c])
            for c in np.array_split(np.arange(int(pos.sum())), parts)
        ]

    def _mixture(
        self,
        chunk: tuple[np.ndarray, ...],
        log_at: FloatArray,
        log_atx: FloatArray,
        inv_at: FloatArray,
        inv_atx: FloatArray,
        log_k: FloatArray,
        r: float,
    ) -> tuple[float, float, float, float, FloatArray]:
        it, iT, ix, xp, wp = chunk
        diff = log_at[iT] - log_atx[it]
        rx = r + xp
        z = log_k[ix] + rx * diff
        # sigmoid(z) and ln(1 + e^z) = z - ln sigmoid(z): one exp and one log
        # per row. For z << 0, e^-z may overflow to inf: sigmoid is then 0 and
        # the term exactly 0 (its true value is below 1e-300).
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            sig = 1.0 / (1.0 + np.exp(-z))
            mix = np.where(sig > 0, z - np.log(sig), 0.0)
        ll = float(mix @ wp)
        ws = wp * sig
        rws = rx * ws
        d_alpha = float(
            inv_at @ np.bincount(iT, weights=rws, minlength=inv_at.size)
            - inv_atx @ np.bincount(it, weights=rws, minlength=inv_atx.size)
        )
        by_x: FloatArray = np.asarray(
            np.bincount(ix, weights=ws, minlength=log_k.size), dtype=np.float64
        )
        return ll, float(diff @ ws), d_alpha, float(ws.sum()), by_x

    def __call__(self, params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = params
        ux, n = self.ux, self.n
        log_alpha = np.log(alpha)
        log_at = np.log(alpha + self.uT)
        inv_at = 1.0 / (alpha + self.uT)
        # ln A and -(r+x) ln(α+T), summed by distinct x and distinct T.
        per_x = gammaln(r + ux) - gammaln(r) + betaln(a, b + ux) - betaln(a, b)
        r_wT = r * self.wT + self.wxT
        ll = per_x @ self.wx + r * log_alpha * n - r_wT @ log_at
        d_r = (digamma(r + ux) - digamma(r)) @ self.wx + log_alpha * n - self.wT @ log_at
        d_alpha = r / alpha * n - r_wT @ inv_at
        d_a = (digamma(a + b) - digamma(a + b + ux)) @ self.wx
        d_b = (digamma(b + ux) - digamma(a + b + ux) - digamma(b) + digamma(a + b)) @ self.wx
        if self.chunks:
            # z = ln C - ln B; the mixture adds logaddexp(0, z) = ln(1 + e^z).
            with np.errstate(divide="ignore"):
                bx = np.maximum(ux + b - 1, 1e-300)
            log_k = np.log(a) - np.log(bx)
            args = (log_at, np.log(alpha + self.ut), inv_at, 1.0 / (alpha + self.ut), log_k, r)
            if len(self.chunks) == 1:
                results = [self._mixture(self.chunks[0], *args)]
            else:
                results = list(_pool().map(lambda c: self._mixture(c, *args), self.chunks))
            for m_ll, m_r, m_alpha, m_a, by_x in results:
                ll += m_ll
                d_r += m_r
                d_alpha += m_alpha
                d_a += m_a / a
                d_b -= (1.0 / bx) @ by_x
        return float(-ll), -np.array([d_r, d_alpha, d_a, d_b])


CHUNKS = 2
_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=CHUNKS, thread_name_prefix="kizuna-bgnbd"))
    return _POOL[0]


def fit(
    frequency: Sequence[float] | np.ndarray,
    recency: Sequence[float] | np.ndarray,
    T: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    start: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> Fit:
    """Maximum-likelihood (r, α, a, b) with standard errors.

    Pass distinct histories with ``weights`` (how many customers share each)
    or one row per customer; the estimates are the same, the cost is not.
    """
    x, t_x, TT = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    _check(x, t_x, TT)
    w = check_weights(weights, x.size)
    if w.sum() == 0:
        raise ValidationError("BG/NBD needs at least one customer")
    scale = float(np.mean(TT)) if TT.size else 1.0
    objective = _Objective(x, t_x, TT, w)
    start_ = np.array(start, dtype=float)
    start_[1] = max(start_[1], scale / 10)

    return maximise(
        "bgnbd",
        NAMES,
        lambda p: objective(p)[0],
        start_,
        n_customers=w.sum(),
        n_rows=x.size,
        neg_ll_grad=objective,
    )


def expected_purchases(params: Params, t: float | FloatArray) -> FloatArray:
    """E[X(t)], purchases of a new customer in a period of length t, FHL (2005) eq. (9)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    # Euler's transformation keeps 2F1 bounded: (1-z)^r 2F1(r, b; a+b-1; z)
    # = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b-1; z).
    tail = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
    return np.asarray((a + b - 1) / (a - 1) * (1 - tail))


def probability_alive(params: Params, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(alive | x, t_x, T) (FHL 2008, eq. 1): the share of the likelihood from "alive at T"."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(
            x > 0,
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
            -np.inf,
        )
    return np.asarray(expit(-z))


def expected_purchases_if_alive(
    params: Params, t: float, x: FloatArray, T: FloatArray
) -> FloatArray:
    """Purchases in the next t of a customer known to be alive at T (the first factor of eq. 10).

    ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) is computed after Euler's
    transformation as (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), which stays
    finite for any x. It depends on x and T only, so callers can compute it
    once per distinct (x, T).
    """
    r, alpha, a, b = params
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    z = t / (alpha + T + t)
    tail = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    return np.asarray((a + b + x - 1) / (a - 1) * (1 - tail))


def conditional_expected_purchases(
    params: Params, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[Y(t) | x, t_x, T], purchases in the next t given the history, FHL (2005) eq. (10)."""
    return np.asarray(
        expected_purchases_if_alive(params, t, x, T) * probability_alive(params, x, t_x, T)
    )


def simulate(
    params: Params, T: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Histories (x, t_x) of customers observed for ``T`` each, drawn from the model.

    The sample generator's process: N ~ Poisson(λT) opportunities, dropout
    after J ~ Geometric(p) repeat purchases, x = min(J, N); the x-th of N
    uniform arrival times is Beta(x, N-x+1)·T.
    """
    r, alpha, a, b = params
    T = np.asarray(T, dtype=float)
    lam = rng.gamma(r, 1.0 / alpha, T.size)
    p = rng.beta(a, b, T.size)
    n = rng.poisson(lam * T)
    x = np.minimum(rng.geometric(p), n)
    t_x = np.zeros(T.size)
    pos = x > 0
    t_x[pos] = rng.beta(x[pos], n[pos] - x[pos] + 1) * T[pos]
    return x.astype(float), t_x
