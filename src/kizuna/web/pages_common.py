"""Helpers shared by the marketer's pages (programme, segments, journeys, measures, insights).

Kept apart from :mod:`kizuna.web.render` so that those pages share one way
to refuse bad input (a 422 page that says what to fix), one unit of work
per request and one chart style.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from kizuna.ingest.problems import Problem
from kizuna.services.uow import UnitOfWork
from kizuna.web.auth import context_of
from kizuna.web.i18n import Translator
from kizuna.web.render import render

FONT = {"family": "system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif"}
ACCENT = "#c2185b"


def uow_of(request: Request) -> UnitOfWork:
    """A unit of work on the dashboard's workspace."""
    ctx = context_of(request)
    return UnitOfWork(ctx.engine, ctx.settings)


def refused(request: Request, title_key: str, message: str, back: str) -> Response:
    """A 422 page naming what was wrong (the service's own actionable message)."""
    return render(
        request, "pages/refused.html", 422, title_key=title_key, message=message, back=back
    )


def as_int(value: object) -> int | None:
    """A whole number from a form field (``1,980`` too), or None when blank or not a number."""
    text = str(value if value is not None else "").replace(",", "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def layout(**extra: Any) -> dict[str, Any]:
    """The Plotly layout every chart of these pages starts from."""
    return {
        "margin": {"l": 70, "r": 20, "t": 10, "b": 50},
        "height": 320,
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": FONT,
        **extra,
    }


def problem_text(problem: Problem, t: Translator) -> str:
    """An importer problem's reason in the page's language (English when it has no key)."""
    message = problem.message
    if message is None or not t.has(message.key):
        return problem.reason
    return t(message.key, **message.fields)
