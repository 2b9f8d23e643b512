"""Feedback analysis and survey commands on the sample data, through the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kizuna.bootstrap import Context
from kizuna.cli import app
from kizuna.ingest.sample import generate
from kizuna.services import survey_feedback as sf
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths


@pytest.fixture
def sample(workspace: Context, tmp_path: Path) -> Context:
    generate(tmp_path / "sample", 300, seed=7)
    import_paths(workspace, ImportFiles(files_in_folder(tmp_path / "sample")))
    return workspace


def kizuna(ctx: Context, *args: str) -> str:
    result = CliRunner().invoke(app, ["--workspace", str(ctx.settings.workspace), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_sample_feedback_separates_complaints_from_praise(sample: Context) -> None:
    docs = sf.load_docs(sample.engine, sample.settings)
    assert {d.source for d in docs} == {"survey", "contact", "review"}
    summary = {r.theme: r for r in sf.theme_summary(docs)}
    # The generator makes detractors complain about delivery and promoters praise quality.
    delivery, quality = summary["delivery"], summary["quality"]
    assert delivery.detractor_share is not None and delivery.promoter_share is not None
    assert delivery.detractor_share > delivery.promoter_share
    assert quality.promoter_share is not None and quality.detractor_share is not None
    assert quality.promoter_share > quality.detractor_share
    assert delivery.mean_sentiment is not None and delivery.mean_sentiment < 0
    result = sf.compare(docs)
    assert result[0].z > 0 > result[-1].z
    praise = {r.term for r in result[-10:]}
    assert praise & {"良い", "品質 良い", "勧める", "おすすめ", "品質"}


def test_feedback_and_survey_commands(sample: Context, tmp_path: Path) -> None:
    out = kizuna(sample, "feedback", "themes", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["theme"] for r in rows} >= {"delivery", "price", "quality", "support"}
    out = kizuna(sample, "feedback", "compare", "--csv", "--source", "survey")
    header = next(csv.reader(io.StringIO(out)))
    assert header == ["term", "detractor", "promoter", "z"]
    assert "Theme trends" in kizuna(sample, "feedback", "trends")
    churn = list(csv.DictReader(io.StringIO(kizuna(sample, "feedback", "churn", "--csv"))))
    assert len(churn) == 7 and all("95% CI" in r for r in churn)
    definition = tmp_path / "nps.json"
    definition.write_text(
        json.dumps({"key": "nps-main", "kind": "nps", "title": {"ja": "満足度", "en": "NPS"}}),
        encoding="utf-8",
    )
    assert "version 1: created" in kizuna(sample, "survey", "create", str(definition))
    link = kizuna(sample, "survey", "link", "nps-main", sample_customer(sample))
    assert "/survey/" in link and "valid until" in link
    listed = list(csv.DictReader(io.StringIO(kizuna(sample, "survey", "list", "--csv"))))
    assert [(r["survey"], r["invited"], r["answered"]) for r in listed] == [("nps-main", "1", "0")]
    bad = CliRunner().invoke(
        app, ["--workspace", str(sample.settings.workspace), "survey", "link", "nope", "x"]
    )
    assert bad.exit_code != 0


def sample_customer(ctx: Context) -> str:
    import sqlalchemy as sa

    from kizuna.store import tables as t

    with ctx.engine.connect() as conn:
        return str(conn.execute(sa.select(t.customers.c.external_id).limit(1)).scalar_one())


def test_feedback_tone_is_a_per_customer_attitude_signal(sample: Context) -> None:
    tone = sf.feedback_tone(sample.engine, sample.settings)
    assert tone and all(-1.0 <= v <= 1.0 for v in tone.values())
    docs = sf.load_docs(sample.engine, sample.settings, ("survey",))
    by_class: dict[str, list[float]] = {"detractor": [], "promoter": []}
    for doc in docs:
        if doc.group in by_class and doc.customer_id in tone:
            by_class[doc.group].append(tone[doc.customer_id])
    mean = {k: sum(v) / len(v) for k, v in by_class.items()}
    assert mean["promoter"] > 0.2 > -0.2 > mean["detractor"]
    some = next(iter(tone))
    assert sf.feedback_tone(sample.engine, sample.settings, [some]) == {some: tone[some]}
    assert "Feedback tone" in kizuna(sample, "feedback", "tone", "--top", "3")
