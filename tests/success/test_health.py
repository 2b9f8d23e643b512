"""Health scores find the accounts the generator planted as at risk; runs form a trend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kizuna.analytics import health as h
from kizuna.config import load_settings
from kizuna.domain.touch import TouchThresholds, band, touch_model
from kizuna.errors import ConfigError
from kizuna.services import health

from .conftest import LAST_DAY

END = datetime(2026, 11, 1, tzinfo=UTC)


def _events(rows: list[tuple[int, str, int]]) -> pd.DataFrame:
    """(customer, type, days before END) rows as an events frame."""
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "type": [r[1] for r in rows],
            "occurred_at": pd.to_datetime(
                [END - timedelta(days=r[2], hours=1) for r in rows], utc=True
            ),
        }
    )


def _empty(*cols: str) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns, UTC]" if c.endswith("_at") else object) for c in cols}
    )


def test_usage_that_collapsed_scores_below_steady_usage() -> None:
    steady = [(1, "login", d) for d in range(0, 120, 3)] + [
        (1, "feature_use", d) for d in range(1, 120, 5)
    ]
    collapsed = [(2, "login", d) for d in range(40, 120, 2)] + [(2, "login", 5)]
    people = pd.Index([1, 2, 3])
    out = h.usage_and_breadth(_events(steady + collapsed), people, END, h.HealthRules())
    assert out.loc[1, "usage"] > 0.7
    assert out.loc[2, "usage"] < 0.35
    assert out.loc[3, "usage"] == 0.0 and out.loc[3, "breadth"] == 0.0
    assert out.loc[1, "breadth"] == 0.5  # two kinds of four


def test_missing_components_are_left_out_not_guessed() -> None:
    frame = pd.DataFrame(
        {"usage": [1.0, 1.0], "nps": [np.nan, 0.0], "breadth": [np.nan, np.nan]}, index=[1, 2]
    )
    score = h.weighted_score(frame, {"usage": 1.0, "nps": 1.0, "breadth": 1.0})
    assert score.loc[1] == 100.0  # only usage is known
    assert score.loc[2] == 50.0


def test_components_from_contacts_answers_trainings_and_renewal() -> None:
    rules = h.HealthRules()
    contacts = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "resolved": [False, True, True],
            "satisfaction": [None, None, 5],
            "opened_at": pd.to_datetime([END - timedelta(days=d) for d in (3, 10, 20)], utc=True),
        }
    )
    support = h.support(contacts, END, rules)
    assert support.loc[1] == pytest.approx(1 / 2.25) and support.loc[2] == pytest.approx(
        0.7 / 1.25 + 0.3
    )
    answers = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "kind": ["nps", "nps"],
            "score": [2, 9],
            "answered_at": pd.to_datetime(
                [END - timedelta(days=100), END - timedelta(days=5)], utc=True
            ),
        }
    )
    assert h.nps(answers, END, rules).loc[1] == pytest.approx(0.9)  # the latest answer counts
    trainings = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "enrolled_at": pd.to_datetime([END - timedelta(days=50)] * 2, utc=True),
            "completed_at": pd.to_datetime([END - timedelta(days=40), None], utc=True),
            "certificate_id": ["CERT-1", None],
        }
    )
    assert h.training(trainings, END).loc[1] == pytest.approx(0.75 * 0.5 + 0.25)
    renew = h.renewal(
        pd.Series([date(2027, 6, 1), date(2026, 11, 30), date(2026, 9, 1), None]), LAST_DAY, rules
    )
    assert renew.iloc[0] == 1.0 and renew.iloc[1] == pytest.approx(0.5 + 0.5 * 30 / 180)
    assert renew.iloc[2] == 0.25 and np.isnan(renew.iloc[3])


def test_weights_are_validated_with_an_actionable_message(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="health_weights: 'happiness=1'"):
        h.parse_weights("usage=1,happiness=1")
    with pytest.raises(ConfigError, match="at least one positive"):
        h.parse_weights("usage=0")
    assert h.parse_weights("usage=2, nps=1") == {"usage": 2.0, "nps": 1.0}
    settings = load_settings(
        env={"KIZUNA_HEALTH_WEIGHTS": "usage=1", "KIZUNA_TOUCH_THRESHOLDS": "healthy=0.9"}
    )
    assert health.weights_of(settings) == {"usage": 1.0}
    assert health.thresholds_of(settings).healthy == 0.9
    with pytest.raises(ConfigError, match="at_risk must not exceed healthy"):
        TouchThresholds.parse("healthy=0.3,at_risk=0.5")


def test_touch_models_follow_value_then_health() -> None:
    t_ = TouchThresholds()
    assert touch_model(0.95, 0.1, t_) == "high_touch"  # valuable and in trouble: a named person
    assert touch_model(0.6, 0.9, t_) == "low_touch"
    assert touch_model(0.3, 0.2, t_) == "low_touch"  # mid-sized rescue
    assert touch_model(0.1, 0.9, t_) == "community_touch"
    assert touch_model(0.1, 0.5, t_) == "tech_touch"
    assert (band(0.75, t_), band(0.5, t_), band(0.2, t_)) == ("healthy", "watch", "at_risk")


def test_auc_counts_ties_half() -> None:
    assert h.auc(np.array([1.0, 2.0, 3.0, 4.0]), np.array([False, False, True, True])) == 1.0
    assert h.auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5
