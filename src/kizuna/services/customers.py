"""Customer 360: one customer's profile and one merged timeline.

The CLI (``kizuna customer show``), the API and the dashboard all show a
customer through :func:`customer_360`, so the three never disagree about what
a customer did or how much they spent.

The timeline is read per source table rather than as one big UNION: each
source asks for its own newest ``limit + 1`` rows through its
``customer_id`` index (``customer_id, occurred_at`` on events and orders), so
a customer with a hundred thousand page views costs the same as one with ten.
The sources are then merged in Python. Paging uses the instant of the last
item shown as the cursor; :func:`customer_360` never cuts a page between two
items of the same instant, so walking the pages shows every item exactly once.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.domain.clock import as_utc
from kizuna.domain.money import format_money
from kizuna.errors import NotFound, ValidationError
from kizuna.store import tables as t

DEFAULT_LIMIT = 200
#: A page bigger than this is a report, not a timeline; refuse it early.
MAX_LIMIT = 10_000
CANCELLED = "cancelled"

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
class ConsentState:
    """The customer's current consent on one channel and where it came from."""

    channel: str
    granted: bool
    changed_at: datetime
    source: str


@dataclass(frozen=True)
class CustomerStats:
    """Counts and totals over the customer's whole history (not just one page).

    Revenue is net of refunds; cancelled orders count for nothing but
    ``cancelled_orders`` because no money changed hands.
    """

    orders: int
    cancelled_orders: int
    gross_revenue: int
    refunds: int
    revenue: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    surveys_answered: int
    latest_nps: int | None
    latest_nps_at: datetime | None
    events: int
    contacts: int
    community_activities: int
    trainings: int
    reviews: int
    referrals_made: int


@dataclass(frozen=True)
class CustomerProfile:
    """Every column of the customer, with the account resolved to its id and name."""

    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    birthday: date | None
    gender: str | None
    region: str | None
    postal_code: str | None
    occupation: str | None
    language: str | None
    timezone: str | None
    signup_at: datetime | None
    account_id: str | None
    account_name: str | None
    attributes: Mapping[str, Any]
    consents: Mapping[str, ConsentState]
    stats: CustomerStats


@dataclass(frozen=True)
class Customer360:
    """A customer's profile and one page of their timeline, newest first.

    Pass ``next_before`` back as ``before`` to get the next page; it is
    ``None`` when this page reached the start of the history.
    """

    profile: CustomerProfile
    timeline: tuple[TimelineItem, ...]
    next_before: datetime | None
    currency: str
    timezone: str

    @property
    def has_more(self) -> bool:
        return self.next_before is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: ISO 8601 instants, money in minor units."""
        profile = {
            f.name: jsonable(getattr(self.profile, f.name))
            for f in fields(self.profile)
            if f.name not in ("consents", "stats")
        }
        profile["consents"] = {
            channel: jsonable(
                {"granted": c.granted, "changed_at": c.changed_at, "source": c.source}
            )
            for channel, c in self.profile.consents.items()
        }
        stats = self.profile.stats
        profile["stats"] = {f.name: jsonable(getattr(stats, f.name)) for f in fields(stats)}
        return {
            "customer": profile,
            "timeline": [item.to_dict() for item in self.timeline],
            "next_before": self.next_before.isoformat() if self.next_before else None,
            "currency": self.currency,
            "timezone": self.timezone,
        }


# --- connections ---------------------------------------------------------------


@contextmanager
def connected(conn_or_engine: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """A connection: the one given, or a new one from the engine closed afterwards."""
    if isinstance(conn_or_engine, sa.Connection):
        yield conn_or_engine
    else:
        with conn_or_engine.connect() as conn:
            yield conn


def customer_pk(conn: sa.Connection, external_id: str) -> int:
    """The surrogate key of the customer whose external id is ``external_id``."""
    pk = conn.execute(
        sa.select(t.customers.c.id).where(t.customers.c.external_id == external_id)
    ).scalar_one_or_none()
    if pk is None:
        raise _not_found(external_id)
    return int(pk)


def _not_found(external_id: str) -> NotFound:
    return NotFound(
        f"no customer with id {external_id!r}; check the id: it is the customer_id "
        "column of the imported customers file, not a row number"
    )


# --- timeline sources ----------------------------------------------------------


class _Text:
    """Formatting shared by the titles: money in the workspace currency."""

    def __init__(self, settings: Settings) -> None:
        self._currency = settings.currency
        self._exponent = settings.currency_exponent

    def money(self, minor: int | None) -> str:
        return format_money(int(minor or 0), self._currency, self._exponent)

    @staticmethod
    def short(text: str | None, width: int = 60) -> str:
        if not text:
            return ""
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"


TitleAndDetail = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class _Source:
    """One table's contribution to the timeline.

    ``at`` places the row in time and ``owner`` is the column holding the
    customer; both are indexed, which is what makes a page cheap.
    """

    kind: str
    at: sa.ColumnElement[datetime]
    owner: sa.ColumnElement[int]
    query: sa.Select[Any]
    describe: Callable[[sa.Row[Any], _Text], TitleAndDetail]


def _order(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    lines = f"{row.lines} line{'s' if row.lines != 1 else ''}"
    title = f"Order {row.external_id} · {txt.money(row.total_amount)} · {lines}"
    if row.status != "completed":
        title += f" ({row.status})"
    return title, {
        "order_id": row.external_id,
        "status": row.status,
        "channel": row.channel,
        "store": row.store,
        "lines": row.lines,
        "total_amount": row.total_amount,
        "discount_amount": row.discount_amount,
        "coupon_code": row.coupon_code,
    }


def _return(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    title = (
        f"Return of order {row.order_ref} line {row.line_no} · "
        f"refund {txt.money(row.refund_amount)}"
    )
    if row.reason:
        title += f": {txt.short(row.reason, 40)}"
    return title, {
        "return_id": row.external_id,
        "order_id": row.order_ref,
        "line_no": row.line_no,
        "quantity": row.quantity,
        "refund_amount": row.refund_amount,
        "reason": row.reason,
    }


def _event(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    what = row.page or row.topic
    title = f"{row.type}: {txt.short(what)}" if what else row.type
    if row.dwell_seconds:
        title += f" ({row.dwell_seconds}s)"
    return title, {
        "event_id": row.external_id,
        "type": row.type,
        "page": row.page,
        "topic": row.topic,
        "dwell_seconds": row.dwell_seconds,
        "session_id": row.session_id,
        "properties": row.properties,
    }


def _survey(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    title = f"{row.kind.upper()} {row.score}"
    if row.comment:
        title += f": “{txt.short(row.comment, 50)}”"
    return title, {
        "answer_id": row.external_id,
        "survey": row.survey,
        "kind": row.kind,
        "score": row.score,
        "comment": row.comment,
        "language": row.language,
        "touchpoint": row.touchpoint,
    }


def _contact(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    state = "resolved" if row.resolved else "open"
    topic = f": {txt.short(row.topic, 40)}" if row.topic else ""
    return f"{row.touchpoint}{topic} ({state})", {
        "contact_id": row.external_id,
        "touchpoint": row.touchpoint,
        "topic": row.topic,
        "resolved": bool(row.resolved),
        "resolved_at": row.resolved_at,
        "satisfaction": row.satisfaction,
        "comment": row.comment,
        "language": row.language,
    }


def _community(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    what = row.event_name or row.title
    title = f"{row.kind}: {txt.short(what, 50)}" if what else row.kind
    return title, {
        "activity_id": row.external_id,
        "kind": row.kind,
        "community_event_id": row.event_ref,
        "event_name": row.event_name,
        "event_kind": row.event_kind,
        "title": row.title,
        "body": row.body,
    }


def _training(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    if row.completed_at is not None:
        state = "completed" + (f", score {row.score}" if row.score is not None else "")
    else:
        state = "enrolled"
    return f"{row.kind}: {txt.short(row.course, 50)} ({state})", {
        "training_id": row.external_id,
        "course": row.course,
        "kind": row.kind,
        "completed_at": row.completed_at,
        "score": row.score,
        "certificate_id": row.certificate_id,
    }


def _review(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    stars = f" ★{row.rating}" if row.rating is not None else ""
    about = f" of {txt.short(row.product_name, 40)}" if row.product_name else ""
    text = row.title or row.body
    title = f"{row.kind}{stars}{about}" + (f": {txt.short(text, 40)}" if text else "")
    return title, {
        "review_id": row.external_id,
        "kind": row.kind,
        "rating": row.rating,
        "product_id": row.product_ref,
        "product_name": row.product_name,
        "title": row.title,
        "body": row.body,
        "language": row.language,
        "channel": row.channel,
        "url": row.url,
    }


def _referral_made(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    if row.other_ref:
        title = f"Referred {row.other_ref} ({row.status})"
    else:
        title = f"Shared referral code {row.code or '?'} ({row.status})"
    return title, {
        "referral_id": row.external_id,
        "referee_id": row.other_ref,
        "code": row.code,
        "status": row.status,
    }


def _referral_received(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    return f"Referred by {row.other_ref} ({row.status})", {
        "referral_id": row.external_id,
        "referrer_id": row.other_ref,
        "code": row.code,
        "status": row.status,
    }


def _consent(row: sa.Row[Any], txt: _Text) -> TitleAndDetail:
    state = "granted" if row.granted else "withdrawn"
    return f"{row.channel} consent {state} ({row.source})", {
        "channel": row.channel,
        "granted": bool(row.granted),
        "source": row.source,
    }


@functools.cache
def _sources() -> dict[str, _Source]:
    """The timeline's sources, built once on first use rather than at import."""
    o, r, e = t.orders, t.returns, t.events
    sv, ct, ca, ce = t.survey_answers, t.contacts, t.community_activity, t.community_events
    tr, rv, p, rf, cs = t.trainings, t.reviews, t.products, t.referrals, t.consents
    other = t.customers.alias("other")
    # order_lines is unique on (order_id, line_no), so this count reads an index.
    lines = (
        sa.select(sa.func.count())
        .where(t.order_lines.c.order_id == o.c.id)
        .correlate(o)
        .scalar_subquery()
    )

    def source(
        kind: str,
        table: sa.Table,
        at: sa.Column[datetime],
        describe: Callable[[sa.Row[Any], _Text], TitleAndDetail],
        *columns: sa.ColumnElement[Any],
        owner: sa.Column[int] | None = None,
        from_: sa.FromClause | None = None,
    ) -> _Source:
        query = sa.select(
            table.c.id.label("timeline_pk"), at.label("timeline_at"), *columns
        ).select_from(from_ if from_ is not None else table)
        owner_col = owner if owner is not None else table.c.customer_id
        return _Source(kind, at, owner_col, query, describe)

    # fmt: off
    listed = [
        source(
            "order", o, o.c.ordered_at, _order,
            o.c.external_id, o.c.status, o.c.channel, o.c.store, o.c.total_amount,
            o.c.discount_amount, o.c.coupon_code, lines.label("lines"),
        ),
        source(
            "return", r, r.c.returned_at, _return,
            r.c.external_id, o.c.external_id.label("order_ref"), r.c.line_no, r.c.quantity,
            r.c.refund_amount, r.c.reason,
            from_=r.join(o, r.c.order_id == o.c.id),
        ),
        source(
            "event", e, e.c.occurred_at, _event,
            e.c.external_id, e.c.type, e.c.page, e.c.topic, e.c.dwell_seconds,
            e.c.session_id, e.c.properties,
        ),
        source(
            "survey", sv, sv.c.answered_at, _survey,
            sv.c.external_id, sv.c.survey, sv.c.kind, sv.c.score, sv.c.comment,
            sv.c.language, sv.c.touchpoint,
        ),
        source(
            "contact", ct, ct.c.opened_at, _contact,
            ct.c.external_id, ct.c.touchpoint, ct.c.topic, ct.c.resolved, ct.c.resolved_at,
            ct.c.satisfaction, ct.c.comment, ct.c.language,
        ),
        source(
            "community", ca, ca.c.occurred_at, _community,
            ca.c.external_id, ca.c.kind, ca.c.title, ca.c.body,
            ce.c.external_id.label("event_ref"), ce.c.name.label("event_name"),
            ce.c.kind.label("event_kind"),
            from_=ca.outerjoin(ce, ca.c.community_event_id == ce.c.id),
        ),
        source(
            "training", tr, tr.c.enrolled_at, _training,
            tr.c.external_id, tr.c.course, tr.c.kind, tr.c.completed_at, tr.c.score,
            tr.c.certificate_id,
        ),
        source(
            "review", rv, rv.c.posted_at, _review,
            rv.c.external_id, rv.c.kind, rv.c.rating, rv.c.title, rv.c.body, rv.c.language,
            rv.c.channel, rv.c.url, p.c.external_id.label("product_ref"),
            p.c.name.label("product_name"),
            from_=rv.outerjoin(p, rv.c.product_id == p.c.id),
        ),
        source(
            "referral_made", rf, rf.c.referred_at, _referral_made,
            rf.c.external_id, rf.c.code, rf.c.status, other.c.external_id.label("other_ref"),
            owner=rf.c.referrer_id,
            from_=rf.outerjoin(other, rf.c.referee_id == other.c.id),
        ),
        source(
            "referral_received", rf, rf.c.referred_at, _referral_received,
            rf.c.external_id, rf.c.code, rf.c.status, other.c.external_id.label("other_ref"),
            owner=rf.c.referee_id,
            from_=rf.join(other, rf.c.referrer_id == other.c.id),
        ),
        source(
            "consent", cs, cs.c.changed_at, _consent,
            cs.c.channel, cs.c.granted, cs.c.source,
        ),
    ]
    # fmt: on
    return {s.kind: s for s in listed}


@dataclass(frozen=True)
class _Found:
    at: datetime
    rank: int
    pk: int
    source: _Source
    row: sa.Row[Any]

    @property
    def key(self) -> tuple[datetime, int, int]:
        return (self.at, self.rank, self.pk)


def _fetch(
    conn: sa.Connection,
    source: _Source,
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
    sources: Iterable[_Source],
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


# --- profile -------------------------------------------------------------------


def _stats(conn: sa.Connection, pk: int) -> CustomerStats:
    o, r, sv = t.orders, t.returns, t.survey_answers
    live = o.c.status != CANCELLED

    def scalar(query: sa.Select[Any], name: str) -> sa.Label[Any]:
        return query.scalar_subquery().label(name)

    def count(table: sa.Table, owner: sa.ColumnElement[int], name: str, *where: Any) -> Any:
        return scalar(
            sa.select(sa.func.count()).select_from(table).where(owner == pk, *where), name
        )

    def latest_nps(column: sa.ColumnElement[Any], name: str) -> sa.Label[Any]:
        query = sa.select(column).where(sv.c.customer_id == pk, sv.c.kind == "nps")
        return scalar(query.order_by(sv.c.answered_at.desc(), sv.c.id.desc()).limit(1), name)

    row = conn.execute(
        sa.select(
            count(o, o.c.customer_id, "orders", live),
            count(o, o.c.customer_id, "cancelled", o.c.status == CANCELLED),
            scalar(
                sa.select(sa.func.coalesce(sa.func.sum(o.c.total_amount), 0)).where(
                    o.c.customer_id == pk, live
                ),
                "gross",
            ),
            scalar(
                sa.select(sa.func.coalesce(sa.func.sum(r.c.refund_amount), 0))
                .select_from(r.join(o, r.c.order_id == o.c.id))
                .where(r.c.customer_id == pk, live),
                "refunds",
            ),
            scalar(
                sa.select(sa.func.min(o.c.ordered_at)).where(o.c.customer_id == pk, live), "first"
            ),
            scalar(
                sa.select(sa.func.max(o.c.ordered_at)).where(o.c.customer_id == pk, live), "last"
            ),
            count(sv, sv.c.customer_id, "surveys"),
            latest_nps(sv.c.score, "nps"),
            latest_nps(sv.c.answered_at, "nps_at"),
            count(t.events, t.events.c.customer_id, "events"),
            count(t.contacts, t.contacts.c.customer_id, "contacts"),
            count(t.community_activity, t.community_activity.c.customer_id, "community"),
            count(t.trainings, t.trainings.c.customer_id, "trainings"),
            count(t.reviews, t.reviews.c.customer_id, "reviews"),
            count(t.referrals, t.referrals.c.referrer_id, "referrals"),
        )
    ).one()
    gross, refunds = int(row.gross), int(row.refunds)
    return CustomerStats(
        orders=int(row.orders),
        cancelled_orders=int(row.cancelled),
        gross_revenue=gross,
        refunds=refunds,
        revenue=gross - refunds,
        first_order_at=row.first,
        last_order_at=row.last,
        surveys_answered=int(row.surveys),
        latest_nps=row.nps,
        latest_nps_at=row.nps_at,
        events=int(row.events),
        contacts=int(row.contacts),
        community_activities=int(row.community),
        trainings=int(row.trainings),
        reviews=int(row.reviews),
        referrals_made=int(row.referrals),
    )


def _profile(conn: sa.Connection, external_id: str) -> tuple[int, CustomerProfile]:
    c, a = t.customers, t.accounts
    row = conn.execute(
        sa.select(c, a.c.external_id.label("account_ref"), a.c.name.label("account_name"))
        .select_from(c.outerjoin(a, c.c.account_id == a.c.id))
        .where(c.c.external_id == external_id)
    ).one_or_none()
    if row is None:
        raise _not_found(external_id)
    consents = {
        ch.channel: ConsentState(ch.channel, bool(ch.granted), ch.changed_at, ch.source)
        for ch in conn.execute(
            sa.select(t.consents)
            .where(t.consents.c.customer_id == row.id)
            .order_by(t.consents.c.channel)
        )
    }
    profile = CustomerProfile(
        customer_id=row.external_id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        birthday=row.birthday,
        gender=row.gender,
        region=row.region,
        postal_code=row.postal_code,
        occupation=row.occupation,
        language=row.language,
        timezone=row.timezone,
        signup_at=row.signup_at,
        account_id=row.account_ref,
        account_name=row.account_name,
        attributes=row.attributes or {},
        consents=consents,
        stats=_stats(conn, row.id),
    )
    return int(row.id), profile


# --- the query -----------------------------------------------------------------


def customer_360(
    conn_or_engine: sa.Engine | sa.Connection,
    settings: Settings,
    external_id: str,
    *,
    limit: int = DEFAULT_LIMIT,
    before: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> Customer360:
    """The profile of customer ``external_id`` and the newest ``limit`` timeline items.

    ``before`` is the paging cursor: only items strictly older than it are
    returned (a naive value is read in the workspace timezone). Pass the
    result's ``next_before`` to get the next page. ``kinds`` keeps only some
    of :data:`TIMELINE_KINDS`. Raises :class:`NotFound` for an unknown id.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    sources = _sources()
    if isinstance(kinds, str):
        kinds = [kinds]
    chosen = list(TIMELINE_KINDS if kinds is None else dict.fromkeys(kinds))
    unknown = [k for k in chosen if k not in sources]
    if unknown:
        raise ValidationError(
            f"unknown timeline kind(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(TIMELINE_KINDS)}"
        )
    tz = settings.tz
    cursor = as_utc(before, tz) if before is not None else None
    txt = _Text(settings)
    with connected(conn_or_engine) as conn:
        pk, profile = _profile(conn, external_id)
        found, next_before = _page(conn, (sources[k] for k in chosen), pk, cursor, limit)
    items = []
    for f in found:
        title, detail = f.source.describe(f.row, txt)
        items.append(TimelineItem(f.at, f.at.astimezone(tz), f.source.kind, title, detail))
    return Customer360(
        profile=profile,
        timeline=tuple(items),
        next_before=next_before,
        currency=settings.currency,
        timezone=settings.timezone,
    )
