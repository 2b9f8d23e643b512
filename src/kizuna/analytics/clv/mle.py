"""Maximum likelihood shared by the CLV models: optimiser, standard errors, histories.

Every model here has strictly positive parameters, so the optimiser works on
their logarithms (no bounds to hit) and the standard errors come from the
observed information, the Hessian of the negative log-likelihood in the
natural parameters at the optimum (the usual asymptotic result; see e.g.
Fader & Hardie's notes, which report the same quantity).

Fitting runs on *distinct histories* with a count per history: customers with
the same (x, t_x, T) contribute identical likelihood terms, so the cost grows
with the number of distinct histories, not with the number of customers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from kizuna.errors import ValidationError

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
#: Model parameters in the paper's order: a sequence or an array.
Params = Sequence[float] | np.ndarray[Any, Any]


@dataclass(frozen=True)
class Fit:
    """A fitted model: parameters by the paper's names, their standard errors, the fit."""

    model: str
    params: dict[str, float]
    std_errors: dict[str, float]
    log_likelihood: float
    n_customers: float
    n_rows: int
    converged: bool
    iterations: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a non-finite number, e.g. the SE of a singular fit, becomes null)."""

        def clean(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "model": self.model,
            "params": {k: clean(v) for k, v in self.params.items()},
            "std_errors": {k: clean(v) for k, v in self.std_errors.items()},
            "log_likelihood": clean(self.log_likelihood),
            "n_customers": self.n_customers,
            "distinct_rows": self.n_rows,
            "converged": self.converged,
            "iterations": self.iterations,
        }

    def vector(self) -> FloatArray:
        return np.array(list(self.params.values()), dtype=float)


def factorize(values: Sequence[float] | np.ndarray) -> tuple[FloatArray, np.ndarray]:
    """(distinct values, code of each value) by hashing: linear time, no sort.

    The distinct values come in order of first appearance; every caller here
    only needs a consistent code per value, and hashing a million floats is
    several times faster than the sort behind ``np.unique``.
    """
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(values, dtype=np.float64), sort=False)
    return np.asarray(uniques, dtype=np.float64), np.asarray(codes, dtype=np.int64)


def distinct_rows(*columns: Sequence[float] | np.ndarray) -> tuple[list[FloatArray], FloatArray]:
    """The distinct rows of ``columns`` and how many times each occurs.

    Each column is replaced by a code of its distinct value (hashing, see
    :func:`factorize`), the codes are packed into one integer key, and the
    keys are counted. The result feeds every ``fit`` as ``(columns, weights)``;
    the rows come in order of first appearance.
    """
    arrays = [np.asarray(c, dtype=np.float64) for c in columns]
    if not arrays or arrays[0].size == 0:
        return [a[:0] for a in arrays], np.zeros(0)
    key = np.zeros(arrays[0].size, dtype=np.int64)
    uniques = []
    for a in arrays:
        u, inverse = factorize(a)
        uniques.append(u)
        key = key * u.size + inverse
    if np.prod([float(u.size) for u in uniques]) >= 2.0**62:
        raise ValidationError("too many distinct values to pack; pass fewer columns")
    keys, where = _factorize_int(key)
    counts = np.bincount(where, minlength=keys.size)
    cols: list[FloatArray] = []
    for u in reversed(uniques):
        cols.append(u[keys % u.size])
        keys = keys // u.size
    weights: FloatArray = counts.astype(np.float64)
    return cols[::-1], weights


def _factorize_int(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=False)
    return np.asarray(uniques, dtype=np.int64), np.asarray(codes, dtype=np.int64)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with BLAS on one thread.

    The optimisers' vectors are small and the objectives' dot products short
    enough that OpenBLAS worker threads mostly spin waiting for work: on a
    busy machine they took most of the CPU time of a fit and competed with
    the objective's own two threads. Measured on the 1M-customer BG/NBD fit:
    0.9 s of CPU with threaded BLAS, 0.18 s without.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def check_weights(weights: Sequence[float] | np.ndarray | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValidationError("weights must be one non-negative finite number per row")
    return w


def maximise(
    model: str,
    names: Sequence[str],
    neg_ll: Callable[[FloatArray], float],
    start: Params,
    n_customers: float,
    n_rows: int,
    neg_ll_grad: Callable[[FloatArray], tuple[float, FloatArray]] | None = None,
    with_errors: bool = True,
) -> Fit:
    """Minimise ``neg_ll`` over positive parameters; report estimates and standard errors.

    ``neg_ll`` takes the natural parameters. ``neg_ll_grad`` (value and
    gradient in the natural parameters), when given, lets L-BFGS use exact
    gradients, which matters for the model fitted on millions of customers.
    """
    with single_threaded_blas():
        return _maximise(model, names, neg_ll, start, n_customers, n_rows, neg_ll_grad, with_errors)


def _maximise(
    model: str,
    names: Sequence[str],
    neg_ll: Callable[[FloatArray], float],
    start: Params,
    n_customers: float,
    n_rows: int,
    neg_ll_grad: Callable[[FloatArray], tuple[float, FloatArray]] | None,
    with_errors: bool,
) -> Fit:
    x0 = np.log(np.asarray(start, dtype=float))

    def objective(theta: FloatArray) -> float:
        value = neg_ll(np.exp(theta))
        return value if np.isfinite(value) else 1e300

    if neg_ll_grad is not None:

        def with_grad(theta: FloatArray) -> tuple[float, FloatArray]:
            params = np.exp(theta)
            value, grad = neg_ll_grad(params)
            if not np.isfinite(value):
                return 1e300, np.zeros_like(theta)
            return value, grad * params  # chain rule through exp

        result = optimize.minimize(
            with_grad,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-7 * max(1.0, n_customers)},
        )
    else:
        result = optimize.minimize(
            objective,
            x0,
            method="Nelder-Mead",
            options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-10},
        )
        result = optimize.minimize(objective, result.x, method="BFGS", options={"gtol": 1e-8})
    params = np.exp(result.x)
    if with_errors:
        grad_only = None if neg_ll_grad is None else (lambda p: neg_ll_grad(p)[1])
        std = standard_errors(numerical_hessian(neg_ll, params, grad_only))
    else:
        std = np.full(params.size, np.nan)
    return Fit(
        model=model,
        params={n: float(v) for n, v in zip(names, params, strict=True)},
        std_errors={n: float(v) for n, v in zip(names, std, strict=True)},
        log_likelihood=float(-neg_ll(params)),
        n_customers=float(n_customers),
        n_rows=int(n_rows),
        converged=bool(result.success) or bool(np.isfinite(result.fun)),
        iterations=int(result.nit),
    )


def numerical_hessian(
    f: Callable[[FloatArray], float],
    x: FloatArray,
    grad: Callable[[FloatArray], FloatArray] | None = None,
) -> FloatArray:
    """Central-difference Hessian of ``f`` at ``x`` with steps relative to each coordinate.

    With an exact gradient the Hessian is differenced from it (one order of
    differencing less, so far less round-off on log-likelihoods of millions
    of customers); otherwise from function values.
    """
    n = x.size
    if grad is not None:
        # Forward differences of the exact gradient: n evaluations, and at
        # a step of 1e-6 the truncation error is far below the sampling error.
        h = 1e-6 * np.maximum(np.abs(x), 1e-8)
        g0 = grad(x)
        cols = []
        for i in range(n):
            e = np.zeros(n)
            e[i] = h[i]
            cols.append((grad(x + e) - g0) / h[i])
        hess_g = np.array(cols)
        return np.asarray((hess_g + hess_g.T) / 2)
    h = 1e-3 * np.maximum(np.abs(x), 1e-8)
    hess = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h[i]
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i + 1, n):
            ej = np.zeros(n)
            ej[j] = h[j]
            value = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * h[i] * h[j]
            )
            hess[i, j] = hess[j, i] = value
    return hess


def standard_errors(hessian: FloatArray) -> FloatArray:
    """Square roots of the diagonal of the inverse observed information (NaN if singular)."""
    try:
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full(hessian.shape[0], np.nan)
    diag = np.diag(cov)
    return np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)


#: Value, gradient and Hessian of a negative log-likelihood in the natural parameters.
ValueGradHess = Callable[[FloatArray], tuple[float, FloatArray, FloatArray]]


def newton_polish(
    model: str,
    names: Sequence[str],
    neg_ll_grad_hess: ValueGradHess,
    start: Params,
    n_customers: float,
    n_rows: int,
    max_iterations: int = 50,
) -> Fit | None:
    """Newton's method with the exact Hessian from ``start`` (close to the optimum).

    Works on log-parameters, like :func:`maximise`, with step halving and a
    Levenberg shift when the Hessian is not positive definite there. Each
    iteration is one evaluation of value, gradient and Hessian; near the
    optimum the error squares at every step, so a start from a fit on a
    subsample needs two to four. The standard errors come from the exact
    Hessian at the optimum, at no extra cost. Returns ``None`` when it does
    not converge, so the caller can fall back to a first-order method.
    """
    theta = np.log(np.asarray(start, dtype=float))

    def at(t: FloatArray) -> tuple[float, FloatArray, FloatArray, FloatArray]:
        p = np.exp(t)
        value, grad, hess = neg_ll_grad_hess(p)
        # Chain rule through p = e^θ.
        g_t = grad * p
        h_t = hess * np.outer(p, p) + np.diag(g_t)
        return value, g_t, h_t, hess

    value, g, h, hess_p = at(theta)
    evaluations = 1
    tol = 1e-12 * max(1.0, abs(value))
    for iteration in range(1, max_iterations + 1):
        if not (np.isfinite(value) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
            return None
        shift = 0.0
        while True:
            try:
                chol = np.linalg.cholesky(h + shift * np.eye(h.shape[0]))
                break
            except np.linalg.LinAlgError:
                shift = max(2 * shift, 1e-8 * float(np.abs(np.diag(h)).max()) or 1e-8)
                if shift > 1e12:
                    return None
        step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g))
        decrement = float(-(g @ step))
        if decrement / 2 <= tol and shift == 0.0:
            params = np.exp(theta)
            std = standard_errors(hess_p)
            return Fit(
                model=model,
                params={n: float(v) for n, v in zip(names, params, strict=True)},
                std_errors={n: float(v) for n, v in zip(names, std, strict=True)},
                log_likelihood=float(-value),
                n_customers=float(n_customers),
                n_rows=int(n_rows),
                converged=True,
                iterations=iteration - 1,
                extra={"evaluations": evaluations, "method": "newton"},
            )
        t = 1.0
        while True:
            candidate = at(theta + t * step)
            evaluations += 1
            # Accept any decrease (and ties at rounding level of the sum).
            if np.isfinite(candidate[0]) and candidate[0] <= value + tol:
                break
            t /= 2
            if t < 1e-6:
                return None
        theta = theta + t * step
        value, g, h, hess_p = candidate
    return None
