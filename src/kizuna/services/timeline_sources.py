"""Where the timeline's items come from: one query and one describer per table.

Each source asks its own table for the customer's rows through the
``customer_id`` index (``customer_id, occurred_at`` on events and orders), so
a page costs the same whatever the length of the history. Each describer
turns one row into a short English title for people and a ``detail`` mapping
(external ids, money in minor units) from which other interfaces render their
own text, e.g. in Japanese.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.domain.money import format_money
from kizuna.store import tables as t


class Text:
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
class Source:
    """One table's contribution to the timeline.

    ``at`` places the row in time and ``owner`` is the column holding the
    customer; both are indexed, which is what makes a page cheap.
    """

    kind: str
    at: sa.ColumnElement[datetime]
    owner: sa.ColumnElement[int]
    query: sa.Select[Any]
    describe: Callable[[sa.Row[Any], Text], TitleAndDetail]


def _order(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _return(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _event(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _survey(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _contact(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _community(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _training(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _review(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _referral_made(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
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


def _referral_received(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
    return f"Referred by {row.other_ref} ({row.status})", {
        "referral_id": row.external_id,
        "referrer_id": row.other_ref,
        "code": row.code,
        "status": row.status,
    }


def _consent(row: sa.Row[Any], txt: Text) -> TitleAndDetail:
    state = "granted" if row.granted else "withdrawn"
    return f"{row.channel} consent {state} ({row.source})", {
        "channel": row.channel,
        "granted": bool(row.granted),
        "source": row.source,
    }


@functools.cache
def sources() -> dict[str, Source]:
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
        describe: Callable[[sa.Row[Any], Text], TitleAndDetail],
        *columns: sa.ColumnElement[Any],
        owner: sa.Column[int] | None = None,
        from_: sa.FromClause | None = None,
    ) -> Source:
        query = sa.select(
            table.c.id.label("timeline_pk"), at.label("timeline_at"), *columns
        ).select_from(from_ if from_ is not None else table)
        owner_col = owner if owner is not None else table.c.customer_id
        return Source(kind, at, owner_col, query, describe)

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
