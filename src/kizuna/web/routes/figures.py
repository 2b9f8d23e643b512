"""How current the data-following figures are, and "refresh now".

Every dashboard request is marked a page (:func:`figures_page`, a
dependency of the dashboard router), so :mod:`kizuna.services.run_artefacts`
serves a stored figure at once after a write and has it recomputed in the
background; ``base.html`` then shows "as of HH:MM" (and "updating…") from
:func:`kizuna.services.run_artefacts.page_figures`. Editors may ask for a
refresh before ``dashboard_refresh_seconds`` has passed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.services import figure_refresh as fr
from kizuna.web.auth import Editor, context_of
from kizuna.web.nav import register_router
from kizuna.web.routes.session import safe_next

router = APIRouter()


async def figures_page() -> None:
    """Runs in the request's own task, so the mark reaches the route's thread."""
    fr.begin_page()


@router.post("/figures/refresh")
def refresh_figures(request: Request, user: Editor, next: Annotated[str, Form()] = "/") -> Response:
    """Lift the bound on recomputes once and go back: the page then starts them.

    One UPDATE, so it returns at once; not audited (it changes no data).
    """
    fr.request_refresh(context_of(request).engine)
    return RedirectResponse(safe_next(next), status_code=303)


register_router(router)
