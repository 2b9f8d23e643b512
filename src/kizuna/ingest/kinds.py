"""What each import kind looks like: its file columns, their types and rules.

One :class:`Kind` per table of the data model. Files refer to other records
by their *external* ids (``customer_id`` is the shop's customer number, not
our surrogate key); the importer resolves them. The sample generator writes
files in exactly these shapes, and the README's import section is generated
from this module, so the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kizuna.domain import vocabulary as v

FieldType = Literal["text", "int", "money", "datetime", "date", "bool", "enum", "json", "ref"]


@dataclass(frozen=True)
class Field:
    """One file column and the rule it must satisfy."""

    name: str
    type: FieldType = "text"
    required: bool = False
    column: str | None = None
    #: For text: the longest value accepted (None: the ``max_field_chars`` setting).
    max_chars: int | None = 300
    choices: tuple[str, ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    #: For refs: the kind whose external id this column names.
    ref: str | None = None
    default: object = None
    help: str = ""

    @property
    def db_column(self) -> str:
        return self.column or self.name


@dataclass(frozen=True)
class Kind:
    """An importable record type and the table it lands in."""

    name: str
    table: str
    fields: tuple[Field, ...]
    #: File columns that identify a record; the upsert key.
    key: tuple[str, ...]
    help: str
    #: The key may be left out; a stable hash of the row's content is used.
    derive_key: bool = False
    #: Kinds whose files must be imported first.
    depends_on: tuple[str, ...] = ()
    #: Columns ``attr.<name>`` go into this JSON column.
    attributes_column: str | None = None
    #: Take ``customer_id`` from the referenced order.
    customer_from_order: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


def _key(name: str, required: bool = True) -> Field:
    return Field(
        name,
        "text",
        required=required,
        column="external_id",
        max_chars=128,
        help="your system's id for this record; imports upsert on it",
    )


def _customer(name: str = "customer_id", required: bool = True, column: str | None = None) -> Field:
    return Field(
        name,
        "ref",
        required=required,
        ref="customers",
        column=column or name,
        help="external id of a customer already imported or in the same import",
    )


def _when(name: str, required: bool = True) -> Field:
    return Field(
        name,
        "datetime",
        required=required,
        help="ISO 8601; a time without offset is read in the workspace timezone",
    )


LONG_TEXT = None  # use the max_field_chars setting

KINDS: dict[str, Kind] = {}


def _register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


_register(
    Kind(
        "accounts",
        "accounts",
        (
            _key("account_id"),
            Field("name", required=True),
            Field("industry", max_chars=100),
            Field("employees", "int", min_value=0),
            Field("region", max_chars=100),
            Field("contract_start", "date"),
            Field("renewal_date", "date"),
        ),
        key=("account_id",),
        attributes_column="attributes",
        help="B2B accounts (companies) that customers belong to",
    )
)
_register(
    Kind(
        "customers",
        "customers",
        (
            _key("customer_id"),
            Field("name"),
            Field("email", max_chars=320),
            Field("phone", max_chars=40),
            Field("birthday", "date"),
            Field("gender", "enum", choices=v.GENDERS),
            Field("region", max_chars=100),
            Field("postal_code", max_chars=20),
            Field("occupation", max_chars=100),
            Field("language", "enum", choices=v.LANGUAGES),
            Field("timezone", max_chars=64),
            _when("signup_at", required=False),
            Field("account_id", "ref", ref="accounts"),
        ),
        key=("customer_id",),
        depends_on=("accounts",),
        attributes_column="attributes",
        help="people: profile, signup time, B2B account; columns attr.<name> become free attributes",
    )
)
_register(
    Kind(
        "consents",
        "consents",
        (
            _customer(),
            Field("channel", "enum", required=True, choices=v.CONSENT_CHANNELS),
            Field("granted", "bool", required=True),
            _when("changed_at"),
            Field(
                "source",
                required=True,
                max_chars=100,
                help="where consent was given or withdrawn, e.g. signup_form, store, unsubscribe_link",
            ),
        ),
        key=("customer_id", "channel"),
        depends_on=("customers",),
        help="marketing consent per customer and channel, with time and source",
    )
)
_register(
    Kind(
        "categories",
        "categories",
        (
            _key("category_id"),
            Field("name", required=True, max_chars=200),
            Field("parent_id", "ref", ref="categories"),
        ),
        key=("category_id",),
        help="product categories; parent_id makes a tree",
    )
)
_register(
    Kind(
        "products",
        "products",
        (
            _key("product_id"),
            Field("name", required=True),
            Field("category_id", "ref", ref="categories"),
            Field("price", "money", min_value=0),
            Field("active", "bool", default=True),
        ),
        key=("product_id",),
        depends_on=("categories",),
        attributes_column="attributes",
        help="the catalogue",
    )
)
_register(
    Kind(
        "orders",
        "orders",
        (
            _key("order_id"),
            _customer(),
            _when("ordered_at"),
            Field("channel", "enum", choices=v.ORDER_CHANNELS),
            Field("store", max_chars=100),
            Field("status", "enum", choices=v.ORDER_STATUSES, default="completed"),
            Field(
                "total_amount",
                "money",
                required=True,
                min_value=0,
                help="what the customer paid, after discounts, in the workspace currency",
            ),
            Field("discount_amount", "money", min_value=0, default=0),
            Field("coupon_code", max_chars=64),
        ),
        key=("order_id",),
        depends_on=("customers",),
        help="order headers; lines come in order_lines, returns in returns",
    )
)
_register(
    Kind(
        "order_lines",
        "order_lines",
        (
            Field("order_id", "ref", required=True, ref="orders"),
            Field("line_no", "int", required=True, min_value=1),
            Field("product_id", "ref", ref="products"),
            Field("quantity", "int", required=True, min_value=1),
            Field("unit_price", "money", required=True, min_value=0),
            Field(
                "amount",
                "money",
                min_value=0,
                help="line total after line discounts; defaults to quantity x unit_price",
            ),
        ),
        key=("order_id", "line_no"),
        depends_on=("orders", "products"),
        customer_from_order=True,
        help="what each order contained",
    )
)
_register(
    Kind(
        "returns",
        "returns",
        (
            _key("return_id"),
            Field("order_id", "ref", required=True, ref="orders"),
            Field("line_no", "int", required=True, min_value=1),
            Field("quantity", "int", required=True, min_value=1),
            Field("refund_amount", "money", required=True, min_value=0),
            _when("returned_at"),
            Field("reason", max_chars=500),
        ),
        key=("return_id",),
        depends_on=("order_lines",),
        customer_from_order=True,
        help="returns and refunds of order lines (full or partial)",
    )
)
_register(
    Kind(
        "events",
        "events",
        (
            _key("event_id", required=False),
            _customer(),
            Field("type", "enum", required=True, choices=v.EVENT_TYPES),
            _when("occurred_at"),
            Field("page", max_chars=2000),
            Field("topic", max_chars=200),
            Field("dwell_seconds", "int", min_value=0),
            Field("session_id", max_chars=128),
            Field("properties", "json"),
        ),
        key=("event_id",),
        derive_key=True,
        depends_on=("customers",),
        help="behaviour: page views, dwell time, app use; without event_id a hash of the row is the key",
    )
)
_register(
    Kind(
        "survey_answers",
        "survey_answers",
        (
            _key("answer_id"),
            _customer(),
            Field("survey", max_chars=200),
            Field("kind", "enum", required=True, choices=v.SURVEY_KINDS),
            Field(
                "score",
                "int",
                required=True,
                min_value=0,
                max_value=10,
                help="NPS 0-10, CSAT 1-5, CES 1-7",
            ),
            Field("comment", max_chars=LONG_TEXT),
            Field("language", "enum", choices=v.LANGUAGES),
            Field("touchpoint", max_chars=50),
            _when("answered_at"),
        ),
        key=("answer_id",),
        depends_on=("customers",),
        help="NPS, CSAT and CES answers with their comments",
    )
)
_register(
    Kind(
        "contacts",
        "contacts",
        (
            _key("contact_id"),
            _customer(),
            Field("touchpoint", "enum", required=True, choices=v.TOUCHPOINTS),
            Field("topic", max_chars=200),
            _when("opened_at"),
            Field("resolved", "bool", default=False),
            _when("resolved_at", required=False),
            Field("satisfaction", "int", min_value=1, max_value=5),
            Field("comment", max_chars=LONG_TEXT),
            Field("language", "enum", choices=v.LANGUAGES),
        ),
        key=("contact_id",),
        depends_on=("customers",),
        help="support contacts by touchpoint: inquiry form, support desk, chatbot, call centre",
    )
)
_register(
    Kind(
        "community_events",
        "community_events",
        (
            _key("community_event_id"),
            Field("name", required=True),
            Field("kind", "enum", required=True, choices=v.COMMUNITY_EVENT_KINDS),
            _when("starts_at"),
            Field("location"),
            Field("capacity", "int", min_value=0),
        ),
        key=("community_event_id",),
        help="meetups, webinars, user groups",
    )
)
_register(
    Kind(
        "community_activity",
        "community_activity",
        (
            _key("activity_id"),
            _customer(),
            Field("kind", "enum", required=True, choices=v.COMMUNITY_KINDS),
            Field("community_event_id", "ref", ref="community_events"),
            _when("occurred_at"),
            Field("title"),
            Field("body", max_chars=LONG_TEXT),
        ),
        key=("activity_id",),
        depends_on=("customers", "community_events"),
        help="event registration and attendance, posts and comments",
    )
)
_register(
    Kind(
        "trainings",
        "trainings",
        (
            _key("training_id"),
            _customer(),
            Field("course", required=True, max_chars=200),
            Field("kind", "enum", required=True, choices=v.TRAINING_KINDS),
            _when("enrolled_at"),
            _when("completed_at", required=False),
            Field("score", "int", min_value=0, max_value=100),
            Field("certificate_id", max_chars=128),
        ),
        key=("training_id",),
        depends_on=("customers",),
        help="onboarding, courses and certifications",
    )
)
_register(
    Kind(
        "reviews",
        "reviews",
        (
            _key("review_id"),
            _customer(),
            Field("product_id", "ref", ref="products"),
            Field("kind", "enum", choices=v.REVIEW_KINDS, default="review"),
            Field("rating", "int", min_value=1, max_value=5),
            Field("title"),
            Field("body", max_chars=LONG_TEXT),
            Field("language", "enum", choices=v.LANGUAGES),
            Field("channel", max_chars=50),
            Field("url", max_chars=2000),
            _when("posted_at"),
        ),
        key=("review_id",),
        depends_on=("customers", "products"),
        help="reviews and user-generated content",
    )
)
_register(
    Kind(
        "referrals",
        "referrals",
        (
            _key("referral_id"),
            _customer("referrer_id"),
            _customer("referee_id", required=False),
            Field("code", max_chars=64),
            _when("referred_at"),
            Field("status", "enum", choices=v.REFERRAL_STATUSES, default="pending"),
        ),
        key=("referral_id",),
        depends_on=("customers",),
        help="who referred whom, with the code used",
    )
)


def import_order() -> list[str]:
    """Kinds sorted so that every kind comes after the kinds it refers to."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for dep in KINDS[name].depends_on:
            visit(dep)
        done.append(name)

    for name in KINDS:
        visit(name)
    return done


def get_kind(name: str) -> Kind:
    from kizuna.errors import ValidationError

    try:
        return KINDS[name]
    except KeyError:
        raise ValidationError(
            f"unknown import kind {name!r}; choose one of: {', '.join(KINDS)}"
        ) from None
