"""The customer's timeline: every source merged into one page, newest first.

The timeline is read per source table rather than as one big UNION: each
source (see :mod:`kizuna.services.timeline_sources`) asks for its own newest
``limit + 1`` rows through its ``customer_id`` index, so a customer with a
hundred thousand page views costs the same as one with ten. The sources are
then merged in Python. Paging uses the instant of the last item shown as the
cursor; :func:`page` never cuts a page between two items of the same instant,
so walking the pages shows every item exactly once.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.errors import ValidationError
from kizuna.services import timeline_sources
from kizuna.services.timeline_sources import Source, Text

#: Every kind of timeline item, in the order used to break ties at one instant.
TIMELINE_KINDS: tuple[str, ...] = (
    "order",
    "return",
    "event",
    "survey",
    "contact",
    "community",
    "training",
    "review",
    "referral_made",
    "referral_received",
    "consent",
)


def jsonable(value: Any) -> Any:
    """``value`` with instants and days as ISO 8601 text, ready for ``json.dumps``."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class TimelineItem:
    """One thing that happened to or by the customer.

    ``title`` is a short English line for people; ``detail`` keeps the fields
    (with external ids, money in minor units) so other interfaces can render
    their own text, e.g. in Japanese.
    """

    at: datetime
    local_at: datetime
    kind: str
    title: str
    detail: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "local_at": self.local_at.isoformat(),
            "kind": self.kind,
            "title": self.title,
            "detail": jsonable(self.detail),
        }


@dataclass(frozen=True)
class _Found:
    at: datetime
    rank: int
    pk: int
    source: Source
    row: sa.Row[Any]

    @property
    def key(self) -> tuple[datetime, int, int]:
        return (self.at, self.rank, self.pk)


def _fetch(
    conn: sa.Connection,
    source: Source,
    owner: int,
    *,
    before: datetime | None = None,
    limit: int | None = None,
    exactly: datetime | None = None,
) -> list[_Found]:
    query = source.query.where(source.owner == owner)
    if exactly is not None:
        query = query.where(source.at == exactly)
    elif before is not None:
        query = query.where(source.at < before)
    # Only the time column: the index supplies that order, so a page reads just
    # ``limit`` index entries. Ties are ordered in Python; which tied rows the
    # LIMIT keeps never matters because :func:`_page` never cuts a tie.
    query = query.order_by(source.at.desc())
    if limit is not None:
        query = query.limit(limit)
    rank = len(TIMELINE_KINDS) - TIMELINE_KINDS.index(source.kind)
    return [
        _Found(row.timeline_at, rank, row.timeline_pk, source, row) for row in conn.execute(query)
    ]


def _page(
    conn: sa.Connection,
    sources: Iterable[Source],
    owner: int,
    before: datetime | None,
    limit: int,
) -> tuple[list[_Found], datetime | None]:
    """The newest ``limit`` items before ``before`` and the cursor for the next page.

    Each source gives at most ``limit + 1`` rows, so any row it did not give
    is no newer than the ``limit + 1``-th newest item overall. Cutting the page
    strictly above that item's instant therefore never splits one instant
    across two pages. Only when more than ``limit`` items share one instant
    does the page grow past ``limit`` to hold them all.
    """
    sources = list(sources)
    found = [
        item
        for source in sources
        for item in _fetch(conn, source, owner, before=before, limit=limit + 1)
    ]
    if len(found) <= limit:
        return sorted(found, key=lambda f: f.key, reverse=True), None
    newest = heapq.nlargest(limit + 1, found, key=lambda f: f.key)
    cut = newest[limit].at
    page = [item for item in newest[:limit] if item.at > cut]
    if page:
        return page, page[-1].at
    same = [item for source in sources for item in _fetch(conn, source, owner, exactly=cut)]
    return sorted(same, key=lambda f: f.key, reverse=True), cut


def choose(kinds: Iterable[str] | None) -> list[Source]:
    """The sources of ``kinds`` (all of :data:`TIMELINE_KINDS` when ``None``), once each.

    Raises :class:`ValidationError` naming every unknown kind, so a typo is
    caught before any query runs.
    """
    known = timeline_sources.sources()
    if isinstance(kinds, str):
        kinds = [kinds]
    chosen = list(TIMELINE_KINDS if kinds is None else dict.fromkeys(kinds))
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise ValidationError(
            f"unknown timeline kind(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(TIMELINE_KINDS)}"
        )
    return [known[k] for k in chosen]


def page(
    conn: sa.Connection,
    settings: Settings,
    chosen: Iterable[Source],
    owner: int,
    before: datetime | None,
    limit: int,
) -> tuple[tuple[TimelineItem, ...], datetime | None]:
    """One page of customer ``owner``'s timeline, described, and the cursor for the next.

    ``before`` must already be an aware instant; see :func:`_page` for why a
    page may hold more than ``limit`` items.
    """
    found, next_before = _page(conn, chosen, owner, before, limit)
    txt = Text(settings)
    tz = settings.tz
    items = []
    for f in found:
        title, detail = f.source.describe(f.row, txt)
        items.append(TimelineItem(f.at, f.at.astimezone(tz), f.source.kind, title, detail))
    return tuple(items), next_before
