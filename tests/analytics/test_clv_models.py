"""CLV models: they recover the parameters they were simulated from, and stay finite."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.analytics.clv import bgnbd, gamma_gamma, pareto_nbd, sbg, value
from kizuna.analytics.clv.mle import distinct_rows
from kizuna.errors import ValidationError

#: The sample generator's parameters (weeks): BG/NBD and Gamma-Gamma.
GENERATOR_BGNBD = (1.0, 6.5, 0.9, 7.0)
GENERATOR_GG = (6.0, 4.0, 2500.0)


def within(fit_params: dict[str, float], std: dict[str, float], truth: tuple[float, ...]) -> None:
    """Every estimate within 3.5 standard errors of the truth (and the SEs are sane)."""
    for (name, estimate), true in zip(fit_params.items(), truth, strict=True):
        se = std[name]
        assert np.isfinite(se) and 0 < se < abs(true), f"{name}: bad standard error {se}"
        assert abs(estimate - true) < 3.5 * se, f"{name}={estimate:.4g}, truth {true} (se {se:.3g})"


def weekly_histories(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD histories observed for 10-156 weeks, timed to whole days like real data."""
    rng = np.random.default_rng(seed)
    T = rng.integers(70, 1092, n) / 7.0
    x, t_x = bgnbd.simulate(GENERATOR_BGNBD, T, rng)
    return x, np.floor(t_x * 7) / 7, T


def test_bgnbd_recovers_the_generator_parameters_within_standard_errors() -> None:
    x, t_x, T = weekly_histories(40_000, seed=1)
    cols, weights = distinct_rows(x, t_x, T)
    fit = bgnbd.fit(*cols, weights=weights)
    within(fit.params, fit.std_errors, GENERATOR_BGNBD)
    assert fit.n_rows < x.size  # fitted on distinct histories


def test_bgnbd_weighted_likelihood_equals_the_per_customer_likelihood() -> None:
    x, t_x, T = weekly_histories(5_000, seed=2)
    (ux, ut, uT), w = distinct_rows(x, t_x, T)
    params = (0.8, 5.0, 1.1, 4.0)
    plain = bgnbd.log_likelihood(params, x, t_x, T).sum()
    weighted = bgnbd.log_likelihood(params, ux, ut, uT) @ w
    assert weighted == pytest.approx(plain, rel=1e-12)
    # ... and the fit is the same either way.
    per_customer = bgnbd.fit(x, t_x, T)
    distinct = bgnbd.fit(ux, ut, uT, weights=w)
    for name in bgnbd.NAMES:
        assert distinct.params[name] == pytest.approx(per_customer.params[name], rel=1e-4)
    assert distinct.log_likelihood == pytest.approx(per_customer.log_likelihood, rel=1e-9)


def test_bgnbd_gradient_matches_finite_differences() -> None:
    x, t_x, T = weekly_histories(3_000, seed=3)
    objective = bgnbd._Objective(x, t_x, T, np.ones(x.size))
    params = np.array([0.7, 4.0, 1.3, 3.0])
    _, grad = objective(params)
    for i in range(4):
        h = 1e-6 * params[i]
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        numeric = (objective(up)[0] - objective(down)[0]) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5)
    value_only = -bgnbd.log_likelihood(params, x, t_x, T).sum()
    assert objective(params)[0] == pytest.approx(value_only, rel=1e-12)


def test_bgnbd_extreme_histories_stay_finite() -> None:
    # Thousands of purchases over decades (weeks), and the opposite extremes.
    x = np.array([0.0, 1.0, 5000.0, 5000.0, 3000.0, 1.0])
    t_x = np.array([0.0, 0.001, 2079.5, 10.0, 1560.0, 1560.0])
    T = np.array([1560.0, 1560.0, 2080.0, 2080.0, 1560.0, 1560.0])
    params = GENERATOR_BGNBD
    ll = bgnbd.log_likelihood(params, x, t_x, T)
    alive = bgnbd.probability_alive(params, x, t_x, T)
    expected = bgnbd.conditional_expected_purchases(params, 52.0, x, t_x, T)
    for arr in (ll, alive, expected):
        assert np.all(np.isfinite(arr))
    assert np.all((alive >= 0) & (alive <= 1))
    assert alive[3] < 1e-6  # 5000 purchases, then silence for 40 years: gone
    assert expected[2] > 100  # still buying ~2.4 a week
    fit = bgnbd.fit(x, t_x, T)
    assert np.isfinite(fit.log_likelihood)


def test_bgnbd_expectations_agree_with_simulation() -> None:
    rng = np.random.default_rng(4)
    T = np.full(200_000, 52.0)
    x, _ = bgnbd.simulate(GENERATOR_BGNBD, T, rng)
    assert bgnbd.expected_purchases(GENERATOR_BGNBD, 52.0) == pytest.approx(x.mean(), rel=0.02)
    # A new customer's conditional expectation is the unconditional one.
    zero = np.zeros(1)
    cond = bgnbd.conditional_expected_purchases(GENERATOR_BGNBD, 52.0, zero, zero, zero)
    assert cond[0] == pytest.approx(
        float(bgnbd.expected_purchases(GENERATOR_BGNBD, 52.0)), rel=1e-9
    )


def test_pareto_nbd_recovers_its_parameters_within_standard_errors() -> None:
    rng = np.random.default_rng(5)
    truth = (0.55, 10.5, 0.6, 12.0)
    T = rng.uniform(30, 80, 6_000)
    x, t_x = pareto_nbd.simulate(truth, T, rng)
    cols, weights = distinct_rows(x, np.round(t_x, 2), T.round(2))
    fit = pareto_nbd.fit(*cols, weights=weights)
    within(fit.params, fit.std_errors, truth)


def test_pareto_nbd_weighted_likelihood_and_extremes() -> None:
    rng = np.random.default_rng(6)
    T = np.round(rng.uniform(30, 80, 2_000))
    x, t_x = pareto_nbd.simulate((0.55, 10.5, 0.6, 12.0), T, rng)
    t_x = np.floor(t_x)
    (ux, ut, uT), w = distinct_rows(x, t_x, T)
    for params in ((0.55, 10.5, 0.6, 12.0), (0.9, 3.0, 1.5, 2.0)):  # alpha > beta and < beta
        plain = pareto_nbd.log_likelihood(params, x, t_x, T).sum()
        assert pareto_nbd.log_likelihood(params, ux, ut, uT) @ w == pytest.approx(plain, rel=1e-12)
    big_x = np.array([4000.0, 4000.0, 0.0])
    big_tx = np.array([2000.0, 5.0, 0.0])
    big_T = np.array([2080.0, 2080.0, 2080.0])
    for params in ((0.55, 10.5, 0.6, 12.0), (0.9, 3.0, 1.5, 2.0)):
        ll = pareto_nbd.log_likelihood(params, big_x, big_tx, big_T)
        alive = pareto_nbd.probability_alive(params, big_x, big_tx, big_T)
        assert np.all(np.isfinite(ll)) and np.all((alive >= 0) & (alive <= 1))


def test_gamma_gamma_recovers_the_generator_parameters_within_standard_errors() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(1, 25, 30_000).astype(float)
    m = gamma_gamma.simulate(GENERATOR_GG, x, rng)
    fit = gamma_gamma.fit(x, m)
    within(fit.params, fit.std_errors, GENERATOR_GG)


def test_gamma_gamma_weighted_likelihood_and_extremes() -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(1, 4, 3_000).astype(float)
    m = np.round(gamma_gamma.simulate(GENERATOR_GG, x, rng), -2)
    (ux, um), w = distinct_rows(x, m)
    plain = gamma_gamma.log_likelihood(GENERATOR_GG, x, m).sum()
    assert gamma_gamma.log_likelihood(GENERATOR_GG, ux, um) @ w == pytest.approx(plain, rel=1e-12)
    ll = gamma_gamma.log_likelihood(GENERATOR_GG, np.array([5000.0, 1.0]), np.array([1e7, 1.0]))
    assert np.all(np.isfinite(ll))
    with pytest.raises(ValidationError):
        gamma_gamma.fit([0, 1], [10, 10])


def test_sbg_reproduces_fader_hardie_2007_published_estimates() -> None:
    # Survivors of the "regular" and "high end" cohorts, years 0-7, printed in
    # Fader & Hardie (2007), Table 1; estimates and log-likelihoods from the paper.
    regular = sbg.fit([1000, 631, 468, 382, 326, 289, 262, 241])
    assert regular.params["alpha"] == pytest.approx(0.704, abs=0.0006)
    assert regular.params["beta"] == pytest.approx(1.182, abs=0.0006)
    assert regular.log_likelihood == pytest.approx(-1680.3, abs=0.06)
    high_end = sbg.fit([1000, 869, 743, 653, 593, 551, 517, 491])
    assert high_end.params["alpha"] == pytest.approx(0.668, abs=0.0006)
    assert high_end.params["beta"] == pytest.approx(3.806, abs=0.0006)
    assert high_end.log_likelihood == pytest.approx(-1611.2, abs=0.06)


def test_sbg_recovers_its_parameters_within_standard_errors() -> None:
    rng = np.random.default_rng(9)
    truth = (0.7, 1.2)
    active = sbg.simulate(truth, 20_000, 10, rng)
    fit = sbg.fit(active)
    within(fit.params, fit.std_errors, truth)
    survival = sbg.survival(fit.vector(), np.arange(11))
    assert survival[0] == pytest.approx(1.0)
    assert np.allclose(survival * active[0], active, rtol=0.05)


def test_clv_without_discount_is_expected_purchases_times_spend() -> None:
    x, t_x, T = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 30.0])
    spend = np.array([4000.0, 5000.0])

    def purchases(t: float) -> np.ndarray:
        return bgnbd.conditional_expected_purchases(GENERATOR_BGNBD, t, x, t_x, T)

    flat = value.discounted_value(
        purchases, spend, horizon=52.0, steps=12, annual_discount=0.0, unit_per_year=52.0
    )
    assert flat == pytest.approx(purchases(52.0) * spend, rel=1e-12)
    discounted = value.discounted_value(
        purchases, spend, horizon=52.0, steps=12, annual_discount=0.1, unit_per_year=52.0
    )
    assert np.all(discounted < flat) and np.all(discounted > flat / 1.1)


def test_bgnbd_predicts_holdout_purchases_by_frequency_bucket() -> None:
    from kizuna.analytics.clv.diagnostics import holdout_by_frequency

    rng = np.random.default_rng(10)
    n, calibration, holdout = 8_000, 52.0, 39.0
    r, alpha, a, b = GENERATOR_BGNBD
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    start = rng.uniform(0, 26, n)  # first purchases spread over half a year
    x, t_x, actual = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        horizon = calibration + holdout - start[i]
        times = np.sort(rng.uniform(0, horizon, rng.poisson(lam[i] * horizon)))
        times = times[: rng.geometric(p[i])]  # drops out after its J-th repeat purchase
        cal = times[times < calibration - start[i]]
        x[i], t_x[i] = cal.size, cal[-1] if cal.size else 0.0
        actual[i] = times.size - cal.size
    T = calibration - start
    fit = bgnbd.fit(x, t_x, T)
    table = holdout_by_frequency(
        lambda t, *h: bgnbd.conditional_expected_purchases(fit.vector(), t, *h),
        x, t_x, T, actual, holdout,
    )  # fmt: skip
    print("\n", table.to_string())
    overall = table.set_index("bucket").loc["all"]
    assert overall.predicted == pytest.approx(overall.actual, rel=0.08)
    for row in table.itertuples():
        if row.customers >= 300:
            assert row.predicted == pytest.approx(row.actual, rel=0.2, abs=0.1), row.bucket


def test_bgnbd_objective_split_over_threads_equals_the_plain_sum() -> None:
    x, t_x, T = weekly_histories(250_000, seed=11)
    objective = bgnbd._Objective(x, t_x, T, np.ones(x.size))
    assert len(objective.chunks) == 2
    params = np.array([0.9, 6.0, 1.0, 6.0])
    assert objective(params)[0] == pytest.approx(
        -bgnbd.log_likelihood(params, x, t_x, T).sum(), rel=1e-12
    )
