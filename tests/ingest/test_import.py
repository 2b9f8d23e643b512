"""Imports: the happy paths, idempotence, and every kind of bad input the issue lists.

Each bad-input case runs on SQLite and PostgreSQL and proves two things: the
message names the line (or the file) and the fix, and the database is exactly
as it was before — or, with ``skip_bad``, holds exactly the good rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from tests.helpers import CUSTOMERS_CSV, ORDERS_CSV, column, count, run_import, snapshot, write

from kizuna.bootstrap import Context
from kizuna.errors import ImportRejected
from kizuna.store import tables


def rejected(ctx: Context, kind: str, *paths: Path, **options: object) -> ImportRejected:
    before = snapshot(ctx)
    with pytest.raises(ImportRejected) as info:
        run_import(ctx, kind, *paths, **options)
    assert snapshot(ctx) == before, "a rejected import must leave the database exactly as it was"
    return info.value


def messages(exc: ImportRejected) -> list[str]:
    return [str(p) for p in exc.report.problems]  # type: ignore[attr-defined]


@pytest.fixture
def with_customers(workspace: Context, tmp_path: Path) -> Context:
    run_import(workspace, "customers", write(tmp_path / "customers.csv", CUSTOMERS_CSV))
    return workspace


# ---- happy paths ----------------------------------------------------------------------
def test_import_customers_stores_utc_times_dates_and_attributes(
    workspace: Context, tmp_path: Path
) -> None:
    text = CUSTOMERS_CSV.replace("signup_at\n", "signup_at,attr.rank\n", 1)
    text = text.replace("+09:00\n", "+09:00,gold\n", 1)
    text = (
        "\n".join(
            line + ("," if i > 1 and not line.endswith("gold") else "")
            for i, line in enumerate(text.strip().split("\n"), start=0)
        )
        + "\n"
    )
    report = run_import(workspace, "customers", write(tmp_path / "c.csv", text))
    assert report.committed and report.stats["customers"].inserted == 3
    with workspace.engine.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(sa.select(tables.customers))}
    assert rows["C1"].signup_at == datetime(2024, 1, 5, 1, 0, tzinfo=UTC)
    # A time without an offset is read in the workspace timezone (Asia/Tokyo).
    assert rows["C2"].signup_at == datetime(2024, 2, 1, 0, 0, tzinfo=UTC)
    assert rows["C3"].signup_at == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert str(rows["C1"].birthday) == "1990-04-01" and rows["C3"].birthday is None
    assert rows["C1"].attributes == {"rank": "gold"}
    assert rows["C1"].name == "山田 太郎"


def test_reimporting_the_same_file_changes_nothing(with_customers: Context, tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    before = snapshot(with_customers)
    report = run_import(with_customers, "customers", path)
    stats = report.stats["customers"]
    assert (stats.inserted, stats.updated, stats.unchanged) == (0, 0, 3)
    assert snapshot(with_customers) == before


def test_upsert_updates_only_changed_rows(with_customers: Context, tmp_path: Path) -> None:
    changed = CUSTOMERS_CSV.replace("taro@example.jp", "taro@new.example.jp")
    changed += "C4,New Person,new@example.com,,,,\n"
    report = run_import(with_customers, "customers", write(tmp_path / "c2.csv", changed))
    stats = report.stats["customers"]
    assert (stats.inserted, stats.updated, stats.unchanged) == (1, 1, 2)
    with with_customers.engine.connect() as conn:
        email = conn.execute(
            sa.select(tables.customers.c.email).where(tables.customers.c.external_id == "C1")
        ).scalar_one()
    assert email == "taro@new.example.jp"


def test_orders_lines_and_returns_resolve_external_ids(
    with_customers: Context, tmp_path: Path
) -> None:
    run_import(with_customers, "orders", write(tmp_path / "orders.csv", ORDERS_CSV))
    lines = "order_id,line_no,quantity,unit_price\nO1,1,1,1980\nO2,1,2,2000\nO2,2,1,1000\n"
    run_import(with_customers, "order_lines", write(tmp_path / "order_lines.csv", lines))
    returns = (
        "return_id,order_id,line_no,quantity,refund_amount,returned_at\nR1,O2,1,1,2000,2025-02-03\n"
    )
    run_import(with_customers, "returns", write(tmp_path / "returns.csv", returns))
    with with_customers.engine.connect() as conn:
        q = (
            sa.select(tables.order_lines.c.amount, tables.customers.c.external_id)
            .join(tables.customers, tables.customers.c.id == tables.order_lines.c.customer_id)
            .order_by(tables.order_lines.c.id)
        )
        assert [tuple(r) for r in conn.execute(q)] == [(1980, "C1"), (4000, "C2"), (1000, "C2")]
        ret = conn.execute(sa.select(tables.returns)).one()
    assert ret.refund_amount == 2000 and ret.customer_id is not None


def test_shift_jis_file_with_japanese_headers_and_mapping(
    workspace: Context, tmp_path: Path
) -> None:
    text = "会員番号,氏名,メールアドレス,性別\nC1,山田 太郎,taro@example.jp,male\nC2,髙橋 一郎,ichiro@example.jp,\n"
    path = write(tmp_path / "sjis.csv", text, encoding="cp932")
    report = run_import(
        workspace,
        "customers",
        path,
        mapping={
            "customer_id": "会員番号",
            "name": "氏名",
            "email": "メールアドレス",
            "gender": "性別",
        },
    )
    assert report.committed and any("Shift_JIS" in n for n in report.notes)
    assert column(workspace, "customers", "name") == ["山田 太郎", "髙橋 一郎"]


def test_parquet_and_json_lines_imports(with_customers: Context, tmp_path: Path) -> None:
    table = pa.table(
        {
            "order_id": ["P1", "P2"],
            "customer_id": ["C1", "C3"],
            "ordered_at": pa.array(
                [datetime(2025, 5, 1, 3, 0, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")
            ),
            "total_amount": pa.array([100, 250], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "orders.parquet")
    assert (
        run_import(with_customers, "orders", tmp_path / "orders.parquet").stats["orders"].inserted
        == 2
    )
    events = [
        {
            "customer_id": "C1",
            "type": "page_view",
            "occurred_at": "2025-05-01T10:00:00+09:00",
            "page": "/shoes",
            "topic": "shoes",
            "dwell_seconds": 42,
            "properties": {"ref": "mail"},
        },
        {"customer_id": "C2", "type": "app_open", "occurred_at": "2025-05-02T08:00:00+09:00"},
    ]
    path = write(
        tmp_path / "events.jsonl",
        "\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n",
    )
    first = run_import(with_customers, "events", path)
    assert first.stats["events"].inserted == 2
    # Events without ids get a content hash as key, so importing them again adds nothing.
    again = run_import(with_customers, "events", path)
    assert again.stats["events"].inserted == 0 and count(with_customers, "events") == 2


def test_categories_tree_links_parents_in_the_same_file(workspace: Context, tmp_path: Path) -> None:
    text = "category_id,name,parent_id\nshoes-run,ランニング,shoes\nshoes,靴,\n"
    run_import(workspace, "categories", write(tmp_path / "categories.csv", text))
    with workspace.engine.connect() as conn:
        c = tables.categories
        parent = sa.select(c.c.external_id).where(
            c.c.id
            == sa.select(c.c.parent_id).where(c.c.external_id == "shoes-run").scalar_subquery()
        )
        assert conn.execute(parent).scalar_one() == "shoes"


# ---- bad input: every case from the issue -----------------------------------------------
def test_wrong_encoding_names_the_line_and_the_fix(workspace: Context, tmp_path: Path) -> None:
    text = "customer_id,name\nC1,Taro\nC2,山田\n"
    path = write(tmp_path / "c.csv", text, encoding="cp932")
    exc = rejected(workspace, "customers", path, encoding="utf-8")
    (msg,) = messages(exc)
    assert "line 3" in msg and "--encoding cp932" in msg
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"customer_id,name\nC1,\x81 broken\n")
    (msg,) = messages(rejected(workspace, "customers", garbage))
    assert "line 2" in msg and "UTF-8" in msg


def test_missing_required_column(workspace: Context, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "name,email\nTaro,t@example.jp\n")
    (msg, *_) = messages(rejected(workspace, "customers", path))
    assert "missing required column(s) customer_id" in msg and "--map customer_id=" in msg


def test_unknown_column_suggests_the_close_name(workspace: Context, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id,emial\nC1,t@example.jp\n")
    (msg,) = messages(rejected(workspace, "customers", path))
    assert "unknown column 'emial'" in msg and "did you mean 'email'" in msg and "line 1" in msg
    # The user can tell us to leave it out.
    assert run_import(workspace, "customers", path, ignore=["emial"]).committed


def test_bad_dates_and_times(with_customers: Context, tmp_path: Path) -> None:
    text = (
        "order_id,customer_id,ordered_at,total_amount\n"
        "O1,C1,2025-13-01T10:00:00,100\n"
        "O2,C1,yesterday,100\n"
        "O3,C1,2025-02-30,100\n"
        "O4,C1,2025-03-01T10:00:00+09:00,100\n"
    )
    msgs = messages(rejected(with_customers, "orders", write(tmp_path / "o.csv", text)))
    assert len(msgs) == 3
    assert "line 2, column ordered_at" in msgs[0] and "not a real date" in msgs[0]
    assert "line 3" in msgs[1] and "2025-03-04T18:22:10+09:00" in msgs[1]
    assert "line 4" in msgs[2]


def test_negative_and_non_numeric_quantities_and_prices(
    with_customers: Context, tmp_path: Path
) -> None:
    run_import(with_customers, "orders", write(tmp_path / "orders.csv", ORDERS_CSV))
    text = (
        "order_id,line_no,quantity,unit_price\n"
        "O1,1,-1,100\n"
        "O1,2,two,100\n"
        "O1,3,1,-5\n"
        "O1,4,1,abc\n"
        "O1,5,1,12.5\n"
        "O2,1,1,100\n"
    )
    msgs = messages(rejected(with_customers, "order_lines", write(tmp_path / "l.csv", text)))
    assert any("line 2, column quantity" in m and "at least 1" in m for m in msgs)
    assert any("line 3, column quantity" in m and "whole number" in m for m in msgs)
    assert any("line 4, column unit_price" in m and "negative" in m for m in msgs)
    assert any("line 5, column unit_price" in m and "amount" in m for m in msgs)
    assert any("line 6, column unit_price" in m and "decimals" in m for m in msgs)
    assert len(msgs) == 5


def test_duplicate_ids_inside_one_file(workspace: Context, tmp_path: Path) -> None:
    text = "customer_id,name\nC1,A\nC2,B\nC1,C\n"
    (msg,) = messages(rejected(workspace, "customers", write(tmp_path / "c.csv", text)))
    assert "line 4" in msg and "duplicate customer_id 'C1'" in msg and "record 1" in msg


def test_order_for_unknown_customer(with_customers: Context, tmp_path: Path) -> None:
    text = ORDERS_CSV + "O3,C999,2025-02-01T10:00:00+09:00,store,100\n"
    (msg,) = messages(rejected(with_customers, "orders", write(tmp_path / "o.csv", text)))
    assert "line 4, column customer_id" in msg and "no customer with id 'C999'" in msg
    assert "import customers first" in msg


def test_ten_megabyte_field_is_reported_not_truncated(
    with_customers: Context, tmp_path: Path
) -> None:
    huge = "x" * (10 * 1024 * 1024)
    text = (
        "answer_id,customer_id,kind,score,comment,answered_at\n"
        "S1,C1,nps,9,fine,2025-01-01T10:00:00+09:00\n"
        f'S2,C1,nps,3,"{huge}",2025-01-02T10:00:00+09:00\n'
    )
    (msg,) = messages(rejected(with_customers, "survey_answers", write(tmp_path / "s.csv", text)))
    assert "line 3, column comment" in msg and "10,485,760 characters" in msg and "limit" in msg


def test_empty_file(workspace: Context, tmp_path: Path) -> None:
    (msg,) = messages(rejected(workspace, "customers", write(tmp_path / "c.csv", "")))
    assert "c.csv" in msg and "empty" in msg
    (msg,) = messages(
        rejected(workspace, "customers", write(tmp_path / "h.csv", "customer_id,name\n"))
    )
    assert "no data rows" in msg


def test_a_file_that_is_not_csv_at_all(workspace: Context, tmp_path: Path) -> None:
    png = tmp_path / "photo.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (msg,) = messages(rejected(workspace, "customers", png))
    assert "not a text file" in msg
    doc = write(tmp_path / "doc.csv", '{"customers": [{"id": 1}]}\n')
    msgs = messages(rejected(workspace, "customers", doc))
    assert any("missing required column(s) customer_id" in m for m in msgs)


def test_rows_with_too_many_fields_are_reported_by_line(workspace: Context, tmp_path: Path) -> None:
    text = 'customer_id,name\nC1,"multi\nline name"\nC2,Smith, John\nC3,Ok\n'
    (msg,) = messages(rejected(workspace, "customers", write(tmp_path / "c.csv", text)))
    assert "line 4" in msg and "3 fields" in msg


def test_line_numbers_follow_quoted_line_breaks(workspace: Context, tmp_path: Path) -> None:
    text = 'customer_id,name,gender\nC1,"two\nlines",male\nC2,Bad,robot\n'
    (msg,) = messages(rejected(workspace, "customers", write(tmp_path / "c.csv", text)))
    assert "line 4, column gender" in msg


def test_survey_scores_are_checked_per_scale(with_customers: Context, tmp_path: Path) -> None:
    text = (
        "answer_id,customer_id,kind,score,answered_at\n"
        "S1,C1,nps,10,2025-01-01\nS2,C1,csat,7,2025-01-01\nS3,C1,ces,0,2025-01-01\n"
    )
    msgs = messages(rejected(with_customers, "survey_answers", write(tmp_path / "s.csv", text)))
    assert any("line 3" in m and "CSAT score must be between 1 and 5" in m for m in msgs)
    assert any("line 4" in m and "CES score must be between 1 and 7" in m for m in msgs)


def test_skip_bad_imports_exactly_the_good_rows(with_customers: Context, tmp_path: Path) -> None:
    text = ORDERS_CSV + "O3,C999,2025-02-01T10:00:00+09:00,store,100\nO4,C3,someday,store,100\n"
    report = run_import(
        with_customers,
        "orders",
        write(tmp_path / "o.csv", text),
        skip_bad=True,
        rejects_dir=tmp_path / "rejects",
    )
    assert report.committed and report.stats["orders"].inserted == 2
    assert report.stats["orders"].rejected == 2
    assert column(with_customers, "orders", "external_id") == ["O1", "O2"]
    rejects = (tmp_path / "rejects" / "o.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert rejects[0].endswith('"_line","_problems"')
    assert len(rejects) == 3 and "C999" in rejects[1] and "someday" in rejects[2]


def test_a_folder_import_is_all_or_nothing_across_kinds(workspace: Context, tmp_path: Path) -> None:
    from kizuna.services.imports import ImportFiles, files_in_folder, import_paths

    write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    write(tmp_path / "orders.csv", ORDERS_CSV + "O3,C1,not-a-date,store,100\n")
    before = snapshot(workspace)
    with pytest.raises(ImportRejected):
        import_paths(workspace, ImportFiles(files_in_folder(tmp_path)))
    assert snapshot(workspace) == before
    write(tmp_path / "orders.csv", ORDERS_CSV)
    report = import_paths(workspace, ImportFiles(files_in_folder(tmp_path)))
    assert (
        report.committed and count(workspace, "customers") == 3 and count(workspace, "orders") == 2
    )


def test_returns_must_name_a_real_line_and_not_return_more_than_bought(
    with_customers: Context, tmp_path: Path
) -> None:
    run_import(with_customers, "orders", write(tmp_path / "orders.csv", ORDERS_CSV))
    lines = "order_id,line_no,quantity,unit_price\nO1,1,1,1980\nO2,1,2,2500\n"
    run_import(with_customers, "order_lines", write(tmp_path / "order_lines.csv", lines))
    text = (
        "return_id,order_id,line_no,quantity,refund_amount,returned_at\n"
        "R1,O2,1,2,5000,2025-02-03\n"
        "R2,O2,2,1,100,2025-02-03\n"
        "R3,O1,1,3,1980,2025-02-03\n"
    )
    msgs = messages(rejected(with_customers, "returns", write(tmp_path / "returns.csv", text)))
    assert len(msgs) == 2
    assert "line 3, column line_no" in msgs[0] and "order 'O2' has no line 2" in msgs[0]
    assert "line 4" in msgs[1] and "returns 3 but line 1 of order 'O1' has only 1" in msgs[1]
