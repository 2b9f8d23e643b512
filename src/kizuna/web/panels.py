"""The Customer 360 panel registry: where feature areas add their part of a customer's page.

A panel is a title, a template fragment and a loader. The 360 page calls
every registered loader the viewer's role may see and renders the fragments
in ``order``; a loader returning ``None`` hides its panel (a customer with no
points account gets no points panel). A panel that also gives ``export``
gets a CSV link (``/customers/{id}/panels/{key}.csv``), exported through
:func:`kizuna.web.export.csv_response` like every dashboard table::

    from kizuna.web.panels import Panel, PanelContext, register_panel

    def load(pc: PanelContext) -> dict | None:
        with pc.engine.connect() as conn:
            recs = my_service.recommendations(conn, pc.customer_pk)
        return {"rows": recs} if recs else None

    register_panel(Panel("recommend", "recommend.panel_title", "recommend/panel.html", load))

The fragment receives everything a page gets (``t``, ``fmt``, ``user``...)
plus ``data`` (the loader's result) and ``pc`` (the :class:`PanelContext`).
Loaders must mask personal data themselves for roles that may not see it
(``pc.user.sees_personal_data``, :func:`kizuna.web.masking.masked`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.services.users import User
from kizuna.web.i18n import Translator
from kizuna.web.nav import ALL_ROLES


@dataclass(frozen=True)
class PanelContext:
    """What a panel loader may use: the workspace, the viewer and the customer."""

    ctx: Context
    user: User
    customer_pk: int
    customer_id: str
    t: Translator

    @property
    def engine(self) -> sa.Engine:
        return self.ctx.engine

    @property
    def visible(self) -> bool:
        """Whether the viewer may see personal data unmasked."""
        return self.user.sees_personal_data


#: A CSV export of a panel: the header and the rows (already masked for the viewer).
Export = tuple[Sequence[str], Iterable[Sequence[Any]]]


@dataclass(frozen=True)
class Panel:
    """One section of the Customer 360 page."""

    key: str
    title_key: str
    template: str
    load: Callable[[PanelContext], Any]
    roles: tuple[str, ...] = ALL_ROLES
    #: Lower comes first; the built-in panels use multiples of 10 from 10 to 50.
    order: int = 100
    #: The whole width of the page rather than half of it.
    wide: bool = False
    export: Callable[[PanelContext], Export] | None = None


PANELS: list[Panel] = []
log = logging.getLogger(__name__)


def register_panel(panel: Panel) -> None:
    """Add (or replace, by key) a Customer 360 panel."""
    PANELS[:] = [p for p in PANELS if p.key != panel.key] + [panel]


def panels_for(role: str) -> list[Panel]:
    """The panels ``role`` may see, in display order."""
    return sorted((p for p in PANELS if role in p.roles), key=lambda p: (p.order, p.key))


def load_panels(pc: PanelContext) -> list[tuple[Panel, Any]]:
    """Every panel the viewer may see that has something to show, with its data.

    A loader that fails is logged and its panel left out: one area's bug must
    not take the whole customer page down.
    """
    out = []
    for p in panels_for(pc.user.role):
        try:
            data = p.load(pc)
        except Exception:
            log.exception("the Customer 360 panel %r failed; leaving it out", p.key)
            continue
        if data is not None:
            out.append((p, data))
    return out


def panel(key: str) -> Panel | None:
    return next((p for p in PANELS if p.key == key), None)
