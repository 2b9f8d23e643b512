"""B2B intent: how hard each account is researching each topic, and who surges now.

Two numbers per (account, topic), because they answer different questions:

*Score* - "how much attention is this account paying to the topic?" - is an
exponentially decayed sum over the account's research events,

    score = (1 + ln(people_28d)) * sum_e w_e * 2^(-age_e / half_life)

with w_e = 1 + min(dwell_e, 600 s) / 120 s (reading two minutes counts
double), doubled again on high-intent pages (pricing, demo, trial, quote,
contact), and people_28d the distinct people of the account who read about
the topic in the last 28 days (several people researching is a buying group,
not one curious employee).

*Surge* - "is this unusual *for this account*?" - compares this week's
*visits* (distinct person-days with an event on the topic; events within a
visit are clustered, visits are close to independent) with the account's own
baseline rate over ``baseline_weeks`` weeks that end ``baseline_gap_weeks``
before this week (the gap keeps a surge that began a few weeks ago from
becoming its own baseline: research campaigns run for weeks). The rate is
shrunk towards the account's mean per-topic rate with ``prior_weeks`` of
pseudo-observations, so a topic the account never read has a sensible,
non-zero expectation. Under "nothing changed", this week's visits are
Poisson(lambda); the surge test is the one-sided tail

    p = P(X >= c | lambda) = poisson.sf(c - 1, lambda)

and an account surges on a topic when p < ``surge_p`` and c >= ``min_visits``.
``z = (c - lambda) / sqrt(lambda)`` is reported as an effect size for sorting.
With ``surge_p = 0.001`` about one in a thousand quiet (account, topic) pairs
is flagged by chance each week.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy import stats

HIGH_INTENT_PAGES = re.compile(r"pricing|price|demo|trial|quote|contact|plan", re.IGNORECASE)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class IntentRules:
    """Parameters of the score and the surge test; see the module docstring."""

    half_life_days: float = 7.0
    baseline_weeks: int = 26
    baseline_gap_weeks: int = 8
    surge_p: float = 0.001
    min_visits: int = 3
    prior_weeks: float = 4.0
    dwell_cap_seconds: int = 600

    def __post_init__(self) -> None:
        if not (self.half_life_days > 0 and math.isfinite(self.half_life_days)):
            raise ValueError("intent half-life must be a positive number of days")
        if self.baseline_weeks < 1:
            raise ValueError("intent baseline needs at least one week")
        if not 0 < self.surge_p < 1:
            raise ValueError("intent surge_p must be between 0 and 1 (exclusive)")


COLUMNS = ("account_id", "customer_id", "topic", "occurred_at", "dwell_seconds", "page")


def _check(events: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack column(s) {', '.join(missing)}")


def intent(events: pd.DataFrame, end: datetime, rules: IntentRules = IntentRules()) -> pd.DataFrame:
    """Score and surge statistics per (account_id, topic) for the week ending at ``end``.

    ``events`` has :data:`COLUMNS` (``occurred_at`` tz-aware; ``dwell_seconds``
    and ``page`` may be null). Returns one row per pair seen in the baseline
    or this week: ``account_id, topic, score, visits, people, baseline, z,
    p_value, surging``, sorted by surging first, then z.
    """
    _check(events)
    start = end - WEEK * (rules.baseline_weeks + rules.baseline_gap_weeks + 1)
    ev = events[(events["occurred_at"] < end) & (events["occurred_at"] >= start)]
    ev = ev[ev["topic"].notna()].copy()
    out_cols = [
        "account_id",
        "topic",
        "score",
        "visits",
        "people",
        "baseline",
        "z",
        "p_value",
        "surging",
    ]
    if ev.empty:
        return pd.DataFrame({c: [] for c in out_cols})
    age_days = (end - ev["occurred_at"]).dt.total_seconds() / 86_400.0
    dwell = ev["dwell_seconds"].astype(float).fillna(0.0).clip(0, rules.dwell_cap_seconds)
    weight = 1.0 + dwell / 120.0
    weight = weight * np.where(ev["page"].fillna("").str.contains(HIGH_INTENT_PAGES), 2.0, 1.0)
    ev["decayed"] = weight * np.power(0.5, age_days / rules.half_life_days)
    ev["day"] = ev["occurred_at"].dt.floor("D")
    keys = ["account_id", "topic"]

    recent_28 = ev[age_days < 28]
    people_28 = recent_28.groupby(keys)["customer_id"].nunique()
    decayed = ev.groupby(keys)["decayed"].sum()

    visits = ev.drop_duplicates(["account_id", "topic", "customer_id", "day"])
    this_week = visits[visits["occurred_at"] >= end - WEEK]
    before = visits[visits["occurred_at"] < end - WEEK * (1 + rules.baseline_gap_weeks)]
    c = this_week.groupby(keys).size()
    people = this_week.groupby(keys)["customer_id"].nunique()
    b = before.groupby(keys).size()

    frame = pd.DataFrame({"decayed": decayed})
    frame["people_28"] = people_28.reindex(frame.index).fillna(0)
    frame["visits"] = c.reindex(frame.index).fillna(0).astype(int)
    frame["people"] = people.reindex(frame.index).fillna(0).astype(int)
    frame["baseline_visits"] = b.reindex(frame.index).fillna(0)
    frame = frame.reset_index()

    # Shrink each pair's weekly rate towards the account's mean per-topic rate.
    n_topics = max(1, ev["topic"].nunique())
    account_rate = frame.groupby("account_id")["baseline_visits"].sum() / (
        rules.baseline_weeks * n_topics
    )
    floor = 1.0 / (rules.baseline_weeks * n_topics)
    mu = np.maximum(frame["account_id"].map(account_rate).to_numpy(float), floor)
    lam = (frame["baseline_visits"].to_numpy(float) + rules.prior_weeks * mu) / (
        rules.baseline_weeks + rules.prior_weeks
    )
    count = frame["visits"].to_numpy(int)
    p_value = stats.poisson.sf(count - 1, lam)
    frame["baseline"] = lam
    frame["z"] = (count - lam) / np.sqrt(lam)
    frame["p_value"] = p_value
    frame["surging"] = (p_value < rules.surge_p) & (count >= rules.min_visits)
    frame["score"] = frame["decayed"] * (1.0 + np.log(np.maximum(frame["people_28"], 1.0)))
    frame = frame.sort_values(["surging", "z"], ascending=[False, False])
    return frame[out_cols].reset_index(drop=True)
