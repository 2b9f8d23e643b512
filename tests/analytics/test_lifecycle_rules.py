"""Lifecycle rules are workspace configuration: a changed rule changes who is in which stage."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest
from tests.analytics import handmade as hm

from kizuna.analytics import engine, kpi, lifecycle
from kizuna.bootstrap import Context
from kizuna.config import load_settings
from kizuna.errors import ConfigError
from kizuna.services.scoring import options_from_settings


def _stages(rules: lifecycle.LifecycleRules) -> dict[tuple[int, int], str]:
    o = hm.orders(
        [(1, f"2025-0{m}-0{d}", 100) for m in (1, 2, 3) for d in (2, 5)]  # 6 purchase days
        + [(2, "2025-03-10", 100)]                                        # new in March
        + [(3, "2024-10-01", 100), (3, "2024-10-20", 100)]               # quiet since October
        + [(4, "2025-02-10", 100), (4, "2025-03-12", 100), (4, "2025-03-14", 100)]
    )  # fmt: skip
    signals = pa.table(
        {"customer_id": [1], "day": [kpi.day_of(hm.date(2025, 1, 3))], "value": [0.9],
         "weight": [1.0]}
    )  # fmt: skip
    advocacy = pa.table({"customer_id": [1], "day": [kpi.day_of(hm.date(2025, 3, 20))]})
    data = engine.from_arrow({"o": o, "s": signals, "a": advocacy})
    feb, mar = hm.month_of(hm.date(2025, 2, 1)), hm.month_of(hm.date(2025, 3, 1))
    snaps = lifecycle.snapshots(data["o"], [feb, mar], rules, signals=data["s"], advocacy=data["a"])
    return {(r.customer_id, r.month - mar): r.stage for r in snaps.to_pandas().itertuples()}


def test_default_rules_text_gives_the_built_in_rules() -> None:
    assert lifecycle.parse_rules(lifecycle.DEFAULT_RULES_TEXT) == lifecycle.LifecycleRules()
    assert lifecycle.parse_rules("") == lifecycle.LifecycleRules()
    got = _stages(lifecycle.parse_rules(lifecycle.DEFAULT_RULES_TEXT))
    assert got == {
        (1, -1): "repeat", (1, 0): "ambassador",
        (2, 0): "new",
        (3, -1): "at_risk", (3, 0): "at_risk",
        (4, -1): "new", (4, 0): "repeat",
    }  # fmt: skip


def test_changed_rules_change_the_stage_assignment() -> None:
    # Customer 3 has been idle 131 days at the end of February, 162 at the end
    # of March: lapsed once lapsed_days is 150 (March) or 120 (both months).
    shorter = _stages(lifecycle.parse_rules("at_risk_days=60, lapsed_days=150"))
    assert (shorter[(3, -1)], shorter[(3, 0)]) == ("at_risk", "lapsed")
    assert _stages(lifecycle.parse_rules("lapsed_days=120"))[(3, -1)] == "lapsed"
    # Customer 1 (attached, 4 purchase days by February, referral only in March)
    # is loyal in February once loyalty needs 4 purchase days instead of 5.
    assert _stages(lifecycle.parse_rules("loyal_min_purchases=4"))[(1, -1)] == "loyal"
    # Customer 4 (3 purchase days by March) is still "new" if repeat needs 4.
    stricter = _stages(lifecycle.parse_rules("repeat_min_purchases=4"))
    assert stricter[(4, 0)] == "new"
    assert stricter[(1, 0)] == "ambassador"  # untouched by that rule
    # The attitude threshold is the loyalty definition's: above 0.9 nobody is loyal.
    strict_attitude = lifecycle.parse_rules("", attitude_threshold=0.95)
    assert _stages(strict_attitude)[(1, 0)] == "repeat"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("at_risk_days=90,lapsed=180", "lapsed=180"),
        ("at_risk_days=ninety", "not a whole number"),
        ("at_risk_days=0", "must be positive"),
        ("at_risk_days=200", "lapsed_days (180) must be longer than at_risk_days (200)"),
        ("loyal_min_purchases=1", "loyal_min_purchases (1) must be at least"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="lifecycle_rules") as err:
        lifecycle.parse_rules(text)
    assert message in str(err.value)


def test_workspace_setting_reaches_the_scoring_options(tmp_path: object) -> None:
    settings = load_settings(
        str(tmp_path),
        env={
            "KIZUNA_LIFECYCLE_RULES": "at_risk_days=45,lapsed_days=120",
            "KIZUNA_LOYALTY_ATTITUDE_THRESHOLD": "0.7",
        },
    )
    rules = options_from_settings(Context(settings)).lifecycle_rules
    assert (rules.at_risk_days, rules.lapsed_days, rules.loyal_min_purchases) == (45, 120, 5)
    assert rules.attitude_threshold == 0.7  # shared with the loyalty matrix
    broken = dataclasses.replace(settings, lifecycle_rules="lapsed_days=30")
    with pytest.raises(ConfigError, match="lapsed_days"):
        options_from_settings(Context(broken))
