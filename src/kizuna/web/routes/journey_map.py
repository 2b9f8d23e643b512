"""The customer journey map (カスタマージャーニーマップ): lifecycle stages as columns.

Each column is a lifecycle stage of the latest scoring run with its
customers, the share that moved on to the next stage a month later, and the
touchpoints (event types, order channels), messages (journey sends) and
feedback (comment themes and key terms) most common at that stage, for all
customers or one persona. Computed by :func:`kizuna.services.insights.journey_map`
(cached per run), exported as one CSV row per stage.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from kizuna.analytics import lifecycle as lifecycle_mod
from kizuna.errors import NotFound, ValidationError
from kizuna.services import insights
from kizuna.web.auth import AnyUser, context_of
from kizuna.web.export import csv_response
from kizuna.web.i18n import Translator
from kizuna.web.nav import register_router
from kizuna.web.render import render, translator

router = APIRouter()


def _stage(stage: str | None, lang: str) -> str:
    if stage is None:
        return "—"
    return lifecycle_mod.LABELS.get(stage, {}).get(lang, stage)


def _label(prefix: str, value: str, tr: Translator) -> str:
    """The catalogue's name for a known value; a shop's own value (a custom event type) as is."""
    key = f"pages.{prefix}_{value}"
    return tr(key) if tr.has(key) else value


def theme_label(theme: str, tr: Translator) -> str:
    return _label("theme", theme, tr)


def _map(request: Request, persona: int | None) -> insights.JourneyMap | None:
    try:
        return insights.journey_map(context_of(request), persona)
    except (NotFound, ValidationError):
        return None


def _items(pairs: list[tuple[str, Any]]) -> str:
    return "; ".join(f"{k} ({v})" for k, v in pairs)


@router.get("/journey-map")
def journey_map_page(request: Request, user: AnyUser, persona: int | None = None) -> Response:
    found = _map(request, persona)
    if found is None:
        return render(request, "analytics_norun.html", title_key="pages.journey_map_title")
    tr = translator(request)
    lang = tr.language
    try:
        personas = insights.persona_view(context_of(request))
        choices = [(int(c["persona"]), c[lang]) for c in personas.clusters]
    except (NotFound, ValidationError):
        choices = []
    columns = [
        {
            "c": col,
            "label": _stage(col.stage, lang),
            "next_label": _stage(col.next_stage, lang),
            "moves": [(_stage(s, lang), share) for s, share in col.moves],
            "themes": [(theme_label(k, tr), n) for k, n in col.themes],
            "touchpoints": [(_label("event", k, tr), n) for k, n in col.touchpoints],
            "channels": [(_label("order_channel", k, tr), n) for k, n in col.channels],
        }
        for col in found.columns
    ]
    return render(
        request,
        "pages/journey_map.html",
        jm=found,
        columns=columns,
        persona=persona,
        choices=choices,
    )


@router.get("/journey-map.csv")
def journey_map_csv(request: Request, user: AnyUser, persona: int | None = None) -> Response:
    found = _map(request, persona)
    if found is None:
        raise HTTPException(status_code=404, detail="no scoring run yet; run `kizuna score`")
    header = (
        "stage", "customers", "share", "next_stage", "conversion", "stayed", "touchpoints",
        "channels", "messages", "themes", "terms", "comments",
    )  # fmt: skip
    rows = (
        (
            c.stage, c.customers, c.share, c.next_stage, c.conversion, c.stayed,
            _items(c.touchpoints), _items(c.channels), _items(c.messages), _items(c.themes),
            _items(c.terms), c.comments,
        )
        for c in found.columns
    )  # fmt: skip
    detail = {"run": found.run.version, "persona": persona}
    return csv_response(context_of(request).engine, user, "journey_map", header, rows, detail)


register_router(router)
