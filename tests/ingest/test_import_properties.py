"""Property test: with --skip-bad, exactly the good rows land and every bad line is named."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import run_import

from kizuna.services.workspace import init_workspace
from kizuna.store import tables

CORRUPTIONS = {
    "birthday": "1990-02-31",
    "gender": "robot",
    "signup_at": "next tuesday",
    "email": "x" * 400,
}

row_strategy = st.tuples(
    st.text(alphabet="abcdefghij山田花子 ", min_size=1, max_size=12).map(str.strip).filter(bool),
    st.sampled_from([None, *CORRUPTIONS]),
    st.booleans(),  # repeat an earlier id
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row_strategy, min_size=1, max_size=30))
def test_skip_bad_keeps_exactly_the_good_rows(
    rows: list[tuple[str, str | None, bool]],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KIZUNA_DATABASE_URL", raising=False)
    folder = tmp_path_factory.mktemp("prop")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["customer_id", "name", "email", "birthday", "gender", "signup_at"])
    expected: dict[str, str] = {}
    bad_lines: set[int] = set()
    ids: list[str] = []
    for n, (name, corruption, repeat) in enumerate(rows):
        line = n + 2
        cid = ids[0] if repeat and ids else f"C{n}"
        ids.append(cid)
        values = {
            "email": f"{cid.lower()}@example.jp",
            "birthday": "1990-01-15",
            "gender": "female",
            "signup_at": "2024-05-01T10:00:00+09:00",
        }
        if corruption:
            values[corruption] = CORRUPTIONS[corruption]
        writer.writerow(
            [cid, name, values["email"], values["birthday"], values["gender"], values["signup_at"]]
        )
        duplicate = cid in expected or (repeat and n > 0 and ids.count(cid) > 1)
        if corruption or duplicate:
            bad_lines.add(line)
        else:
            expected[cid] = name
    path = folder / "customers.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    ctx = init_workspace(folder / "ws")
    try:
        report = run_import(ctx, "customers", path, skip_bad=True, rejects_dir=folder / "rejects")
        with ctx.engine.connect() as conn:
            stored = dict(
                conn.execute(
                    sa.select(tables.customers.c.external_id, tables.customers.c.name)
                ).all()
            )
    finally:
        ctx.dispose()
    assert stored == expected
    assert {p.line for p in report.problems} == bad_lines
    assert report.stats["customers"].rejected == len(bad_lines)
    if bad_lines:
        rejects = Path(folder / "rejects" / "customers.rejects.csv").read_text(encoding="utf-8")
        assert len(rejects.strip().splitlines()) == len(bad_lines) + 1
