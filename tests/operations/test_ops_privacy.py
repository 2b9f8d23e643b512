"""Access and erasure requests: everything exported; erasure leaves no trace and moves no number."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from tests.operations.conftest import add_journey_run, balances, counts

from kizuna.bootstrap import Context
from kizuna.errors import ConfigError, NotFound
from kizuna.services import privacy, retention
from kizuna.services.analytics_queries import kpi_frame
from kizuna.services.programme.checks import check_all
from kizuna.services.programme.liability import liability
from kizuna.services.uow import UnitOfWork
from kizuna.store import operations_tables as ops
from kizuna.store import tables as t
from kizuna.store.types import JSONDoc

FIXED = datetime(2026, 11, 26, tzinfo=UTC)


def _victim(ctx: Context) -> tuple[int, str, str, str]:
    """A customer with points, orders and survey answers, and their email and phone."""
    c, s = t.customers.c, t.survey_answers.c
    with ctx.engine.connect() as conn:
        row = conn.execute(
            sa.select(c.id, c.external_id, c.email, c.phone)
            .where(
                c.email.is_not(None),
                c.phone.is_not(None),
                c.id.in_(sa.select(s.customer_id)),
                c.id <= 20,
            )
            .order_by(c.id)
            .limit(1)
        ).one()
    return int(row.id), row.external_id, row.email, row.phone


def _plant(ctx: Context, cid: int, email: str, phone: str) -> None:
    """The person's contact details also written into free text and JSON elsewhere."""
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        conn.execute(
            sa.update(t.survey_answers)
            .where(t.survey_answers.c.customer_id == cid)
            .values(comment=f"call me on {phone} or mail {email}")
        )
        conn.execute(
            sa.insert(t.events).values(
                external_id=f"ev-{cid}",
                customer_id=cid,
                type="page_view",
                occurred_at=now - timedelta(days=1),
                session_id=email,
                properties={"form": {"email": email, "tel": phone}},
            )
        )
        conn.execute(
            sa.insert(t.contacts).values(
                external_id=f"ct-{cid}",
                customer_id=cid,
                touchpoint="inquiry_form",
                opened_at=now,
                comment=f"reply to {email}",
            )
        )
    add_journey_run(ctx, cid, f"550 mailbox {email} unavailable", f"call {phone}")


def _text_columns() -> list[sa.Column[object]]:
    cols = []
    for table in t.metadata.sorted_tables:
        for col in table.columns:
            if (
                isinstance(col.type, sa.String | sa.Text)
                or col.type is JSONDoc
                or isinstance(col.type, sa.JSON)
                or "JSON" in type(col.type).__name__
            ):
                cols.append(col)
    return cols


def _hits(ctx: Context, needle: str) -> list[str]:
    """Every (table.column) of the whole database whose text contains ``needle``."""
    found = []
    with ctx.engine.connect() as conn:
        for col in _text_columns():
            as_text = sa.cast(col, sa.Text)
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(col.table)
                .where(as_text.contains(needle, autoescape=True))
            ).scalar_one()
            if n:
                found.append(f"{col.table.name}.{col.name}")
    return found


def _uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def test_export_lists_every_table_that_holds_rows_about_the_customer(loaded: Context) -> None:
    cid, ext, email, phone = _victim(loaded)
    _plant(loaded, cid, email, phone)
    with _uow(loaded) as uow:
        doc = privacy.export_customer(uow, ext)
    text = privacy.export_json(doc)
    assert json.loads(text)["format"] == "kizuna-privacy-export/1"
    assert doc["customer"]["email"] == email and doc["customer"]["phone"] == phone
    for name in ("orders", "order_lines", "survey_answers", "events", "contacts", "consents"):
        assert doc["tables"][name], name
    for name in ("ledger_entries", "point_accounts", "point_lots", "sends", "journey_runs"):
        assert doc["tables"][name], name
    assert all(row["customer_id"] == cid for row in doc["tables"]["orders"])
    assert "comment" in doc["personal_columns"]["survey_answers"]
    # Walking the metadata, not a list: every table with rows for them is there.
    with loaded.engine.connect() as conn:
        for table in privacy.linked_tables():
            where = privacy.customer_filter(table, cid)
            n = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(where)  # type: ignore[arg-type]
            ).scalar_one()
            assert (n > 0) == (table.name in doc["tables"]), table.name


def test_erasure_leaves_no_personal_field_and_moves_no_balance_or_kpi(loaded: Context) -> None:
    cid, ext, email, phone = _victim(loaded)
    _plant(loaded, cid, email, phone)
    with loaded.engine.connect() as conn:
        other_email = conn.execute(
            sa.select(t.customers.c.email)
            .where(t.customers.c.id != cid, t.customers.c.email.is_not(None))
            .limit(1)
        ).scalar_one()
    assert _hits(loaded, email) and _hits(loaded, phone)
    before_balances, before_counts = balances(loaded), counts(loaded)
    before_kpi, before_monthly = kpi_frame(loaded), kpi_frame(loaded, monthly=True)
    with _uow(loaded) as uow:
        before_liability = liability(uow, FIXED)
    with _uow(loaded) as uow:
        done = privacy.erase_customer(uow, ext, actor="dpo@example.jp", reason="request 7")
        uow.commit()

    assert _hits(loaded, email) == [] and _hits(loaded, phone) == []
    assert _hits(loaded, other_email), "only the erased person is touched"
    assert balances(loaded) == before_balances
    with _uow(loaded) as uow:
        assert check_all(uow) == []
        assert liability(uow, FIXED) == before_liability
    after_counts = counts(loaded)
    assert after_counts.pop("privacy_erasures") == before_counts.pop("privacy_erasures") + 1
    assert after_counts == before_counts
    pd.testing.assert_frame_equal(kpi_frame(loaded), before_kpi)
    pd.testing.assert_frame_equal(kpi_frame(loaded, monthly=True), before_monthly)

    with loaded.engine.connect() as conn:
        customer = conn.execute(sa.select(t.customers).where(t.customers.c.id == cid)).one()
        consents = conn.execute(
            sa.select(t.consents.c.granted).where(t.consents.c.customer_id == cid)
        ).scalars()
        audit = conn.execute(sa.select(ops.privacy_erasures)).mappings().one()
    assert customer.external_id == ext and customer.name is None and customer.email is None
    assert not any(consents), "an erased person is never contacted again"
    assert audit["actor"] == "dpo@example.jp" and audit["customer_id"] == cid
    assert "email" in audit["columns"]["customers"] and audit["rows"]["sends"] == 1
    assert email not in json.dumps(dict(audit), default=str)
    assert phone not in json.dumps(dict(audit), default=str)
    assert done.rows["customers"] == 1

    # The export afterwards shows what is still held: nothing personal.
    with _uow(loaded) as uow:
        again = privacy.export_json(privacy.export_customer(uow, ext))
    assert email not in again and phone not in again


def test_erasing_an_unknown_customer_is_a_clear_not_found(loaded: Context) -> None:
    with _uow(loaded) as uow, pytest.raises(NotFound, match="no customer 'nobody'"):
        privacy.erase_customer(uow, "nobody", actor="x")


def test_retention_turns_old_events_into_daily_counts_and_keeps_totals(loaded: Context) -> None:
    e = t.events.c
    now = datetime(2026, 11, 26, tzinfo=UTC)
    cutoff = datetime(2026, 5, 26, tzinfo=UTC)
    with loaded.engine.connect() as conn:
        old = conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(e.dwell_seconds), 0)).where(
                e.occurred_at < cutoff
            )
        ).one()
        total = conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar_one()
    assert old[0] > 0
    rules = retention.parse_rules("events=6m,idempotency_keys=30d")
    with _uow(loaded) as uow:
        outcomes = retention.apply_rules(uow, rules, now=now)
    assert outcomes[0].rule == "events" and outcomes[0].deleted == old[0]
    d = ops.event_daily_counts.c
    with loaded.engine.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar_one()
        summary = conn.execute(sa.select(sa.func.sum(d.events), sa.func.sum(d.dwell_seconds))).one()
        runs = conn.execute(sa.select(sa.func.count()).select_from(ops.retention_runs)).scalar_one()
    assert kept == total - old[0]
    assert (summary[0], summary[1]) == (old[0], old[1])
    assert runs == 2
    # Applying again changes nothing: nothing old is left.
    with _uow(loaded) as uow:
        assert retention.apply_rules(uow, rules, now=now)[0].deleted == 0


def test_retention_rules_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        retention.parse_rules("orders=3m")
    with pytest.raises(ConfigError, match="24m or 30d"):
        retention.parse_rules("events=soon")


def test_rows_one_foreign_key_away_from_the_customer_are_found() -> None:
    """A table with no customer column is reached through its parent (e.g. referral fingerprints)."""
    md = sa.MetaData()
    customers = sa.Table("customers", md, sa.Column("id", sa.Integer, primary_key=True))
    parent = sa.Table(
        "parent",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("referee_id", sa.Integer, sa.ForeignKey("customers.id")),
    )
    child = sa.Table(
        "child",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id")),
        sa.Column("digest", sa.String(64), info={"personal": True}),
    )
    orphan = sa.Table(
        "orphan", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text)
    )
    engine = sa.create_engine("sqlite://")
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(customers), [{"id": 1}, {"id": 2}])
        conn.execute(sa.insert(parent), [{"id": 10, "referee_id": 1}, {"id": 20, "referee_id": 2}])
        conn.execute(sa.insert(child), [{"id": 100, "parent_id": 10}, {"id": 200, "parent_id": 20}])
        where = privacy.customer_filter(child, 1)
        assert where is not None
        assert conn.execute(sa.select(child.c.id).where(where)).scalars().all() == [100]
    assert privacy.customer_filter(orphan, 1) is None


def test_privacy_and_retention_from_the_command_line(
    sqlite_workspace: Context, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from kizuna.cli import app

    now = datetime.now(UTC)
    with sqlite_workspace.engine.begin() as conn:
        cid = conn.execute(
            sa.insert(t.customers)
            .values(
                external_id="CLI1", name="佐藤 花子", email="hana@example.jp", phone="090-1111-2222"
            )
            .returning(t.customers.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(t.events).values(
                external_id="old",
                customer_id=cid,
                type="page_view",
                occurred_at=now - timedelta(days=900),
            )
        )
    ws, runner = str(sqlite_workspace.settings.workspace), CliRunner()
    out = tmp_path / "cli1.json"
    done = runner.invoke(app, ["-w", ws, "privacy", "export", "CLI1", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["customer"]["email"] == "hana@example.jp"
    assert out.stat().st_mode & 0o077 == 0
    done = runner.invoke(
        app, ["-w", ws, "privacy", "erase", "CLI1", "--yes", "--reason", "ticket 9"]
    )
    assert done.exit_code == 0 and "erased customer CLI1" in done.output
    listing = runner.invoke(app, ["-w", ws, "privacy", "erasures"])
    assert "CLI1" in listing.output and "ticket 9" in listing.output
    applied = runner.invoke(app, ["-w", ws, "retention", "apply", "--rules", "events=24m"])
    assert applied.exit_code == 0 and "1 summarised, 1 deleted" in applied.output
    bad = runner.invoke(app, ["-w", ws, "retention", "apply", "--rules", "orders=1m"])
    assert bad.exit_code != 0
