"""The canonical data model (PRODUCT.md item 1), as SQLAlchemy Core tables.

Conventions, because every later feature relies on them:

* every table has a surrogate ``id`` and, where the data comes from another
  system, a unique ``external_id``: imports upsert on it and other files refer
  to rows by it;
* tables about a customer carry ``customer_id`` and index it, so they can be
  distributed by customer (Citus) when one PostgreSQL is not enough;
* instants are :class:`UTCDateTime`; money is whole minor units (BIGINT);
* ``import_run_id`` records the import run that last changed a row;
* columns holding personal data (names, contact details, free text a person
  wrote, device identifiers) carry ``info={"personal": True}``: the privacy
  export and erasure (services/privacy.py) find them by walking the metadata;
* the two tables that grow to tens of millions of rows, ``order_lines`` and
  ``events``, carry their references **without** database foreign keys: on
  PostgreSQL every FK is a per-row trigger and made bulk loads four times
  slower. Their writers (the importer) resolve every reference inside the
  writing transaction, and :data:`SOFT_REFERENCES` lets
  ``kizuna db check`` prove set-wise that no row points nowhere. (Citus,
  the way out of one PostgreSQL, restricts FKs between distributed tables
  anyway.)
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.types import JSONDoc, Money, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: BIGINT on PostgreSQL; INTEGER on SQLite so that it aliases the rowid.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _external_id() -> sa.Column[str]:
    return sa.Column("external_id", sa.String(128), nullable=False, unique=True)


def _customer_fk(
    nullable: bool = False, name: str = "customer_id", index: bool = True
) -> sa.Column[int]:
    return sa.Column(name, Id, sa.ForeignKey("customers.id"), nullable=nullable, index=index)


def _customer_ref() -> sa.Column[int]:
    """customer_id on a high-volume table: checked by writers, no FK trigger.

    Not indexed alone: events have (customer_id, occurred_at) for timelines,
    and order lines are reached through their order.
    """
    return sa.Column("customer_id", Id, nullable=False)


def _import_run() -> sa.Column[int]:
    return sa.Column("import_run_id", Id, nullable=True)


accounts = sa.Table(
    "accounts",
    metadata,
    _id(),
    _external_id(),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("industry", sa.String(100)),
    sa.Column("employees", sa.Integer),
    sa.Column("region", sa.String(100)),
    sa.Column("contract_start", sa.Date),
    sa.Column("renewal_date", sa.Date),
    sa.Column("attributes", JSONDoc),
    _import_run(),
)

customers = sa.Table(
    "customers",
    metadata,
    _id(),
    _external_id(),
    sa.Column("name", sa.String(300), info={"personal": True}),
    sa.Column("email", sa.String(320), index=True, info={"personal": True}),
    sa.Column("phone", sa.String(40), info={"personal": True}),
    sa.Column("birthday", sa.Date, info={"personal": True}),
    sa.Column("gender", sa.String(16)),
    sa.Column("region", sa.String(100)),
    sa.Column("postal_code", sa.String(20), info={"personal": True}),
    sa.Column("occupation", sa.String(100)),
    sa.Column("language", sa.String(8)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("signup_at", UTCDateTime),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), index=True),
    sa.Column("attributes", JSONDoc, info={"personal": True}),
    _import_run(),
)

consents = sa.Table(
    "consents",
    metadata,
    _id(),
    _customer_fk(),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("granted", sa.Boolean, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    _import_run(),
    sa.UniqueConstraint("customer_id", "channel"),
)

categories = sa.Table(
    "categories",
    metadata,
    _id(),
    _external_id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("parent_id", Id, sa.ForeignKey("categories.id")),
    _import_run(),
)

products = sa.Table(
    "products",
    metadata,
    _id(),
    _external_id(),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("category_id", Id, sa.ForeignKey("categories.id"), index=True),
    sa.Column("price", Money),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("attributes", JSONDoc),
    _import_run(),
)

orders = sa.Table(
    "orders",
    metadata,
    _id(),
    _external_id(),
    _customer_fk(index=False),  # (customer_id, ordered_at) below serves it
    sa.Column("ordered_at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String(16)),
    sa.Column("store", sa.String(100)),
    sa.Column("status", sa.String(16), nullable=False, server_default="completed"),
    sa.Column("total_amount", Money, nullable=False),
    sa.Column("discount_amount", Money, nullable=False, server_default="0"),
    sa.Column("coupon_code", sa.String(64)),
    _import_run(),
    sa.Index("ix_orders_customer_id_ordered_at", "customer_id", "ordered_at"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    _id(),
    sa.Column("order_id", Id, nullable=False),
    _customer_ref(),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("product_id", Id, index=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    _import_run(),
    sa.UniqueConstraint("order_id", "line_no"),
)

returns = sa.Table(
    "returns",
    metadata,
    _id(),
    _external_id(),
    sa.Column("order_id", Id, sa.ForeignKey("orders.id"), nullable=False, index=True),
    _customer_fk(),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("refund_amount", Money, nullable=False),
    sa.Column("returned_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(500), info={"personal": True}),
    _import_run(),
)

events = sa.Table(
    "events",
    metadata,
    _id(),
    _external_id(),
    _customer_ref(),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("page", sa.String(2000)),
    sa.Column("topic", sa.String(200)),
    sa.Column("dwell_seconds", sa.Integer),
    sa.Column("session_id", sa.String(128), info={"personal": True}),
    sa.Column("properties", JSONDoc, info={"personal": True}),
    _import_run(),
    sa.Index("ix_events_customer_id_occurred_at", "customer_id", "occurred_at"),
)

survey_answers = sa.Table(
    "survey_answers",
    metadata,
    _id(),
    _external_id(),
    _customer_fk(),
    sa.Column("survey", sa.String(200)),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text, info={"personal": True}),
    sa.Column("language", sa.String(8)),
    sa.Column("touchpoint", sa.String(50)),
    sa.Column("answered_at", UTCDateTime, nullable=False),
    _import_run(),
)

contacts = sa.Table(
    "contacts",
    metadata,
    _id(),
    _external_id(),
    _customer_fk(),
    sa.Column("touchpoint", sa.String(32), nullable=False),
    sa.Column("topic", sa.String(200)),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("satisfaction", sa.Integer),
    sa.Column("comment", sa.Text, info={"personal": True}),
    sa.Column("language", sa.String(8)),
    _import_run(),
)

community_events = sa.Table(
    "community_events",
    metadata,
    _id(),
    _external_id(),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("location", sa.String(300)),
    sa.Column("capacity", sa.Integer),
    _import_run(),
)

community_activity = sa.Table(
    "community_activity",
    metadata,
    _id(),
    _external_id(),
    _customer_fk(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("community_event_id", Id, sa.ForeignKey("community_events.id"), index=True),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("title", sa.String(300), info={"personal": True}),
    sa.Column("body", sa.Text, info={"personal": True}),
    _import_run(),
)

trainings = sa.Table(
    "trainings",
    metadata,
    _id(),
    _external_id(),
    _customer_fk(),
    sa.Column("course", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("enrolled_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("score", sa.Integer),
    sa.Column("certificate_id", sa.String(128), info={"personal": True}),
    _import_run(),
)

reviews = sa.Table(
    "reviews",
    metadata,
    _id(),
    _external_id(),
    _customer_fk(),
    sa.Column("product_id", Id, sa.ForeignKey("products.id"), index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("rating", sa.Integer),
    sa.Column("title", sa.String(300), info={"personal": True}),
    sa.Column("body", sa.Text, info={"personal": True}),
    sa.Column("language", sa.String(8)),
    sa.Column("channel", sa.String(50)),
    sa.Column("url", sa.String(2000), info={"personal": True}),
    sa.Column("posted_at", UTCDateTime, nullable=False),
    _import_run(),
)

referrals = sa.Table(
    "referrals",
    metadata,
    _id(),
    _external_id(),
    _customer_fk(name="referrer_id"),
    _customer_fk(nullable=True, name="referee_id"),
    sa.Column("code", sa.String(64)),
    sa.Column("referred_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    _import_run(),
)

import_runs = sa.Table(
    "import_runs",
    metadata,
    _id(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("files", JSONDoc, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_inserted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"),
)


#: (table, column, referenced table) for references kept without a database FK.
SOFT_REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("order_lines", "order_id", "orders"),
    ("order_lines", "customer_id", "customers"),
    ("order_lines", "product_id", "products"),
    ("events", "customer_id", "customers"),
)

# Feature areas define their tables in their own modules on the same metadata;
# importing them here makes ``metadata`` complete for Alembic and tests.
from kizuna.store import (  # noqa: E402, F401
    advocacy_tables,
    api_tables,
    automation_tables,
    operations_tables,
    programme_tables,
    recommend_tables,
    scoring_tables,
    success_tables,
    voice_tables,
    web_tables,
)
