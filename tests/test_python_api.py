"""The analysts' Python API: ``kizuna.open`` and DataFrames in business terms."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
from tests.helpers import add

import kizuna
from kizuna.bootstrap import Context
from kizuna.errors import NotFound, ValidationError, WorkspaceError
from kizuna.services.customers import Customer360
from kizuna.services.summary import Summary
from kizuna.store import tables as t

TOKYO = ZoneInfo("Asia/Tokyo")

#: Every table method and its id column, the external id of the record.
FRAMES = {
    "accounts": "account_id",
    "customers": "customer_id",
    "consents": "customer_id",
    "categories": "category_id",
    "products": "product_id",
    "orders": "order_id",
    "order_lines": "order_id",
    "returns": "return_id",
    "events": "event_id",
    "survey_answers": "answer_id",
    "contacts": "contact_id",
    "community_events": "community_event_id",
    "community_activity": "activity_id",
    "trainings": "training_id",
    "reviews": "review_id",
    "referrals": "referral_id",
}


def seed(conn: sa.Connection) -> None:
    """One row in every table; C-1's first order falls on 1 February in Tokyo only."""
    account = add(conn, t.accounts, external_id="A-1", name="Acme KK", employees=120,
                  contract_start=date(2024, 4, 1))  # fmt: skip
    c1 = add(conn, t.customers, external_id="C-1", name="Sato", account_id=account,
             birthday=date(1990, 4, 1), signup_at=datetime(2024, 5, 1, tzinfo=UTC),
             attributes={"tier": "gold"})  # fmt: skip
    c2 = add(conn, t.customers, external_id="C-2")
    tea = add(conn, t.categories, external_id="CAT-1", name="Tea")
    green = add(conn, t.categories, external_id="CAT-2", name="Green tea", parent_id=tea)
    p1 = add(conn, t.products, external_id="P-1", name="Sencha", category_id=green, price=1_200)
    add(conn, t.products, external_id="P-2", name="Gift wrap")  # no price: stays <NA>, not NaN
    add(conn, t.consents, customer_id=c1, channel="email", granted=True,
        changed_at=datetime(2024, 5, 1, tzinfo=UTC), source="signup_form")  # fmt: skip
    # 2025-01-31T15:30Z is 00:30 on 1 February in Tokyo.
    o1 = add(conn, t.orders, external_id="O-1", customer_id=c1, total_amount=2_400,
             ordered_at=datetime(2025, 1, 31, 15, 30, tzinfo=UTC))  # fmt: skip
    add(conn, t.orders, external_id="O-2", customer_id=c2, total_amount=1_200,
        ordered_at=datetime(2025, 1, 31, 14, 0, tzinfo=UTC), status="cancelled")  # fmt: skip
    add(conn, t.order_lines, order_id=o1, customer_id=c1, line_no=1, product_id=p1, quantity=2,
        unit_price=1_200, amount=2_400)  # fmt: skip
    add(conn, t.returns, external_id="R-1", order_id=o1, customer_id=c1, line_no=1, quantity=1,
        refund_amount=1_200, returned_at=datetime(2025, 2, 10, tzinfo=UTC))  # fmt: skip
    for i, (who, kind) in enumerate([(c1, "page_view"), (c1, "login"), (c2, "page_view")]):
        add(conn, t.events, external_id=f"E-{i}", customer_id=who, type=kind,
            occurred_at=datetime(2025, 2, 1 + i, tzinfo=UTC), properties={"n": i})  # fmt: skip
    add(conn, t.survey_answers, external_id="S-1", customer_id=c1, kind="nps", score=10,
        answered_at=datetime(2025, 2, 2, tzinfo=UTC))  # fmt: skip
    add(conn, t.contacts, external_id="K-1", customer_id=c2, touchpoint="chatbot",
        opened_at=datetime(2025, 2, 3, tzinfo=UTC))  # fmt: skip
    meetup = add(conn, t.community_events, external_id="CE-1", name="Meetup", kind="meetup",
                 starts_at=datetime(2025, 3, 1, tzinfo=UTC))  # fmt: skip
    add(conn, t.community_activity, external_id="CA-1", customer_id=c1, kind="event_attendance",
        community_event_id=meetup, occurred_at=datetime(2025, 3, 1, tzinfo=UTC))  # fmt: skip
    add(conn, t.trainings, external_id="TR-1", customer_id=c1, course="Basics", kind="course",
        enrolled_at=datetime(2025, 3, 2, tzinfo=UTC))  # fmt: skip
    add(conn, t.reviews, external_id="RV-1", customer_id=c1, product_id=p1, kind="review",
        rating=5, posted_at=datetime(2025, 3, 3, tzinfo=UTC))  # fmt: skip
    add(conn, t.referrals, external_id="RF-1", referrer_id=c1, referee_id=c2,
        referred_at=datetime(2025, 3, 4, tzinfo=UTC))  # fmt: skip
    add(conn, t.referrals, external_id="RF-2", referrer_id=c2, code="OPEN",
        referred_at=datetime(2025, 3, 5, tzinfo=UTC))  # fmt: skip


@pytest.fixture
def ws(workspace: Context) -> Iterator[kizuna.Workspace]:
    with workspace.engine.begin() as conn:
        seed(conn)
    with kizuna.open(workspace.settings.workspace) as opened:
        yield opened


def test_importing_kizuna_loads_no_database_or_dataframe_library() -> None:
    code = (
        "import sys, kizuna; "
        "heavy = {'sqlalchemy', 'pandas', 'pyarrow'} & set(sys.modules); "
        "assert not heavy, heavy; print(kizuna.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == kizuna.__version__
    assert kizuna.Workspace.__name__ == "Workspace"


def test_every_table_is_a_frame_named_by_external_ids(ws: kizuna.Workspace) -> None:
    assert set(ws.TABLES) == set(FRAMES)
    for method, id_column in FRAMES.items():
        frame = getattr(ws, method)()
        assert isinstance(frame, pd.DataFrame), method
        assert id_column in frame.columns, method
        assert "id" not in frame.columns and "import_run_id" not in frame.columns, method

    orders = ws.orders()
    assert list(orders["order_id"]) == ["O-2", "O-1"]
    assert list(orders["customer_id"]) == ["C-2", "C-1"]
    lines = ws.order_lines()
    assert list(lines.loc[0, ["order_id", "customer_id", "product_id"]]) == ["O-1", "C-1", "P-1"]
    assert ws.returns().loc[0, "order_id"] == "O-1"
    assert ws.categories().set_index("category_id").loc["CAT-2", "parent_id"] == "CAT-1"
    assert ws.products().set_index("product_id").loc["P-1", "category_id"] == "CAT-2"
    assert ws.customers().set_index("customer_id").loc["C-1", "account_id"] == "A-1"
    referrals = ws.referrals().set_index("referral_id")
    assert list(referrals.loc["RF-1", ["referrer_id", "referee_id"]]) == ["C-1", "C-2"]
    assert referrals["referee_id"].isna()["RF-2"]
    assert ws.community_activity().loc[0, "community_event_id"] == "CE-1"
    assert ws.reviews().loc[0, "product_id"] == "P-1"


def test_frames_use_the_import_file_column_names(sqlite_workspace: Context) -> None:
    from kizuna.ingest.kinds import KINDS

    with kizuna.open(sqlite_workspace.settings.workspace) as ws:
        for name, kind in KINDS.items():
            missing = {f.name for f in kind.fields} - set(getattr(ws, name)().columns)
            assert not missing, f"{name} frame lacks import columns {missing}"


def test_instants_are_local_and_money_is_integer(ws: kizuna.Workspace) -> None:
    orders = ws.orders().set_index("order_id")

    assert str(orders["ordered_at"].dt.tz) == "Asia/Tokyo"
    assert orders.loc["O-1", "ordered_at"] == pd.Timestamp("2025-02-01 00:30", tz=TOKYO)
    assert orders["total_amount"].dtype == "Int64"
    assert orders.loc["O-1", "total_amount"] == 2_400
    assert ws.currency == "JPY" and ws.currency_exponent == 0 and ws.timezone == "Asia/Tokyo"
    products = ws.products().set_index("product_id")
    assert products["price"].dtype == "Int64"
    assert products["price"].isna()["P-2"]
    assert products["active"].dtype == "boolean"
    customers = ws.customers().set_index("customer_id")
    assert customers.loc["C-1", "birthday"] == pd.Timestamp("1990-04-01")
    assert customers.loc["C-1", "attributes"] == {"tier": "gold"}
    assert customers["signup_at"].isna()["C-2"]
    assert ws.events().loc[0, "properties"] == {"n": 0}
    assert ws.contacts()["resolved_at"].isna().all()


def test_since_and_until_are_local_days(ws: kizuna.Workspace) -> None:
    # O-1 is on 1 February in Tokyo though 31 January in UTC; O-2 is 31 January in both.
    assert list(ws.orders(since=date(2025, 2, 1))["order_id"]) == ["O-1"]
    assert list(ws.orders(until="2025-01-31")["order_id"]) == ["O-2"]
    assert list(ws.orders(since="2025-01-31", until="2025-01-31")["order_id"]) == ["O-2"]
    # A datetime is an instant: naive ones are Tokyo time, and `until` is exclusive.
    assert list(ws.orders(since=datetime(2025, 2, 1, 0, 30))["order_id"]) == ["O-1"]
    assert list(ws.orders(until=datetime(2025, 1, 31, 15, 30, tzinfo=UTC))["order_id"]) == ["O-2"]
    assert list(ws.order_lines(until="2025-01-31")["order_id"]) == []
    assert list(ws.events(since="2025-02-02T09:00")["event_id"]) == ["E-1", "E-2"]
    with pytest.raises(ValidationError, match="since='last week'"):
        ws.orders(since="last week")


def test_customer_and_type_filters(ws: kizuna.Workspace) -> None:
    assert list(ws.events(customer="C-1")["event_id"]) == ["E-0", "E-1"]
    assert list(ws.events(type="page_view")["event_id"]) == ["E-0", "E-2"]
    assert list(ws.events(customer="C-1", type=["login"])["event_id"]) == ["E-1"]
    assert list(ws.survey_answers(kind="csat")["answer_id"]) == []
    assert list(ws.referrals(customer="C-2")["referral_id"]) == ["RF-1", "RF-2"]
    assert list(ws.consents(customer="C-2")["channel"]) == []
    with pytest.raises(NotFound, match="'C-404'"):
        ws.orders(customer="C-404")


def test_empty_frames_keep_their_types(ws: kizuna.Workspace) -> None:
    frame = ws.orders(since="2030-01-01")

    assert frame.empty
    assert str(frame["ordered_at"].dtype) == "datetime64[us, Asia/Tokyo]"
    assert frame["total_amount"].dtype == "Int64"


def test_customer_360_and_summary_from_the_workspace(ws: kizuna.Workspace) -> None:
    customer = ws.customer("C-1", limit=2)
    summary = ws.summary()

    assert isinstance(customer, Customer360)
    assert [i.kind for i in customer.timeline] == ["referral_made", "review"]
    assert customer.profile.stats.revenue == 1_200
    assert isinstance(summary, Summary)
    assert summary.counts["events"] == 3
    assert [(m.month, m.net) for m in summary.revenue_by_month] == [(date(2025, 2, 1), 1_200)]


def test_open_overrides_settings_and_closes(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        seed(conn)
    with kizuna.open(workspace.settings.workspace, timezone="UTC") as ws:
        assert ws.orders().loc[1, "ordered_at"] == pd.Timestamp("2025-01-31 15:30", tz="UTC")
        assert "timezone=UTC" in repr(ws)


def test_open_refuses_what_is_not_a_current_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a Kizuna workspace"):
        kizuna.open(tmp_path)
    with pytest.raises(WorkspaceError, match="no Kizuna schema"):
        kizuna.open(f"sqlite:///{tmp_path / 'empty.sqlite'}")
