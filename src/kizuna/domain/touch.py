"""Touch models: how much human time each account gets, from its value and health.

Staff time is the scarcest resource of a customer-success team, so it goes
where it pays: the most valuable accounts get a named person (high-touch),
the middle gets pooled, scheduled contact (low-touch), healthy small
accounts are served by the community (user groups, forums, champions), and
the rest by automated journeys (tech-touch).

The rules, in order (value is the account's percentile of revenue among all
accounts, 0-1; health is its score / 100):

1. value >= ``high_value``                    -> ``high_touch``
2. value >= ``low_value``                     -> ``low_touch``
3. health < ``at_risk`` and value >= low_value / 2 -> ``low_touch``
   (a mid-sized account in trouble is worth a person's rescue call)
4. health >= ``healthy``                      -> ``community_touch``
5. otherwise                                  -> ``tech_touch``
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kizuna.errors import ConfigError

TOUCH_MODELS = ("high_touch", "low_touch", "tech_touch", "community_touch")


@dataclass(frozen=True)
class TouchThresholds:
    """Where the touch models split; see the module docstring."""

    high_value: float = 0.8
    low_value: float = 0.5
    healthy: float = 0.7
    at_risk: float = 0.4

    def __post_init__(self) -> None:
        for name in ("high_value", "low_value", "healthy", "at_risk"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0) or not math.isfinite(value):
                raise ConfigError(f"touch_thresholds: {name} must be between 0 and 1, got {value}")
        if self.low_value > self.high_value:
            raise ConfigError("touch_thresholds: low_value must not exceed high_value")
        if self.at_risk > self.healthy:
            raise ConfigError("touch_thresholds: at_risk must not exceed healthy")

    @classmethod
    def parse(cls, text: str) -> TouchThresholds:
        """``"high_value=0.8,low_value=0.5,healthy=0.7,at_risk=0.4"`` (any subset)."""
        values: dict[str, float] = {}
        known = ("high_value", "low_value", "healthy", "at_risk")
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, raw = part.partition("=")
            name = name.strip()
            if not sep or name not in known:
                raise ConfigError(
                    f"touch_thresholds: {part!r} is not NAME=VALUE with NAME one of {', '.join(known)}"
                )
            try:
                values[name] = float(raw)
            except ValueError:
                raise ConfigError(f"touch_thresholds: {raw!r} of {name} is not a number") from None
        return cls(**values)

    def to_dict(self) -> dict[str, float]:
        return {
            "high_value": self.high_value,
            "low_value": self.low_value,
            "healthy": self.healthy,
            "at_risk": self.at_risk,
        }


def touch_model(value_percentile: float, health: float, t: TouchThresholds) -> str:
    """The touch model of one account (health in 0-1, value as a 0-1 percentile)."""
    if value_percentile >= t.high_value:
        return "high_touch"
    if value_percentile >= t.low_value:
        return "low_touch"
    if health < t.at_risk and value_percentile >= t.low_value / 2:
        return "low_touch"
    if health >= t.healthy:
        return "community_touch"
    return "tech_touch"


def band(health: float, t: TouchThresholds) -> str:
    """``healthy``, ``watch`` or ``at_risk`` for a health in 0-1."""
    if health >= t.healthy:
        return "healthy"
    if health < t.at_risk:
        return "at_risk"
    return "watch"
