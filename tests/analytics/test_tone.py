"""Feedback tone as an optional, weighted attitudinal signal."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from kizuna.analytics import engine, kpi, loyalty, tone
from kizuna.bootstrap import Context
from kizuna.errors import ConfigError
from kizuna.ingest.sample import SampleSummary, generate
from kizuna.services import scoring
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths


def test_comment_tone_scores_japanese_and_english_comments() -> None:
    day = kpi.day_of(date(2025, 3, 1))
    comments = pa.table(
        {
            "customer_id": [1, 1, 2, 3],
            "text": ["とても満足しています。", "Great service, very helpful staff",
                     "Terrible, the parcel arrived broken", "注文しました"],
            "language": ["ja", None, "en", "ja"],
            "written_at_day": [day, day + 1, day, day],
        }
    )  # fmt: skip
    got = tone.comment_tone(comments).to_pydict()
    assert got["customer_id"] == [1, 1, 2, 3]
    assert got["tone"][0] > 0 and got["tone"][1] > 0
    assert got["tone"][2] < 0
    assert got["tone"][3] == 0.0  # no lexicon word: neutral
    with pytest.raises(Exception, match="written_at_day"):
        tone.comment_tone(comments.drop(["written_at_day"]))


def test_tone_weight_moves_the_attitude_score_and_is_off_by_default() -> None:
    day = kpi.day_of(date(2025, 3, 1))
    answers = pa.table(
        {"customer_id": [1, 2], "kind": ["nps", "nps"], "score": [8, 8],
         "answered_at_day": [day, day]}
    )  # fmt: skip
    tones = pa.table({"customer_id": [1, 2], "day": [day, day], "tone": [1.0, -1.0]})
    data = engine.from_arrow({"a": answers, "t": tones})
    default = loyalty.LoyaltyDefinition().attitude_weights
    assert "tone" not in default  # off unless the workspace weighs it

    def scores(weights: dict[str, float]) -> dict[int, float]:
        s = loyalty.attitude_signals(answers=data["a"], tone=data["t"], weights=weights)
        att = loyalty.attitude_scores(s, end_day=day + 1, half_life_days=365).to_pandas()
        return dict(zip(att.customer_id, att.attitude, strict=True))

    assert scores(dict(default)) == {1: pytest.approx(0.8), 2: pytest.approx(0.8)}
    # Equal weights: (0.8 + 1) / 2 and (0.8 + 0) / 2.
    with_tone = scores({**default, "tone": 1.0})
    assert with_tone == {1: pytest.approx(0.9), 2: pytest.approx(0.4)}
    assert loyalty.parse_weights("nps=1,tone=0.5", loyalty.SIGNALS, "w")["tone"] == 0.5
    with pytest.raises(ConfigError):
        loyalty.parse_weights("nps=1,tone=-1", loyalty.SIGNALS, "w")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("tone-sample"), 600, seed=9)


def test_scoring_with_tone_weight_uses_the_comments(
    workspace: Context, sample: SampleSummary
) -> None:
    import_paths(workspace, ImportFiles(files_in_folder(sample.out_dir)))
    as_of = date(2026, 10, 31)
    _, plain = scoring.score(workspace, as_of)
    weights = workspace.settings.loyalty_attitude_weights + ",tone=1"
    toned_ctx = Context(dataclasses.replace(workspace.settings, loyalty_attitude_weights=weights))
    try:
        run, toned = scoring.score(toned_ctx, as_of)
    finally:
        toned_ctx.dispose()
    assert run.version == 2
    a = plain.scores.to_pandas().set_index("customer_id").attitude
    b = toned.scores.to_pandas().set_index("customer_id").attitude
    moved = (a - b).abs() > 1e-12
    assert moved.sum() > 20  # customers who wrote comments
    # Customers whose comments are negative lose attitude, positive ones gain.
    data = engine.load(workspace, scoring.analytics_connection(workspace), ("orders",))
    scoring.add_feedback_tone(workspace, data, scoring.options_from_settings(toned_ctx).definition)
    per = data.arrow["feedback_tone"].to_pandas().groupby("customer_id").tone.mean()
    both = per[per.index.isin(a.index[moved])]
    change = (b - a)[both.index]
    assert np.corrcoef(both.to_numpy(), change.to_numpy())[0, 1] > 0.3
