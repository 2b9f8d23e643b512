"""The Python API for analysts: a workspace whose tables come back as DataFrames.

Analysts think in the ids of their own systems and in their business's
local time, so every frame speaks that language rather than the database's:
records are named by their external ids (``orders.customer_id`` is the shop's
customer number, not a surrogate key), columns are named as in the import
files, instants are tz-aware in the workspace timezone and money stays in
whole minor units (nullable ``Int64``, never float) of :attr:`Workspace.currency`.

Rows are fetched in batches as the driver returns them and converted by
Arrow a column at a time (SQLite's UTC text is parsed in bulk, not one Python
datetime per value); a million events load in about half the time
``pandas.read_sql`` takes, with exact dtypes instead of object columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from kizuna.bootstrap import Context, open_context, safe_url
from kizuna.domain.clock import as_utc, local_day_start
from kizuna.errors import ValidationError
from kizuna.services.customers import DEFAULT_LIMIT, Customer360, customer_360, customer_pk
from kizuna.services.summary import Summary, workspace_summary
from kizuna.store import tables as t

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from kizuna.config import Settings

ColumnKind = Literal["text", "int", "bool", "date", "instant", "json"]
When = date | datetime | str

#: Rows fetched per round trip; each batch becomes one Arrow record batch.
BATCH_ROWS = 50_000


@dataclass(frozen=True)
class _Col:
    name: str
    expr: sa.ColumnElement[Any]
    kind: ColumnKind = "text"


def _parse_when(value: When, what: str) -> date | datetime:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(
                f"{what}={value!r} is not a date or time; use ISO 8601, e.g. 2025-01-31"
            ) from None
    return value


class Workspace:
    """A Kizuna workspace opened for reading; every table is a method returning a DataFrame.

    Use :func:`kizuna.open` to get one, and close it (or use ``with``) to
    release its database connections.

    ``since`` and ``until`` take dates (local days in the workspace timezone,
    both inclusive), datetimes (``since`` inclusive, ``until`` exclusive; a
    naive one is local time) or ISO 8601 text. ``customer`` takes one
    customer's external id.
    """

    #: The table methods, in the order of the data model.
    TABLES: tuple[str, ...] = (
        "accounts", "customers", "consents", "categories", "products", "orders",
        "order_lines", "returns", "events", "survey_answers", "contacts",
        "community_events", "community_activity", "trainings", "reviews", "referrals",
    )  # fmt: skip

    def __init__(self, context: Context) -> None:
        self._ctx = context

    @classmethod
    def open(cls, workspace: str | Path | None = None, **settings: Any) -> Workspace:
        """Open a workspace folder or database URL, refusing a schema that is not current."""
        ctx = open_context(workspace, **settings)
        try:
            ctx.require_current_schema()
        except BaseException:
            ctx.dispose()
            raise
        return cls(ctx)

    # --- about the workspace ---------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, for queries the methods here do not cover."""
        return self._ctx.engine

    @property
    def timezone(self) -> str:
        """IANA zone of the business; every instant in a frame is shown in it."""
        return self._ctx.settings.timezone

    @property
    def currency(self) -> str:
        """ISO 4217 code of every money column, which holds whole minor units."""
        return self._ctx.settings.currency

    @property
    def currency_exponent(self) -> int:
        """Minor units per major unit as a power of ten (0 for JPY, 2 for USD)."""
        return self._ctx.settings.currency_exponent

    def close(self) -> None:
        """Release the database connections; the object cannot be used afterwards."""
        self._ctx.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        url = safe_url(self._ctx.settings.database_url)
        return f"<kizuna.Workspace {url} timezone={self.timezone} currency={self.currency}>"

    # --- customer 360 and summary ------------------------------------------------

    def customer(
        self,
        customer_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        before: datetime | None = None,
        kinds: Iterable[str] | None = None,
    ) -> Customer360:
        """One customer's profile and timeline; see :func:`customer_360`."""
        return customer_360(
            self.engine, self.settings, customer_id, limit=limit, before=before, kinds=kinds
        )

    def summary(self) -> Summary:
        """Row counts, the order period and revenue by local month."""
        return workspace_summary(self.engine, self.settings)

    # --- dimension tables --------------------------------------------------------

    def accounts(self) -> pd.DataFrame:
        """B2B accounts (companies)."""
        a = t.accounts
        cols = [
            _Col("account_id", a.c.external_id),
            _Col("name", a.c.name),
            _Col("industry", a.c.industry),
            _Col("employees", a.c.employees, "int"),
            _Col("region", a.c.region),
            _Col("contract_start", a.c.contract_start, "date"),
            _Col("renewal_date", a.c.renewal_date, "date"),
            _Col("attributes", a.c.attributes, "json"),
        ]
        return self._frame(cols, a, key=a.c.id)

    def customers(self) -> pd.DataFrame:
        """Customers with their profile, signup time and account id."""
        c, a = t.customers, t.accounts
        cols = [
            _Col("customer_id", c.c.external_id),
            _Col("name", c.c.name),
            _Col("email", c.c.email),
            _Col("phone", c.c.phone),
            _Col("birthday", c.c.birthday, "date"),
            _Col("gender", c.c.gender),
            _Col("region", c.c.region),
            _Col("postal_code", c.c.postal_code),
            _Col("occupation", c.c.occupation),
            _Col("language", c.c.language),
            _Col("timezone", c.c.timezone),
            _Col("signup_at", c.c.signup_at, "instant"),
            _Col("account_id", a.c.external_id),
            _Col("attributes", c.c.attributes, "json"),
        ]
        return self._frame(cols, c.outerjoin(a, c.c.account_id == a.c.id), key=c.c.id)

    def consents(self, *, customer: str | None = None) -> pd.DataFrame:
        """Current marketing consent per customer and channel."""
        cs = t.consents
        source, owner = _owner(cs, cs.c.customer_id)
        cols = [
            _Col("customer_id", owner),
            _Col("channel", cs.c.channel),
            _Col("granted", cs.c.granted, "bool"),
            _Col("changed_at", cs.c.changed_at, "instant"),
            _Col("source", cs.c.source),
        ]
        where = self._customer_filter(customer, cs.c.customer_id)
        return self._frame(cols, source, where, key=cs.c.id, order=["customer_id", "channel"])

    def categories(self) -> pd.DataFrame:
        """Product categories; ``parent_id`` makes a tree."""
        c = t.categories
        parent = c.alias("parent")
        cols = [
            _Col("category_id", c.c.external_id),
            _Col("name", c.c.name),
            _Col("parent_id", parent.c.external_id),
        ]
        return self._frame(cols, c.outerjoin(parent, c.c.parent_id == parent.c.id), key=c.c.id)

    def products(self) -> pd.DataFrame:
        """The catalogue, with prices in minor units."""
        p, c = t.products, t.categories
        cols = [
            _Col("product_id", p.c.external_id),
            _Col("name", p.c.name),
            _Col("category_id", c.c.external_id),
            _Col("price", p.c.price, "int"),
            _Col("active", p.c.active, "bool"),
            _Col("attributes", p.c.attributes, "json"),
        ]
        return self._frame(cols, p.outerjoin(c, p.c.category_id == c.c.id), key=p.c.id)

    def community_events(
        self, *, since: When | None = None, until: When | None = None
    ) -> pd.DataFrame:
        """Meetups, webinars and user groups, filtered on when they start."""
        ce = t.community_events
        cols = [
            _Col("community_event_id", ce.c.external_id),
            _Col("name", ce.c.name),
            _Col("kind", ce.c.kind),
            _Col("starts_at", ce.c.starts_at, "instant"),
            _Col("location", ce.c.location),
            _Col("capacity", ce.c.capacity, "int"),
        ]
        where = self._period(ce.c.starts_at, since, until)
        return self._frame(cols, ce, where, key=ce.c.id, order=["starts_at"])

    # --- facts about customers ---------------------------------------------------

    def orders(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """Order headers; ``total_amount`` is what the customer paid, cancelled ones included."""
        o = t.orders
        source, owner = _owner(o, o.c.customer_id)
        cols = [
            _Col("order_id", o.c.external_id),
            _Col("customer_id", owner),
            _Col("ordered_at", o.c.ordered_at, "instant"),
            _Col("channel", o.c.channel),
            _Col("store", o.c.store),
            _Col("status", o.c.status),
            _Col("total_amount", o.c.total_amount, "int"),
            _Col("discount_amount", o.c.discount_amount, "int"),
            _Col("coupon_code", o.c.coupon_code),
        ]
        where = self._period(o.c.ordered_at, since, until)
        where += self._customer_filter(customer, o.c.customer_id)
        return self._frame(cols, source, where, key=o.c.id, order=["ordered_at"])

    def order_lines(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """What each order contained; ``since``/``until`` filter on the order's time."""
        ol, o, p = t.order_lines, t.orders, t.products
        lines = ol.join(o, ol.c.order_id == o.c.id).outerjoin(p, ol.c.product_id == p.c.id)
        source, owner = _owner(lines, ol.c.customer_id)
        cols = [
            _Col("order_id", o.c.external_id),
            _Col("customer_id", owner),
            _Col("ordered_at", o.c.ordered_at, "instant"),
            _Col("line_no", ol.c.line_no, "int"),
            _Col("product_id", p.c.external_id),
            _Col("quantity", ol.c.quantity, "int"),
            _Col("unit_price", ol.c.unit_price, "int"),
            _Col("amount", ol.c.amount, "int"),
        ]
        where = self._period(o.c.ordered_at, since, until)
        where += self._customer_filter(customer, ol.c.customer_id)
        return self._frame(
            cols, source, where, key=ol.c.id, order=["ordered_at", "order_id", "line_no"]
        )

    def returns(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """Returns and refunds of order lines, filtered on when they were returned."""
        r, o = t.returns, t.orders
        source, owner = _owner(r.join(o, r.c.order_id == o.c.id), r.c.customer_id)
        cols = [
            _Col("return_id", r.c.external_id),
            _Col("order_id", o.c.external_id),
            _Col("customer_id", owner),
            _Col("line_no", r.c.line_no, "int"),
            _Col("quantity", r.c.quantity, "int"),
            _Col("refund_amount", r.c.refund_amount, "int"),
            _Col("returned_at", r.c.returned_at, "instant"),
            _Col("reason", r.c.reason),
        ]
        where = self._period(r.c.returned_at, since, until)
        where += self._customer_filter(customer, r.c.customer_id)
        return self._frame(cols, source, where, key=r.c.id, order=["returned_at"])

    def events(
        self,
        *,
        since: When | None = None,
        until: When | None = None,
        customer: str | None = None,
        type: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Behaviour events (page views, app use…); ``type`` keeps one or some types."""
        e = t.events
        source, owner = _owner(e, e.c.customer_id)
        cols = [
            _Col("event_id", e.c.external_id),
            _Col("customer_id", owner),
            _Col("type", e.c.type),
            _Col("occurred_at", e.c.occurred_at, "instant"),
            _Col("page", e.c.page),
            _Col("topic", e.c.topic),
            _Col("dwell_seconds", e.c.dwell_seconds, "int"),
            _Col("session_id", e.c.session_id),
            _Col("properties", e.c.properties, "json"),
        ]
        where = self._period(e.c.occurred_at, since, until)
        where += self._customer_filter(customer, e.c.customer_id)
        where += _one_of(e.c.type, type)
        return self._frame(cols, source, where, key=e.c.id, order=["occurred_at"])

    def survey_answers(
        self,
        *,
        since: When | None = None,
        until: When | None = None,
        customer: str | None = None,
        kind: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """NPS, CSAT and CES answers; ``kind`` keeps e.g. only ``"nps"``."""
        s = t.survey_answers
        source, owner = _owner(s, s.c.customer_id)
        cols = [
            _Col("answer_id", s.c.external_id),
            _Col("customer_id", owner),
            _Col("survey", s.c.survey),
            _Col("kind", s.c.kind),
            _Col("score", s.c.score, "int"),
            _Col("comment", s.c.comment),
            _Col("language", s.c.language),
            _Col("touchpoint", s.c.touchpoint),
            _Col("answered_at", s.c.answered_at, "instant"),
        ]
        where = self._period(s.c.answered_at, since, until)
        where += self._customer_filter(customer, s.c.customer_id)
        where += _one_of(s.c.kind, kind)
        return self._frame(cols, source, where, key=s.c.id, order=["answered_at"])

    def contacts(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """Support contacts by touchpoint, filtered on when they were opened."""
        c = t.contacts
        source, owner = _owner(c, c.c.customer_id)
        cols = [
            _Col("contact_id", c.c.external_id),
            _Col("customer_id", owner),
            _Col("touchpoint", c.c.touchpoint),
            _Col("topic", c.c.topic),
            _Col("opened_at", c.c.opened_at, "instant"),
            _Col("resolved", c.c.resolved, "bool"),
            _Col("resolved_at", c.c.resolved_at, "instant"),
            _Col("satisfaction", c.c.satisfaction, "int"),
            _Col("comment", c.c.comment),
            _Col("language", c.c.language),
        ]
        where = self._period(c.c.opened_at, since, until)
        where += self._customer_filter(customer, c.c.customer_id)
        return self._frame(cols, source, where, key=c.c.id, order=["opened_at"])

    def community_activity(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """Event registrations and attendance, posts and comments."""
        ca, ce = t.community_activity, t.community_events
        activity = ca.outerjoin(ce, ca.c.community_event_id == ce.c.id)
        source, owner = _owner(activity, ca.c.customer_id)
        cols = [
            _Col("activity_id", ca.c.external_id),
            _Col("customer_id", owner),
            _Col("kind", ca.c.kind),
            _Col("community_event_id", ce.c.external_id),
            _Col("occurred_at", ca.c.occurred_at, "instant"),
            _Col("title", ca.c.title),
            _Col("body", ca.c.body),
        ]
        where = self._period(ca.c.occurred_at, since, until)
        where += self._customer_filter(customer, ca.c.customer_id)
        return self._frame(cols, source, where, key=ca.c.id, order=["occurred_at"])

    def trainings(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """Onboarding, courses and certifications, filtered on enrolment time."""
        tr = t.trainings
        source, owner = _owner(tr, tr.c.customer_id)
        cols = [
            _Col("training_id", tr.c.external_id),
            _Col("customer_id", owner),
            _Col("course", tr.c.course),
            _Col("kind", tr.c.kind),
            _Col("enrolled_at", tr.c.enrolled_at, "instant"),
            _Col("completed_at", tr.c.completed_at, "instant"),
            _Col("score", tr.c.score, "int"),
            _Col("certificate_id", tr.c.certificate_id),
        ]
        where = self._period(tr.c.enrolled_at, since, until)
        where += self._customer_filter(customer, tr.c.customer_id)
        return self._frame(cols, source, where, key=tr.c.id, order=["enrolled_at"])

    def reviews(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """Reviews and user-generated content, filtered on when they were posted."""
        rv, p = t.reviews, t.products
        source, owner = _owner(rv.outerjoin(p, rv.c.product_id == p.c.id), rv.c.customer_id)
        cols = [
            _Col("review_id", rv.c.external_id),
            _Col("customer_id", owner),
            _Col("product_id", p.c.external_id),
            _Col("kind", rv.c.kind),
            _Col("rating", rv.c.rating, "int"),
            _Col("title", rv.c.title),
            _Col("body", rv.c.body),
            _Col("language", rv.c.language),
            _Col("channel", rv.c.channel),
            _Col("url", rv.c.url),
            _Col("posted_at", rv.c.posted_at, "instant"),
        ]
        where = self._period(rv.c.posted_at, since, until)
        where += self._customer_filter(customer, rv.c.customer_id)
        return self._frame(cols, source, where, key=rv.c.id, order=["posted_at"])

    def referrals(
        self, *, since: When | None = None, until: When | None = None, customer: str | None = None
    ) -> pd.DataFrame:
        """Who referred whom; ``customer`` matches either side of the referral."""
        rf = t.referrals
        source, referrer = _owner(rf, rf.c.referrer_id, "referrer")
        source, referee = _owner(source, rf.c.referee_id, "referee")
        cols = [
            _Col("referral_id", rf.c.external_id),
            _Col("referrer_id", referrer),
            _Col("referee_id", referee),
            _Col("code", rf.c.code),
            _Col("referred_at", rf.c.referred_at, "instant"),
            _Col("status", rf.c.status),
        ]
        where = self._period(rf.c.referred_at, since, until)
        if customer is not None:
            pk = self._customer_pk(customer)
            where.append(sa.or_(rf.c.referrer_id == pk, rf.c.referee_id == pk))
        return self._frame(cols, source, where, key=rf.c.id, order=["referred_at"])

    # --- machinery -----------------------------------------------------------------

    def _customer_pk(self, customer: str) -> int:
        with self.engine.connect() as conn:
            return customer_pk(conn, customer)

    def _customer_filter(
        self, customer: str | None, column: sa.ColumnElement[int]
    ) -> list[sa.ColumnElement[bool]]:
        # Resolving the id first raises NotFound for a typo instead of an empty
        # frame, and lets the query use the customer_id index.
        if customer is None:
            return []
        return [column == self._customer_pk(customer)]

    def _period(
        self, column: sa.ColumnElement[datetime], since: When | None, until: When | None
    ) -> list[sa.ColumnElement[bool]]:
        tz = self.settings.tz
        where: list[sa.ColumnElement[bool]] = []
        if since is not None:
            start = _parse_when(since, "since")
            if isinstance(start, datetime):
                where.append(column >= as_utc(start, tz))
            else:
                where.append(column >= local_day_start(start, tz))
        if until is not None:
            end = _parse_when(until, "until")
            if isinstance(end, datetime):
                where.append(column < as_utc(end, tz))
            else:
                where.append(column < local_day_start(end + timedelta(days=1), tz))
        return where

    def _frame(
        self,
        cols: Sequence[_Col],
        source: sa.FromClause,
        where: Sequence[sa.ColumnElement[bool]] = (),
        *,
        key: sa.ColumnElement[int],
        order: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Run one query and build the frame, sorted by ``order`` then by ``key``.

        Columns are fetched as the driver returns them, skipping SQLAlchemy's
        per-value conversions, and Arrow converts each column in bulk. Sorting
        in Arrow is also cheaper than a SQLite temp B-tree over a whole table.
        """
        import pandas as pd
        import pyarrow as pa

        dialect = self.engine.dialect.name
        fetched = [*cols, _Col(_KEY, key, "int")]
        query = sa.select(*(_raw(c, dialect) for c in fetched)).select_from(source).where(*where)
        typed = [(i, c, _raw_arrow_type(c.kind, dialect)) for i, c in enumerate(fetched)]
        arrow_cols = [(i, c, typ) for i, c, typ in typed if typ is not None]
        json_cols = [(i, c) for i, c, typ in typed if typ is None]
        chunks: list[list[pa.Array]] = []
        objects: dict[str, list[Any]] = {c.name: [] for _, c in json_cols}
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=BATCH_ROWS).execute(query)
            for rows in result.partitions():
                # Column by column: itemgetter over the rows is several times
                # faster than transposing with zip(*rows).
                chunks.append(
                    [pa.array(list(map(itemgetter(i), rows)), type=typ) for i, _, typ in arrow_cols]
                )
                for i, c in json_cols:
                    objects[c.name].extend(_json(list(map(itemgetter(i), rows))))
        table = pa.table(
            [
                _finish(pa.chunked_array([chunk[j] for chunk in chunks], typ), c.kind)
                for j, (_, c, typ) in enumerate(arrow_cols)
            ],
            names=[c.name for _, c, _ in arrow_cols],
        )
        if json_cols:
            # Arrow cannot hold free-form documents; carry their row numbers
            # through the sort and put the documents back afterwards.
            table = table.append_column(_ROW, pa.array(range(table.num_rows), pa.int64()))
        table = table.sort_by([(name, "ascending") for name in [*order, _KEY]])
        frame = table.to_pandas(
            types_mapper={pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get,
            date_as_object=False,
        )
        if json_cols:
            rows_order = frame.pop(_ROW).to_numpy(dtype="int64")
            for i, c in json_cols:
                docs = pd.Series(objects[c.name], dtype=object).take(rows_order)
                frame.insert(i, c.name, docs.reset_index(drop=True))
        for c in cols:
            if c.kind == "instant":
                frame[c.name] = frame[c.name].dt.tz_convert(self.timezone)
        return frame.drop(columns=_KEY)

    # --- loyalty analytics ---------------------------------------------------------

    def score(self, as_of: date | str | None = None) -> pd.DataFrame:
        """Run a scoring (as ``kizuna score``), store it, and return its per-customer scores."""
        from kizuna.services import analytics_queries, scoring

        day = _parse_when(as_of, "as_of") if as_of is not None else None
        run, _ = scoring.score(self._ctx, day if isinstance(day, date) else None)
        return analytics_queries.scores_frame(self._ctx, run.version)

    def scores(self, version: int | None = None) -> pd.DataFrame:
        """Per-customer scores of a stored scoring run (default: the latest).

        One row per buying customer: frequency, recency, tenure, spend, RFM
        scores and segment, P(alive), expected purchases, CLV (minor units),
        behaviour and attitude scores and the loyalty-matrix class.
        """
        from kizuna.services.analytics_queries import scores_frame

        return scores_frame(self._ctx, version)

    def rfm(self) -> pd.DataFrame:
        """RFM segments of the latest run with their Japanese and English names."""
        import pandas as pd

        from kizuna.analytics.rfm import SEGMENTS_BY_KEY
        from kizuna.services.analytics_queries import segment_table

        frame = pd.DataFrame(segment_table(self._ctx))
        frame.insert(1, "ja", [SEGMENTS_BY_KEY[k].ja for k in frame["segment"]])
        frame.insert(1, "en", [SEGMENTS_BY_KEY[k].en for k in frame["segment"]])
        return frame

    def loyalty_matrix(self) -> pd.DataFrame:
        """Customers and revenue per loyalty class (true, latent, spurious, none, unknown)."""
        from kizuna.analytics.loyalty import CLASSES, LABELS

        scores = self.scores()
        grouped = scores.groupby("loyalty").agg(
            customers=("customer_id", "size"), revenue=("total_amount", "sum")
        )
        grouped = grouped.reindex(list(CLASSES), fill_value=0)
        grouped["share"] = grouped["customers"] / max(int(grouped["customers"].sum()), 1)
        grouped["en"] = [LABELS[c]["en"] for c in grouped.index]
        grouped["ja"] = [LABELS[c]["ja"] for c in grouped.index]
        return grouped.reset_index()

    def kpis(
        self,
        since: date | str | None = None,
        until: date | str | None = None,
        monthly: bool = False,
    ) -> pd.DataFrame:
        """NPS (± 95% margin of error), CSAT, CES, repeat rate; monthly also retention/churn."""
        from kizuna.services.analytics_queries import kpi_frame

        start = _parse_when(since, "since") if since is not None else None
        end = _parse_when(until, "until") if until is not None else None
        return kpi_frame(
            self._ctx,
            start.date() if isinstance(start, datetime) else start,
            end.date() if isinstance(end, datetime) else end,
            monthly,
        )

    def lifecycle(self, months: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(customers per lifecycle stage at each month end, last month's transition matrix)."""
        from kizuna.services.analytics_queries import lifecycle_frames

        return lifecycle_frames(self._ctx, months)

    def drivers(self) -> pd.DataFrame:
        """Key drivers of NPS: effect sizes with 95% confidence intervals."""
        from kizuna.services.analytics_queries import drivers_frame

        return drivers_frame(self._ctx)

    def personas(self, k: int = 6) -> pd.DataFrame:
        """Personas of the latest run: size and a description in English and Japanese."""
        from kizuna.analytics.personas import personas
        from kizuna.services.analytics_queries import scores_frame

        return personas(scores_frame(self._ctx), k=k).clusters

    def cohorts(self, value: str = "share") -> pd.DataFrame:
        """Cohort retention matrix (``share`` or ``customers``) by first-purchase month."""
        from kizuna.services.analytics_queries import cohort_frame

        return cohort_frame(self._ctx, value)


#: Hidden columns: the surrogate key (the last sort key) and the fetch order.
_KEY = "__kizuna_key"
_ROW = "__kizuna_row"


def _owner(
    source: sa.FromClause, column: sa.ColumnElement[int], name: str = "owner"
) -> tuple[sa.FromClause, sa.ColumnElement[str]]:
    """``source`` joined to the customer in ``column``, and that customer's external id.

    A join rather than a per-row subquery, so PostgreSQL can hash-join a
    whole table; an outer join when the column may be empty.
    """
    c = t.customers.alias(name)
    nullable = isinstance(column, sa.Column) and column.nullable
    join = source.outerjoin if nullable else source.join
    return join(c, column == c.c.id), c.c.external_id


def _one_of(
    column: sa.ColumnElement[str], values: str | Sequence[str] | None
) -> list[sa.ColumnElement[bool]]:
    if values is None:
        return []
    if isinstance(values, str):
        return [column == values]
    return [column.in_(list(values))]


def _raw(col: _Col, dialect: str) -> sa.ColumnElement[Any]:
    """The column typed so that SQLAlchemy passes the driver's value through untouched."""
    if dialect == "sqlite":
        # SQLite keeps instants, days and JSON as text and booleans as 0/1.
        raw: sa.types.TypeEngine[Any] = sa.Integer() if col.kind in ("int", "bool") else sa.String()
    else:
        driver_types: dict[str, sa.types.TypeEngine[Any]] = {
            "int": sa.BigInteger(),
            "bool": sa.Boolean(),
            "date": sa.Date(),
            "instant": sa.DateTime(timezone=True),
        }
        raw = driver_types.get(col.kind, sa.String())
    return sa.type_coerce(col.expr, raw).label(col.name)


def _raw_arrow_type(kind: ColumnKind, dialect: str) -> pa.DataType | None:
    """The Arrow type of the driver's values; ``None`` for JSON, kept as Python objects."""
    import pyarrow as pa

    if kind == "json":
        return None
    if kind == "int":
        return pa.int64()
    if dialect == "sqlite":
        return pa.int64() if kind == "bool" else pa.string()
    return {
        "text": pa.string(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "instant": pa.timestamp("us", tz="UTC"),
    }[kind]


def _finish(column: pa.ChunkedArray, kind: ColumnKind) -> pa.ChunkedArray:
    """The column in its final Arrow type, converted in bulk."""
    import pyarrow as pa

    if kind == "instant" and pa.types.is_string(column.type):
        # Stored as UTC without an offset: parse as naive, then declare it UTC.
        return column.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    if kind == "date" and pa.types.is_string(column.type):
        return column.cast(pa.date32())
    if kind == "bool" and not pa.types.is_boolean(column.type):
        return column.cast(pa.bool_())
    return column


def _json(values: list[Any]) -> list[Any]:
    # SQLite returns the stored JSON text; psycopg has already parsed JSONB.
    return [json.loads(v) if isinstance(v, str) else v for v in values]
