"""The intent score and surge test, on simulated research with known rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kizuna.analytics.intent import IntentRules, intent

END = datetime(2026, 11, 1, tzinfo=UTC)
RULES = IntentRules()


def _simulate(
    rates: np.ndarray, surge: np.ndarray, rng: np.random.Generator, factor: float
) -> pd.DataFrame:
    """Visits per (account, topic): Poisson(rate) a week, times ``factor`` in the last week
    for the planted pairs. Each visit is its own person and day, so visits are exactly Poisson.
    """
    rows: list[tuple[int, int, str, datetime]] = []
    weeks = RULES.baseline_weeks + RULES.baseline_gap_weeks + 1
    person = 0
    for pair, rate in enumerate(rates):
        for week in range(weeks):  # week 0 is the current one
            lam = rate * (factor if surge[pair] and week == 0 else 1.0)
            for _ in range(rng.poisson(lam)):
                person += 1
                at = (
                    END
                    - timedelta(weeks=week)
                    + timedelta(seconds=-float(rng.uniform(1, 7 * 86_400 - 1)))
                )
                rows.append((pair // 3, person, f"topic-{pair % 3}", at))
    frame = pd.DataFrame(rows, columns=["account_id", "customer_id", "topic", "occurred_at"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame["dwell_seconds"] = 60
    frame["page"] = None
    return frame


def test_surges_are_found_and_quiet_pairs_are_not() -> None:
    rng = np.random.default_rng(7)
    pairs = 1_500
    rates = rng.uniform(1.0, 6.0, pairs)  # visits per week, known
    surge = rng.random(pairs) < 0.1
    result = intent(_simulate(rates, surge, rng, factor=6.0), END, RULES)
    pair = result["account_id"].to_numpy() * 3 + result["topic"].str[-1].astype(int).to_numpy()
    flagged = np.zeros(pairs, bool)
    flagged[pair[result["surging"].to_numpy(bool)]] = True
    recall = flagged[surge].mean()
    false_positive_rate = flagged[~surge].mean()
    assert recall >= 0.85, recall
    # surge_p = 0.001 per quiet pair; allow estimation noise of the baseline.
    assert false_positive_rate <= 0.005, false_positive_rate
    # The baseline recovers the known rate.
    quiet = result[~surge[pair]]
    known = rates[pair[~surge[pair]]]
    assert np.median(np.abs(quiet["baseline"].to_numpy() / known - 1)) < 0.15


def test_noise_alone_is_flagged_at_about_the_chosen_rate() -> None:
    rng = np.random.default_rng(11)
    pairs = 3_000
    rates = rng.uniform(2.0, 8.0, pairs)
    result = intent(_simulate(rates, np.zeros(pairs, bool), rng, factor=1.0), END, RULES)
    assert result["surging"].mean() <= 0.004


def test_decay_halves_an_events_weight_every_half_life() -> None:
    def one(age_days: float, dwell: int = 0, page: str | None = None) -> float:
        frame = pd.DataFrame(
            {
                "account_id": [1], "customer_id": [1], "topic": ["pricing"],
                "occurred_at": pd.to_datetime([END - timedelta(days=age_days)], utc=True),
                "dwell_seconds": [dwell], "page": [page],
            }
        )  # fmt: skip
        return float(intent(frame, END, RULES)["score"].iloc[0])

    fresh = one(0.001)
    assert one(7.001) == pytest.approx(fresh / 2, rel=1e-3)
    assert one(14.001) == pytest.approx(fresh / 4, rel=1e-3)
    assert one(0.001, dwell=120) == pytest.approx(2 * fresh, rel=1e-3)  # two minutes read
    assert one(0.001, page="/business/pricing") == pytest.approx(2 * fresh, rel=1e-3)


def test_more_people_from_one_account_raise_the_score() -> None:
    base = {
        "account_id": [1, 1, 1, 1], "topic": ["t"] * 4, "dwell_seconds": [0] * 4, "page": [None] * 4,
        "occurred_at": pd.to_datetime([END - timedelta(days=1)] * 4, utc=True),
    }  # fmt: skip
    one_person = intent(pd.DataFrame({**base, "customer_id": [1, 1, 1, 1]}), END, RULES)
    four_people = intent(pd.DataFrame({**base, "customer_id": [1, 2, 3, 4]}), END, RULES)
    assert four_people["score"].iloc[0] > 2 * one_person["score"].iloc[0]
    # Four events of one person on one day are one visit; of four people, four visits.
    assert (one_person["visits"].iloc[0], four_people["visits"].iloc[0]) == (1, 4)


def test_bad_rules_and_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="half-life"):
        IntentRules(half_life_days=0)
    with pytest.raises(ValueError, match="surge_p"):
        IntentRules(surge_p=1.5)
    with pytest.raises(ValueError, match="lack column"):
        intent(pd.DataFrame({"account_id": []}), END)
