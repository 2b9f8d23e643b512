"""RFM scores and the usual named segments, in Japanese and English.

Each of recency (days since the last purchase, fewer is better), frequency
(purchase days) and monetary (historical spend) becomes a score 1..bins from
its percentile rank among buying customers: ``floor(percent_rank · bins) + 1``
capped at ``bins``. Percent ranks give tied customers the same score, so the
scores do not depend on row order and every backend agrees on them (``ntile``
would split ties arbitrarily).

Segments follow the widely used R × FM grid on a 1-5 scale (FM is the mean of
the F and M scores, rounded down); with other bin counts the scores are
rescaled to 1-5 first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kizuna.analytics.summary import require
from kizuna.errors import ValidationError

if TYPE_CHECKING:
    import ibis.expr.types as ir


@dataclass(frozen=True)
class Segment:
    key: str
    en: str
    ja: str
    meaning: str


#: The segments, best first, with what each calls for.
SEGMENTS: tuple[Segment, ...] = (
    Segment("champions", "Champions", "チャンピオン", "bought recently, often and much: reward them"),
    Segment("loyal", "Loyal", "ロイヤル顧客", "buy regularly: upsell, ask for reviews"),
    Segment("potential_loyalist", "Potential loyalist", "ロイヤル候補", "recent, buying again: offer membership"),
    Segment("new", "New", "新規顧客", "first purchase just now: onboard them"),
    Segment("promising", "Promising", "有望顧客", "recent, few purchases: build the habit"),
    Segment("need_attention", "Need attention", "要注意顧客", "average on all counts: reactivate with a limited offer"),
    Segment("about_to_sleep", "About to sleep", "休眠予備軍", "fading and infrequent: reconnect before they go"),
    Segment("at_risk", "At risk", "離反リスク顧客", "used to buy often, not lately: win them back"),
    Segment("cant_lose", "Can't lose them", "失えない顧客", "were the best, gone quiet: personal outreach"),
    Segment("hibernating", "Hibernating", "休眠顧客", "long ago and little: low-cost reminders"),
    Segment("lost", "Lost", "離反顧客", "lowest on recency and frequency: do not spend on them"),
)  # fmt: skip
SEGMENTS_BY_KEY = {s.key: s for s in SEGMENTS}


def _score(column: ir.NumericColumn, bins: int) -> ir.IntegerColumn:
    import ibis

    rank = ibis.percent_rank().over(order_by=column)
    return ibis.least((rank * bins).floor().cast("int64") + 1, bins)


def rfm_scores(
    summary: ir.Table,
    *,
    end_day: int,
    bins: int = 5,
    customer: str = "customer_id",
    last_day: str = "last_day",
    frequency: str = "purchases",
    monetary: str = "total_amount",
) -> ir.Table:
    """``customer_id, recency_days, frequency, monetary, r, f, m, rfm, segment``.

    ``summary`` is a table like :func:`kizuna.analytics.summary.transaction_summary`
    returns; ``end_day`` is the (exclusive) end of observation, so recency is
    ``end_day - last_day`` days.
    """
    import ibis

    if not 2 <= bins <= 10:
        raise ValidationError("RFM bins must be between 2 and 10")
    require(summary, customer, last_day, frequency, monetary, what="summary")
    base = summary.select(
        customer_id=summary[customer],
        recency_days=(end_day - summary[last_day]).cast("int64"),
        frequency=summary[frequency].cast("int64"),
        monetary=summary[monetary].cast("int64"),
    )
    scored = base.mutate(
        r=_score(-base.recency_days, bins),
        f=_score(base.frequency, bins),
        m=_score(base.monetary, bins),
    )

    def five(col: ir.IntegerColumn) -> ir.IntegerColumn:
        # ceil(score · 5 / bins) in integers, so 5 bins map to themselves.
        return ((col * 5 + bins - 1) / bins).floor().cast("int64") if bins != 5 else col

    r5, f5, m5 = five(scored.r), five(scored.f), five(scored.m)
    fm = ((f5 + m5) / 2).floor().cast("int64")
    segment = ibis.cases(
        ((r5 == 5) & (fm >= 4), "champions"),
        ((r5 >= 3) & (fm >= 4), "loyal"),
        ((r5 >= 4) & (fm >= 2), "potential_loyalist"),
        ((r5 == 5) & (fm == 1), "new"),
        ((r5 == 4) & (fm == 1), "promising"),
        ((r5 == 3) & (fm == 3), "need_attention"),
        ((r5 == 3) & (fm <= 2), "about_to_sleep"),
        ((r5 <= 2) & (fm == 5), "cant_lose"),
        ((r5 <= 2) & (fm >= 3), "at_risk"),
        ((r5 == 1) & (fm == 1), "lost"),
        else_="hibernating",
    )
    rfm = scored.r.cast("string").concat(scored.f.cast("string"), scored.m.cast("string"))
    return scored.mutate(rfm=rfm, segment=segment)


def label(segment: str, language: str = "en") -> str:
    """The segment's name in ``language`` (``ja`` or ``en``)."""
    seg = SEGMENTS_BY_KEY[segment]
    return seg.ja if language == "ja" else seg.en
