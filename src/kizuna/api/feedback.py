"""/v1/feedback: what customers write about, by theme and by term (read-only).

Returns aggregates only — theme shares, term z-scores, churn by theme —
never the comments themselves, so any key with ``read`` may call it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from kizuna.api.deps import CtxDep, allow
from kizuna.errors import ValidationError
from kizuna.services import survey_feedback as sf

router = APIRouter(tags=["feedback"])
Sources = Annotated[
    list[str] | None,
    Query(description="survey, contact or review (repeat the parameter); default all three"),
]


@router.get(
    "/feedback/themes",
    dependencies=[allow("read")],
    summary="Themes, detractor-vs-promoter terms (weighted log-odds z) and churn by theme",
)
def themes(
    ctx: CtxDep,
    source: Sources = None,
    top: Annotated[int, Query(ge=1, le=200)] = 20,
    churn: bool = False,
) -> JSONResponse:
    chosen = tuple(source or sf.SOURCES)
    unknown = sorted(set(chosen) - set(sf.SOURCES))
    if unknown:
        raise ValidationError(f"unknown source {', '.join(unknown)}; use {', '.join(sf.SOURCES)}")
    docs = sf.load_docs(ctx.engine, ctx.settings, chosen)
    contrast = sf.compare(docs)
    body: dict[str, Any] = {
        "comments": len(docs),
        "themes": [
            {
                "theme": r.theme, "comments": r.mentions, "share": r.share,
                "detractor_share": r.detractor_share, "promoter_share": r.promoter_share,
                "sentiment": r.mean_sentiment,
            }
            for r in sf.theme_summary(docs)
        ],
        "detractor_terms": [_term(r) for r in contrast[:top] if r.z > 0],
        "promoter_terms": [_term(r) for r in reversed(contrast[-top:]) if r.z < 0],
    }  # fmt: skip
    if churn:
        body["churn"] = [
            {
                "theme": r.theme, "customers_with": r.customers_with, "rate_with": r.rate_with,
                "ci_with": list(r.ci_with), "customers_without": r.customers_without,
                "rate_without": r.rate_without, "ci_without": list(r.ci_without),
                "difference": [_finite(x) for x in r.difference],
            }
            for r in sf.churn_by_theme(ctx.engine, ctx.settings, docs)
        ]  # fmt: skip
    return JSONResponse(body)


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: an undefined difference (nobody in a group) is null."""
    return None if value is None or math.isnan(value) else value


def _term(r: sf.TermContrast) -> dict[str, Any]:
    return {
        "term": r.term, "key": r.key, "detractor_comments": r.count_a,
        "promoter_comments": r.count_b, "z": round(r.z, 4), "log_odds": round(r.delta, 4),
    }  # fmt: skip
