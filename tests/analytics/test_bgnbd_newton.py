"""The fast BG/NBD fit: exact Hessian, Newton polish from a subsample, grouping inside the fit."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.analytics.clv import bgnbd
from kizuna.analytics.clv.mle import distinct_rows, numerical_hessian, standard_errors

TRUTH = (1.0, 6.5, 0.9, 7.0)


def histories(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = rng.integers(70, 1092, n) / 7.0
    x, t_x = bgnbd.simulate(TRUTH, T, rng)
    return x, np.floor(t_x * 7) / 7, T


def test_analytic_hessian_matches_differences_of_the_gradient() -> None:
    x, t_x, T = histories(3_000, seed=3)
    objective = bgnbd._Objective(x, t_x, T, np.ones(x.size))
    for params in (np.array([0.7, 4.0, 1.3, 3.0]), np.array([2.0, 20.0, 0.4, 0.8])):
        value, grad, hess = objective.with_hessian(params)
        assert value == pytest.approx(objective(params)[0], rel=1e-14)
        assert grad == pytest.approx(objective(params)[1], rel=1e-12)
        numeric = numerical_hessian(lambda p: objective(p)[0], params, lambda p: objective(p)[1])
        assert hess == pytest.approx(numeric, rel=1e-4, abs=1e-6 * np.abs(numeric).max())


def test_one_row_per_customer_is_grouped_inside_the_fit() -> None:
    x, t_x, T = histories(60_000, seed=5)
    t_x, T = np.round(t_x), np.round(T)  # whole weeks: many customers share a history
    per_customer = bgnbd._Objective(x, t_x, T, np.ones(x.size))
    (ux, ut, uT), w = distinct_rows(x, t_x, T)
    assert per_customer.mixture_rows == int(np.sum(ux > 0)) < 0.8 * int(np.sum(x > 0))
    params = np.array([0.8, 5.0, 1.1, 4.0])
    plain = -bgnbd.log_likelihood(params, x, t_x, T).sum()
    assert per_customer(params)[0] == pytest.approx(plain, rel=1e-12)
    grouped = bgnbd._Objective(ux, ut, uT, w)
    assert per_customer.with_hessian(params)[2] == pytest.approx(
        grouped.with_hessian(params)[2], rel=1e-9
    )
    a, b = bgnbd.fit(x, t_x, T), bgnbd.fit(ux, ut, uT, weights=w)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-12)
    for name in bgnbd.NAMES:
        assert a.params[name] == pytest.approx(b.params[name], rel=1e-5)


def test_newton_from_a_subsample_reaches_the_full_maximum_with_exact_errors() -> None:
    x, t_x, T = histories(2 * bgnbd.SUBSAMPLE_ROWS + 20_000, seed=8)
    fit = bgnbd.fit(x, t_x, T)
    assert fit.extra["method"] == "newton" and fit.extra["evaluations"] <= 6
    # The same maximum as a first-order fit from the usual start, to 1e-10.
    objective = bgnbd._Objective(x, t_x, T, np.ones(x.size))
    from kizuna.analytics.clv.mle import maximise

    reference = maximise(
        "bgnbd", bgnbd.NAMES, lambda p: objective(p)[0], (1.0, T.mean() / 10, 1.0, 1.0),
        n_customers=x.size, n_rows=x.size, neg_ll_grad=objective,
    )  # fmt: skip
    assert fit.log_likelihood >= reference.log_likelihood - 1e-10 * abs(reference.log_likelihood)
    for name in bgnbd.NAMES:
        assert fit.params[name] == pytest.approx(reference.params[name], rel=1e-4)
        # Standard errors from the exact Hessian agree with the finite-difference ones.
        assert fit.std_errors[name] == pytest.approx(reference.std_errors[name], rel=1e-3)
    hess = objective.with_hessian(fit.vector())[2]
    assert standard_errors(hess) == pytest.approx(list(fit.std_errors.values()), rel=1e-6)
