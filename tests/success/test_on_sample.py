"""Health and intent on the generator's sample find what it planted, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from kizuna.analytics import health as h
from kizuna.bootstrap import Context
from kizuna.cli import app
from kizuna.domain.clock import local_day_start
from kizuna.domain.segments import parse_segment
from kizuna.errors import NotFound
from kizuna.ingest.sample import SampleSummary
from kizuna.reports.data import collect
from kizuna.reports.monthly import render_html
from kizuna.services import analytics_queries, health, intent, segments
from kizuna.services.uow import UnitOfWork
from kizuna.store import success_tables as st
from kizuna.store import tables as t

from .conftest import LAST_DAY

SIGNALS = ["onboarding_milestone", "training_completed", "health_dropped"]


def _truth(sample: SampleSummary) -> pd.DataFrame:
    return pd.read_csv(sample.out_dir / "ground_truth_accounts.csv", dtype={"in_market_topic": str})


def _cli(ctx: Context, *args: str) -> Any:
    return CliRunner().invoke(app, ["-w", ctx.settings.database_url if not ctx.settings.is_sqlite
                                    else str(ctx.settings.workspace), *args])  # fmt: skip


def test_health_ranks_planted_at_risk_accounts_below_healthy_ones(
    loaded: Context, success_sample: SampleSummary
) -> None:
    earlier = health.compute(loaded, LAST_DAY - timedelta(days=28))
    run = health.compute(loaded, LAST_DAY)
    rows = pd.DataFrame(health.account_list(loaded))
    truth = _truth(success_sample)[["account_id", "at_risk"]]
    merged = rows.merge(truth, left_on="account", right_on="account_id")
    assert len(merged) == len(truth) == run.accounts
    at_risk = merged["at_risk"].to_numpy(bool)
    assert 10 <= at_risk.sum() <= len(merged) - 10
    # Healthy accounts score above at-risk ones for >= 75% of pairs (0.5 = chance).
    assert h.auc(merged["score"].to_numpy(), ~at_risk) >= 0.75
    assert merged.loc[at_risk, "usage"].mean() < 0.6 * merged.loc[~at_risk, "usage"].mean()
    assert set(merged["touch_model"]) <= {
        "high_touch",
        "low_touch",
        "tech_touch",
        "community_touch",
    }
    assert len(set(merged["touch_model"])) >= 3
    # One run per day: the trend has both days, and recomputing a day replaces it.
    assert all(len(tr) == 2 for tr in merged["trend"])
    again = health.compute(loaded, LAST_DAY)
    with loaded.engine.connect() as conn:
        days = conn.execute(
            sa.select(st.health_runs.c.computed_on).order_by(st.health_runs.c.computed_on)
        ).scalars()
        per_day = conn.execute(
            sa.select(sa.func.count()).where(st.account_health.c.run_id == again.run_id)
        ).scalar_one()
        kinds = dict(
            conn.execute(
                sa.select(t.events.c.type, sa.func.count())
                .where(t.events.c.type.in_(SIGNALS))
                .group_by(t.events.c.type)
            ).all()
        )
        assert list(days) == [earlier.computed_on, LAST_DAY] and per_day == run.accounts
    # Signals are recorded once: the re-run records nothing new.
    assert sum(again.events_recorded.values()) == 0
    completed = (
        earlier.events_recorded["training_completed"] + run.events_recorded["training_completed"]
    )
    assert kinds["training_completed"] == completed > 0
    assert kinds["onboarding_milestone"] > 0
    # Accounts that fell into the at-risk band announced it to their people.
    assert run.events_recorded["health_dropped"] == kinds["health_dropped"] > 0
    one = health.account_health(loaded, str(merged.iloc[0]["account"]))
    assert [p["computed_on"] for p in one["trend"]] == [earlier.computed_on, LAST_DAY]
    with pytest.raises(NotFound, match="no account"):
        health.account_health(loaded, "A9999")


def test_health_segment_fields_select_people_of_weak_accounts(loaded: Context) -> None:
    rows = health.account_list(loaded)
    weakest = rows[0]
    rule = {"field": "account_health_score", "op": "lte", "value": weakest["score"] + 0.05}
    picked = _select(loaded, rule)
    with loaded.engine.connect() as conn:
        members = conn.execute(
            sa.select(t.customers.c.external_id)
            .join(t.accounts, t.accounts.c.id == t.customers.c.account_id)
            .where(t.accounts.c.external_id == weakest["account"])
        ).scalars()
        assert set(members) <= set(picked)
    high = {r["account"] for r in rows if r["touch_model"] == "high_touch"}
    touch = _select(loaded, {"field": "touch_model", "value": "high_touch"})
    with loaded.engine.connect() as conn:
        people = set(
            conn.execute(
                sa.select(t.customers.c.external_id)
                .join(t.accounts, t.accounts.c.id == t.customers.c.account_id)
                .where(t.accounts.c.external_id.in_(high))
            ).scalars()
        )
    assert touch and set(touch) == people


def _select(ctx: Context, rule: dict[str, Any]) -> list[str]:
    from datetime import UTC, datetime

    definition = parse_segment({"name": "s", "rule": rule})
    ids = segments.evaluate(definition, UnitOfWork(ctx.engine, ctx.settings), datetime.now(UTC))
    with ctx.engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.select(t.customers.c.external_id).where(t.customers.c.id.in_(ids))
            ).scalars()
        )


def test_intent_finds_planted_surges_and_tells_journeys_once(
    loaded: Context, success_sample: SampleSummary
) -> None:
    run = intent.compute(loaded, LAST_DAY)
    assert run.week_start == LAST_DAY - timedelta(days=6)
    truth = _truth(success_sample).set_index("account_id")["in_market_topic"]
    with loaded.engine.connect() as conn:
        stored = pd.DataFrame(
            conn.execute(
                sa.select(
                    t.accounts.c.external_id, st.intent_scores.c.topic, st.intent_scores.c.surging
                )
                .join(t.accounts, t.accounts.c.id == st.intent_scores.c.account_id)
                .where(st.intent_scores.c.week_start == run.week_start)
            ).all(),
            columns=["account", "topic", "surging"],
        )
    planted = stored["topic"].to_numpy() == truth.reindex(stored["account"]).to_numpy()
    flagged = stored["surging"].to_numpy(bool)
    # Most planted (account, topic) surges are found; quiet pairs are almost never flagged.
    assert flagged[planted].mean() >= 0.4
    assert flagged[~planted].mean() <= 0.005
    assert planted[flagged].mean() >= 0.9
    assert run.surging == flagged.sum() and run.events_recorded > 0

    # The CLI list, for one topic.
    topic = str(stored.loc[flagged & planted, "topic"].iloc[0])
    listed = intent.surging(loaded, topic)
    expected = set(stored.loc[flagged & (stored["topic"] == topic), "account"])
    assert {r["account"] for r in listed} == expected
    out = _cli(loaded, "intent", "surging", "--topic", topic, "--json")
    assert out.exit_code == 0, out.output
    assert {r["account"] for r in json.loads(out.output)} == expected

    # The segment condition: people whose account is surging on the topic.
    picked = _select(loaded, {"field": "intent_surging_topics", "op": "contains", "value": topic})
    with loaded.engine.connect() as conn:
        members = set(
            conn.execute(
                sa.select(t.customers.c.external_id)
                .join(t.accounts, t.accounts.c.id == t.customers.c.account_id)
                .where(t.accounts.c.external_id.in_(expected))
            ).scalars()
        )
    assert set(picked) == members

    # Re-running the same day replaces the week and records nothing twice; a run
    # the next day of the same ISO week announces only pairs not announced yet.
    assert LAST_DAY.isoweekday() == 6
    assert intent.compute(loaded, LAST_DAY).events_recorded == 0
    before = _surge_events(loaded)
    intent.compute(loaded, LAST_DAY + timedelta(days=1))
    after = _surge_events(loaded)
    announced = {(a, tp) for a, tp, _, _ in before}
    assert all((a, tp) not in announced for a, tp, _, _ in set(after) - set(before))
    assert len(after) == len(set(after)) and len(before) == run.events_recorded


def _surge_events(ctx: Context) -> list[tuple[int, str, str, int]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.events.c.customer_id, t.events.c.properties).where(
                t.events.c.type == "intent_surge"
            )
        ).all()
    return [(r[1]["account_id"], r[1]["topic"], r[1]["week"], r[0]) for r in rows]


# ---- the monthly report ----------------------------------------------------------------
REPORT_MONTH = date(2026, 10, 1)


class _Values(HTMLParser):
    """Every element's data-* attributes, to read the numbers the report wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}
        if "value" in found:
            self.cells.append(found)


def _cells(html: str) -> list[dict[str, str]]:
    parser = _Values()
    parser.feed(html)
    return parser.cells


def test_report_numbers_equal_the_analytics_results(loaded: Context) -> None:
    data = collect(loaded, REPORT_MONTH)
    html = render_html(data, "en")
    cells = _cells(html)
    kpis = analytics_queries.kpi_frame(loaded, date(2025, 11, 1), date(2026, 10, 31), monthly=True)
    kpi_cells = {(c["month"], c["kpi"]): c["value"] for c in cells if "month" in c and "kpi" in c}
    checked = 0
    for row in kpis.to_dict("records"):
        for name in ("nps", "csat", "ces", "repeat_rate", "retention_rate", "churn_rate"):
            value = row[name]
            shown = kpi_cells[(row["month"], name)]
            if value is None or value != value:
                assert shown == ""
            else:
                assert float(shown) == pytest.approx(float(value), rel=1e-12), (row["month"], name)
                checked += 1
    assert checked >= 60 and len(kpis) == 12
    # Lifecycle: the sample's last order month is the report month, so the dashboard's
    # lifecycle query (which ends at the latest order) must agree cell by cell.
    trend, moves = analytics_queries.lifecycle_frames(loaded, 12)
    stage_cells = {(c["month"], c["stage"]): int(c["value"]) for c in cells if "stage" in c}
    assert stage_cells == {(m, s): int(trend.at[m, s]) for m in trend.index for s in trend.columns}
    loyal = next(c for c in cells if c.get("kpi") == "loyal_customers")
    assert int(loyal["value"]) == int(trend.loc["2026-10", ["loyal", "ambassador"]].sum())
    flow_cells = {(c["from"], c["to"]): int(c["value"]) for c in cells if "from" in c}
    moves = moves.rename(index={"(first purchase)": "first_purchase"})
    assert flow_cells == {(f, s): int(moves.at[f, s]) for f in moves.index for s in moves.columns}
    # Cohorts: the dashboard's matrix, for the twelve cohorts of the window.
    cohorts = analytics_queries.cohort_frame(loaded)
    cohort_cells = [c for c in cells if "cohort" in c]
    assert cohort_cells and {c["cohort"] for c in cohort_cells} == {
        f"{y}-{m:02d}" for y, m in [(2025, 11), (2025, 12)] + [(2026, k) for k in range(1, 11)]
    }
    for c in cohort_cells:
        assert float(c["value"]) == pytest.approx(float(cohorts.at[c["cohort"], int(c["age"])]))
    # Feedback themes come from the text analysis of the month's survey comments.
    from kizuna.services.survey_feedback import load_docs, theme_summary

    tz = loaded.settings.tz
    docs = load_docs(
        loaded.engine, loaded.settings, ("survey",),
        local_day_start(date(2026, 10, 1), tz), local_day_start(date(2026, 11, 1), tz),
    )  # fmt: skip
    expected = {s.theme: s.mentions for s in theme_summary(docs) if s.mentions}
    themes = {c["theme"]: int(c["value"]) for c in cells if "theme" in c}
    assert themes and all(expected[k] == v for k, v in themes.items())
    # The commentary states each month-on-month change with the right direction.
    nps = kpis.set_index("month")["nps"]
    direction = "up" if nps["2026-10"] > nps["2026-09"] else "down"
    assert f'data-kpi="nps" data-direction="{direction}"' in html


def test_report_renders_in_both_languages_with_no_missing_strings(
    loaded: Context, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from kizuna.reports.monthly import CHROMIUM, CHROMIUM_ARGS

    shots = Path(os.environ.get("KIZUNA_TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    files = {}
    for lang in ("ja", "en"):
        out = tmp_path / f"report-{lang}.html"
        result = _cli(loaded, "report", "--month", "2026-10", "--lang", lang, "--out", str(out),
                      *(["--pdf"] if lang == "en" else []))  # fmt: skip
        assert result.exit_code == 0, result.output
        files[lang] = out
    assert (tmp_path / "report-en.pdf").read_bytes()[:5] == b"%PDF-"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            # Nothing may be fetched: the file is self-contained.
            page.route(
                "**/*",
                lambda route: (
                    route.abort()
                    if not route.request.url.startswith("file:")
                    else route.continue_()
                ),
            )
            texts = {}
            for lang, path in files.items():
                page.goto(path.as_uri())
                texts[lang] = page.inner_text("body")
                assert page.locator("svg.chart").count() >= 3
                page.screenshot(path=str(shots / f"success-report-{lang}.png"), full_page=True)
        finally:
            browser.close()
    catalogue_keys = re.compile(r"\bsuccess\.[a-z_]+(\.[a-z_]+)*\b")
    for lang, text in texts.items():
        assert not catalogue_keys.search(text), (lang, catalogue_keys.search(text))
        assert "None" not in text and "nan" not in text.lower().split()
    assert "月次ロイヤルティレポート" in texts["ja"] and "上がったもの" in texts["ja"]
    assert "Monthly loyalty report" in texts["en"] and "What went up" in texts["en"]
    for lang in texts:
        assert (shots / f"success-report-{lang}.png").stat().st_size > 10_000


def test_report_month_errors_are_clear(loaded: Context) -> None:
    bad = _cli(loaded, "report", "--month", "2026-13")
    assert bad.exit_code != 0
    with pytest.raises(NotFound, match="no orders or survey answers in 2019-01"):
        collect(loaded, date(2019, 1, 1))


def test_send_report_mails_the_report_through_smtp(loaded: Context) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    from tests.automation.smtp_sink import smtp_sink

    from kizuna.automation.actions import ActionContext, get_action
    from kizuna.automation.runner import load_plugins
    from kizuna.errors import JourneyError

    load_plugins()
    action = get_action("send_report")
    with pytest.raises(JourneyError, match="lang"):
        action.validate({"lang": "fr"}, "/steps/0")
    with pytest.raises(JourneyError, match="month"):
        action.validate({"month": "October"}, "/steps/0")
    action.validate({"lang": "en", "month": "2026-10", "pdf": False}, "/steps/0")
    with smtp_sink() as (sink, port), loaded.engine.connect() as conn:
        settings = replace(loaded.settings, smtp_port=port)
        ctx = ActionContext(
            conn=conn, settings=settings, run_id=1, journey_id=1, journey="monthly-report",
            step_id="0", params={"lang": "en", "month": "previous"},
            customer={"id": 1, "name": "CS lead", "email": "lead@example.com"},
            tz=settings.tz, now=datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
            idempotency_key="run:1:step:0",
        )  # fmt: skip
        outcome = action.perform(ctx)
        assert outcome.status == "sent", outcome.reason
        skipped = action.perform(replace(ctx, customer={"id": 2, "email": None}))
        assert skipped.status == "skipped"
    (msg,) = sink.to("lead@example.com")
    assert msg["Subject"] == "Monthly loyalty report 2026-10"
    parts = {p.get_filename(): p for p in msg.iter_attachments()}
    html = parts["kizuna-loyalty-report-2026-10-en.html"].get_content()
    assert "What went up" in html and 'data-kpi="nps"' in html
    assert "What went" in msg.get_body(("plain",)).get_content()
