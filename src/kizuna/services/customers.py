"""Customer 360: one customer's profile and one merged timeline.

The CLI (``kizuna customer show``), the API and the dashboard all show a
customer through :func:`customer_360`, so the three never disagree about what
a customer did or how much they spent. The timeline itself is read and paged
by :mod:`kizuna.services.timeline`; this module adds the profile and the
whole-history totals around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.domain.clock import as_utc
from kizuna.errors import NotFound, ValidationError
from kizuna.services import timeline
from kizuna.services.timeline import TIMELINE_KINDS, TimelineItem, jsonable
from kizuna.store import tables as t

__all__ = [
    "CANCELLED",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "TIMELINE_KINDS",
    "ConsentState",
    "Customer360",
    "CustomerProfile",
    "CustomerStats",
    "TimelineItem",
    "connected",
    "customer_360",
    "customer_pk",
    "jsonable",
]

DEFAULT_LIMIT = 200
#: A page bigger than this is a report, not a timeline; refuse it early.
MAX_LIMIT = 10_000
CANCELLED = "cancelled"


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
    chosen = timeline.choose(kinds)
    tz = settings.tz
    cursor = as_utc(before, tz) if before is not None else None
    with connected(conn_or_engine) as conn:
        pk, profile = _profile(conn, external_id)
        items, next_before = timeline.page(conn, settings, chosen, pk, cursor, limit)
    return Customer360(
        profile=profile,
        timeline=items,
        next_before=next_before,
        currency=settings.currency,
        timezone=settings.timezone,
    )
