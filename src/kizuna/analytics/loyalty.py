"""The loyalty matrix: behaviour × attitude (Dick & Basu 1994), defined by configuration.

A big spender is not necessarily loyal. Each customer gets two scores in
[0, 1]:

* **behaviour**: the percentile rank of a weighted mean of percentile ranks
  of behavioural measures (historical spend, predicted CLV and purchase
  frequency by default), so a threshold of 0.7 means "the top 30%";
* **attitude**: a recency-weighted mean of attitudinal signals, each mapped to
  [0, 1]: NPS answers (score/10), CSAT answers and support satisfaction
  ((score−1)/4), review ratings ((rating−1)/4), acts that only an attached
  customer does, counted as 1: referrals and community participation, and
  optionally the tone of their comments ((sentiment+1)/2, weight ``tone``). A
  signal of age a days weighs ``weight · 2^(−a / half_life_days)``, so this
  year's detractor outweighs a promoter of three years ago.

Thresholds on the two scores give *true* (both high), *latent* (attached,
buys little), *spurious* (buys a lot, not attached) and *none*. A customer
with no attitudinal signal at all is put in the explicit state
``attitude_unknown`` (with the behaviour axis still reported), never
silently counted as unattached.

References
----------
Dick, A. S. & Basu, K. (1994). Customer loyalty: Toward an integrated
conceptual framework. *Journal of the Academy of Marketing Science* 22(2),
99-113.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kizuna.analytics.summary import require
from kizuna.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir

CLASSES = ("true", "latent", "spurious", "none", "attitude_unknown")
LABELS: dict[str, dict[str, str]] = {
    "true": {"en": "True loyalty", "ja": "真のロイヤルティ"},
    "latent": {"en": "Latent loyalty", "ja": "潜在的ロイヤルティ"},
    "spurious": {"en": "Spurious loyalty", "ja": "見せかけのロイヤルティ"},
    "none": {"en": "No loyalty", "ja": "ロイヤルティなし"},
    "attitude_unknown": {"en": "Attitude unknown", "ja": "態度不明"},
}
SIGNALS = ("nps", "csat", "support", "review", "referral", "community", "tone")
BEHAVIOURS = ("clv", "frequency", "monetary", "recency")


def parse_weights(text: str, known: tuple[str, ...], what: str) -> dict[str, float]:
    """``"a=1, b=0.5"`` into a mapping, refusing unknown names and negative weights."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise ConfigError(
                f"{what}: {part!r} is not NAME=WEIGHT with NAME one of {', '.join(known)}"
            )
        try:
            out[name] = float(value)
        except ValueError:
            raise ConfigError(f"{what}: weight {value!r} of {name} is not a number") from None
        if out[name] < 0 or not math.isfinite(out[name]):
            raise ConfigError(f"{what}: weight of {name} must be a non-negative number")
    if not any(out.values()):
        raise ConfigError(f"{what}: give at least one positive weight")
    return out


@dataclass(frozen=True)
class LoyaltyDefinition:
    """What counts as loyal in this business; read from the workspace settings."""

    behaviour_weights: Mapping[str, float] = field(
        default_factory=lambda: {"monetary": 0.6, "clv": 0.2, "frequency": 0.2}
    )
    attitude_weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "nps": 1.0,
            "csat": 0.7,
            "support": 0.3,
            "review": 0.5,
            "referral": 1.0,
            "community": 0.8,
        }
    )
    behaviour_threshold: float = 0.7
    attitude_threshold: float = 0.6
    half_life_days: float = 365.0

    def to_dict(self) -> dict[str, object]:
        return {
            "behaviour_weights": dict(self.behaviour_weights),
            "attitude_weights": dict(self.attitude_weights),
            "behaviour_threshold": self.behaviour_threshold,
            "attitude_threshold": self.attitude_threshold,
            "half_life_days": self.half_life_days,
        }


def attitude_signals(
    *,
    answers: ir.Table | None = None,
    reviews: ir.Table | None = None,
    referrals: ir.Table | None = None,
    community: ir.Table | None = None,
    contacts: ir.Table | None = None,
    tone: ir.Table | None = None,
    weights: Mapping[str, float],
) -> ir.Table:
    """Every attitudinal signal as ``customer_id, day, value, weight`` rows.

    The tables are those of :mod:`kizuna.analytics.extract`; any may be
    left out. ``tone`` is ``customer_id, day, tone`` (comment sentiment,
    −1 … +1, from :func:`kizuna.analytics.tone.comment_tone`), used with the
    ``tone`` weight as (tone + 1) / 2.
    """
    import ibis

    parts: list[ir.Table] = []

    def add(table: ir.Table, day: str, value: ir.FloatingValue, name: str) -> None:
        if weights.get(name, 0) > 0:
            parts.append(
                table.select(
                    customer_id=table.customer_id.cast("int64"),
                    day=table[day].cast("int64"),
                    value=value.cast("float64"),
                    weight=ibis.literal(float(weights[name])),
                )
            )

    if answers is not None:
        require(answers, "customer_id", "kind", "score", "answered_at_day", what="survey answers")
        nps = answers.filter(answers.kind == "nps")
        add(nps, "answered_at_day", nps.score.cast("float64") / 10.0, "nps")
        csat = answers.filter(answers.kind == "csat")
        add(csat, "answered_at_day", (csat.score.cast("float64") - 1.0) / 4.0, "csat")
    if reviews is not None:
        require(reviews, "customer_id", "rating", "posted_at_day", what="reviews")
        rated = reviews.filter(reviews.rating.notnull())
        add(rated, "posted_at_day", (rated.rating.cast("float64") - 1.0) / 4.0, "review")
    if referrals is not None:
        require(referrals, "customer_id", "referred_at_day", what="referrals")
        add(referrals, "referred_at_day", ibis.literal(1.0), "referral")
    if community is not None:
        require(community, "customer_id", "occurred_at_day", what="community activity")
        add(community, "occurred_at_day", ibis.literal(1.0), "community")
    if contacts is not None:
        require(contacts, "customer_id", "satisfaction", "opened_at_day", what="contacts")
        rated_c = contacts.filter(contacts.satisfaction.notnull())
        add(
            rated_c,
            "opened_at_day",
            (rated_c.satisfaction.cast("float64") - 1.0) / 4.0,
            "support",
        )
    if tone is not None:
        require(tone, "customer_id", "day", "tone", what="feedback tone")
        add(tone, "day", (tone.tone.cast("float64") + 1.0) / 2.0, "tone")
    if not parts:
        raise ConfigError("the loyalty definition gives no attitudinal signal a positive weight")
    return ibis.union(*parts)


def attitude_scores(signals: ir.Table, *, end_day: int, half_life_days: float) -> ir.Table:
    """``customer_id, attitude, signals`` from signals before ``end_day``, recency weighted."""
    s = signals.filter(signals.day < end_day)
    decay = math.log(2.0) / half_life_days
    w = s.weight * ((s.day - end_day).cast("float64") * decay).exp()
    s = s.mutate(w=w, wv=w * s.value)
    agg = s.group_by("customer_id").aggregate(wv=s.wv.sum(), w=s.w.sum(), signals=s.count())
    return agg.select("customer_id", attitude=agg.wv / agg.w, signals=agg.signals)


def behaviour_scores(
    customers: ir.Table, *, weights: Mapping[str, float], columns: Mapping[str, str] | None = None
) -> ir.Table:
    """``customers`` plus ``behaviour``: the weighted mean of percentile ranks.

    ``columns`` maps each behaviour name to its column (defaults: ``clv``,
    ``purchases``, ``total_amount`` and ``recency_days``; recency counts the
    other way, fewer days is better).
    """
    import ibis

    cols = {"clv": "clv", "frequency": "purchases", "monetary": "total_amount"}
    cols["recency"] = "recency_days"
    cols.update(columns or {})
    used = {k: v for k, v in weights.items() if v > 0}
    require(customers, *(cols[k] for k in used), what="customer scores")
    total = sum(used.values())
    score: ir.FloatingValue = ibis.literal(0.0)
    for name, weight in used.items():
        col = customers[cols[name]]
        rank = ibis.percent_rank().over(order_by=-col if name == "recency" else col)
        score = score + rank * (weight / total)
    # Ranked once more, so the threshold reads as a share: 0.7 = the top 30%.
    composite = customers.mutate(_composite=score)
    return composite.mutate(behaviour=ibis.percent_rank().over(order_by=composite._composite)).drop(
        "_composite"
    )


def loyalty_matrix(
    scored: ir.Table, *, behaviour_threshold: float, attitude_threshold: float
) -> ir.Table:
    """``scored`` (with ``behaviour`` and a nullable ``attitude``) plus ``loyalty``."""
    import ibis

    require(scored, "behaviour", "attitude", what="customer scores")
    high = scored.behaviour >= behaviour_threshold
    attached = scored.attitude >= attitude_threshold
    loyalty = ibis.cases(
        (scored.attitude.isnull(), "attitude_unknown"),
        (high & attached, "true"),
        (attached, "latent"),
        (high, "spurious"),
        else_="none",
    )
    return scored.mutate(loyalty=loyalty, behaviour_high=high)
