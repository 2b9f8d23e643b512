"""The customer-success health score: six 0-1 components, one weighted score.

Why these components: a B2B or SaaS customer leaves quietly long before the
renewal is lost. The habits that predict staying are using the product
often (``usage``) and widely (``breadth``), getting problems solved
(``support``), recommending it (``nps``), and learning it (``training``);
the ``renewal`` date says how much time is left to act. Each component is a
plain, documented transformation of recent data into 0 (bad) .. 1 (good),
so a customer-success manager can read *why* a score is low.

A component without data (no survey answer, no training, no contact) is
left out and the remaining weights are re-normalised, rather than guessing
a neutral value: a missing NPS answer should neither help nor hurt.

The score is 0-100. An account's components are the means of its people's
components (its renewal is its own), so an account is as healthy as the
people who use it.

All functions take DataFrames with the named columns and return new ones;
nothing here reads the database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from kizuna.errors import ConfigError

COMPONENTS = ("usage", "breadth", "support", "nps", "training", "renewal")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "usage": 0.3,
    "breadth": 0.15,
    "support": 0.15,
    "nps": 0.15,
    "training": 0.15,
    "renewal": 0.1,
}


@dataclass(frozen=True)
class HealthRules:
    """The windows and saturation points of the components (see docs/success.md).

    ``usage``: half from the *level*, 1 - exp(-active_days / usage_scale_days)
    over the last ``usage_days``; half from the *momentum*, this window's
    events per day over the same person's rate in the ``baseline_days``
    before it (capped at 1). A person whose use collapsed scores low even if
    they were once heavy users.
    ``breadth``: distinct kinds of behaviour event in ``breadth_days`` over
    ``breadth_target`` (capped at 1).
    ``support``: contacts opened in ``support_days``: 1 / (1 + unresolved +
    0.25 * resolved), blended 70/30 with mean satisfaction (1-5 scaled to 0-1)
    when rated.
    ``nps``: the latest NPS answer within ``nps_days``, divided by 10.
    ``training``: 0.75 * completed/enrolled + 0.25 * [holds a certificate].
    ``renewal``: 0.5 + 0.5 * min(1, days_to_renewal / renewal_days); 0.25
    when the renewal date has passed; no signal when unknown.
    """

    usage_days: int = 30
    baseline_days: int = 90
    usage_scale_days: float = 4.0
    breadth_days: int = 90
    breadth_target: int = 4
    support_days: int = 180
    nps_days: int = 365
    renewal_days: int = 180


def parse_weights(text: str) -> dict[str, float]:
    """``"usage=0.3,nps=0.2"`` into weights; unknown names or no positive weight fail loudly."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in COMPONENTS:
            raise ConfigError(
                f"health_weights: {part!r} is not NAME=WEIGHT with NAME one of "
                f"{', '.join(COMPONENTS)}"
            )
        try:
            weight = float(value)
        except ValueError:
            raise ConfigError(
                f"health_weights: weight {value!r} of {name} is not a number"
            ) from None
        if weight < 0 or not math.isfinite(weight):
            raise ConfigError(f"health_weights: weight of {name} must be a non-negative number")
        out[name] = weight
    if not any(out.values()):
        raise ConfigError("health_weights: give at least one positive weight")
    return out


def _since(frame: pd.DataFrame, column: str, end: datetime, days: int) -> pd.DataFrame:
    at = frame[column]
    return frame[(at < end) & (at >= end - timedelta(days=days))]


def usage_and_breadth(
    events: pd.DataFrame, people: pd.Index, end: datetime, rules: HealthRules
) -> pd.DataFrame:
    """``usage`` and ``breadth`` per person of ``people`` from events (customer_id, type, occurred_at).

    Everyone in ``people`` gets a value: no events at all is a usage of 0.
    """
    recent = _since(events, "occurred_at", end, rules.usage_days)
    prior_end = end - timedelta(days=rules.usage_days)
    prior = _since(events, "occurred_at", prior_end, rules.baseline_days)
    days = recent["occurred_at"].dt.floor("D")
    counted = recent.assign(day=days).groupby("customer_id")["day"].nunique()
    active: pd.Series[float] = counted.reindex(people, fill_value=0).astype(float)
    level = 1.0 - np.exp(-active / rules.usage_scale_days)
    rate_now = recent.groupby("customer_id").size().reindex(people, fill_value=0) / rules.usage_days
    before = prior.groupby("customer_id").size().reindex(people, fill_value=0)
    rate_before: pd.Series[float] = before / rules.baseline_days
    momentum = np.where(
        rate_before > 0,
        np.minimum(1.0, rate_now / rate_before.where(rate_before > 0, 1.0)),
        np.where(rate_now > 0, 1.0, 0.0),
    )
    wide = _since(events, "occurred_at", end, rules.breadth_days)
    kinds = wide.groupby("customer_id")["type"].nunique().reindex(people, fill_value=0)
    return pd.DataFrame(
        {
            "usage": 0.5 * level + 0.5 * momentum,
            "breadth": np.minimum(1.0, kinds / rules.breadth_target),
            "active": active > 0,
        },
        index=people,
    )


def support(contacts: pd.DataFrame, end: datetime, rules: HealthRules) -> pd.Series:
    """From contacts (customer_id, resolved, satisfaction, opened_at); only people with contacts."""
    c = _since(contacts, "opened_at", end, rules.support_days)
    if c.empty:
        return pd.Series(dtype=float, name="support")
    resolved = c["resolved"].astype(bool)
    g = c.assign(unresolved=~resolved, done=resolved).groupby("customer_id")
    base = 1.0 / (1.0 + g["unresolved"].sum() + 0.25 * g["done"].sum())
    rated = (g["satisfaction"].mean() - 1.0) / 4.0
    blended = np.where(rated.notna(), 0.7 * base + 0.3 * rated.fillna(0.0), base)
    return pd.Series(blended, index=base.index, name="support")


def nps(answers: pd.DataFrame, end: datetime, rules: HealthRules) -> pd.Series:
    """The latest NPS answer (customer_id, kind, score, answered_at) within the window, / 10."""
    a = _since(answers[answers["kind"] == "nps"], "answered_at", end, rules.nps_days)
    latest = a.sort_values("answered_at").groupby("customer_id")["score"].last()
    return (latest.astype(float) / 10.0).clip(0.0, 1.0).rename("nps")


def training(trainings: pd.DataFrame, end: datetime) -> pd.Series:
    """From trainings (customer_id, enrolled_at, completed_at, certificate_id) enrolled before ``end``."""
    t = trainings[trainings["enrolled_at"] < end]
    if t.empty:
        return pd.Series(dtype=float, name="training")
    done = t["completed_at"].notna() & (t["completed_at"] < end)
    certified = done & t["certificate_id"].notna()
    g = t.assign(done=done, certified=certified).groupby("customer_id")
    return (0.75 * g["done"].mean() + 0.25 * g["certified"].max().astype(float)).rename("training")


def renewal(renewal_dates: pd.Series, today: date, rules: HealthRules) -> pd.Series:
    """Per account from its renewal date (NaT/None: no signal)."""
    days = pd.Series(
        [(d - today).days if isinstance(d, date) else np.nan for d in renewal_dates],
        index=renewal_dates.index,
        dtype=float,
    )
    value = np.where(days < 0, 0.25, 0.5 + 0.5 * np.minimum(1.0, days / rules.renewal_days))
    return pd.Series(np.where(days.isna(), np.nan, value), index=days.index, name="renewal")


def weighted_score(components: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """0-100: the weighted mean of the components present in each row."""
    names = [c for c in COMPONENTS if weights.get(c, 0.0) > 0 and c in components]
    values = components[names].to_numpy(dtype=float)
    w = np.array([weights[c] for c in names])
    present = ~np.isnan(values)
    total = (np.where(present, values, 0.0) * w).sum(axis=1)
    norm = (present * w).sum(axis=1)
    score = np.where(norm > 0, 100.0 * total / np.where(norm > 0, norm, 1.0), 0.0)
    return pd.Series(score, index=components.index, name="score")


@dataclass(frozen=True)
class HealthResult:
    """Per-customer and per-account components and scores."""

    customers: pd.DataFrame  #: index customer_id; account_id, COMPONENTS, active, score
    accounts: pd.DataFrame  #: index account_id; COMPONENTS, members, active_members, score


def compute(
    *,
    members: pd.DataFrame,
    accounts: pd.DataFrame,
    events: pd.DataFrame,
    contacts: pd.DataFrame,
    answers: pd.DataFrame,
    trainings: pd.DataFrame,
    end: datetime,
    today: date,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    rules: HealthRules = HealthRules(),
) -> HealthResult:
    """Health of every person in ``members`` (customer_id, account_id) and every account.

    ``accounts`` has ``account_id`` and ``renewal_date``; ``end`` is the
    exclusive end instant of ``today`` (the computation day).
    """
    for name, frame, cols in (
        ("members", members, ("customer_id", "account_id")),
        ("accounts", accounts, ("account_id", "renewal_date")),
        ("events", events, ("customer_id", "type", "occurred_at")),
        ("contacts", contacts, ("customer_id", "resolved", "satisfaction", "opened_at")),
        ("answers", answers, ("customer_id", "kind", "score", "answered_at")),
        ("trainings", trainings, ("customer_id", "enrolled_at", "completed_at", "certificate_id")),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {', '.join(missing)}")
    people = pd.Index(members["customer_id"].to_numpy(), name="customer_id")
    acc = accounts.set_index("account_id")
    renew = renewal(acc["renewal_date"], today, rules)
    per = usage_and_breadth(events, people, end, rules)
    per["support"] = support(contacts, end, rules).reindex(people)
    per["nps"] = nps(answers, end, rules).reindex(people)
    per["training"] = training(trainings, end).reindex(people)
    per["account_id"] = members["account_id"].to_numpy()
    per["renewal"] = renew.reindex(per["account_id"]).to_numpy()
    per["score"] = weighted_score(per, weights)

    by = per.groupby("account_id")
    rolled = by[[c for c in COMPONENTS if c != "renewal"]].mean()
    # An account nobody uses has no usage at all, not an unknown one.
    rolled = rolled.reindex(acc.index).fillna({"usage": 0.0, "breadth": 0.0})
    rolled["members"] = by.size().reindex(acc.index, fill_value=0)
    rolled["active_members"] = by["active"].sum().reindex(acc.index, fill_value=0)
    rolled["renewal"] = renew
    rolled["score"] = weighted_score(rolled, weights)
    rolled.index.name = "account_id"
    return HealthResult(customers=per, accounts=rolled)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting half.

    Used to check that health ranks the truly at-risk below the healthy
    (positives: healthy accounts).
    """
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos = np.asarray(positive, bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("need at least one positive and one negative")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
