"""Segments over the latest scoring run: loyalty class, RFM segment, CLV, P(alive), lifecycle."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.errors import SegmentError
from kizuna.ingest.sample import SampleSummary, generate
from kizuna.services import scoring, segments
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.uow import UnitOfWork
from kizuna.store.scoring_tables import customer_scores, scoring_runs

AS_OF = date(2026, 10, 31)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("fields-sample"), 1_500, seed=5)


def _count(ctx: Context, *where: sa.ColumnElement[bool]) -> int:
    latest = sa.select(sa.func.max(scoring_runs.c.id)).scalar_subquery()
    with ctx.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(customer_scores.c.run_id == latest, *where)
            ).scalar_one()
        )


def test_segments_select_by_the_latest_runs_scores(
    workspace: Context, sample: SampleSummary
) -> None:
    uow = UnitOfWork(workspace.engine, workspace.settings)
    before = segments.preview(
        {"name": "s", "rule": {"field": "loyalty_class", "value": "spurious"}}, uow
    )
    assert before.count == 0  # nothing scored yet: the field is not set for anyone
    spurious_rule = {"field": "loyalty_class", "value": "spurious"}
    segments.handle_save(segments.SaveSegment({"name": "spurious", "rule": spurious_rule}), uow)
    assert segments.members("spurious", uow) == []
    import_paths(workspace, ImportFiles(files_in_folder(Path(sample.out_dir))))
    scoring.score(workspace, AS_OF)
    cs = customer_scores.c
    spurious = segments.preview(
        {"name": "s", "rule": {"field": "loyalty_class", "value": "spurious"}}, uow
    )
    assert spurious.count == _count(workspace, cs.loyalty == "spurious") > 0
    # The saved segment followed the run by itself: scoring refreshes every segment.
    assert len(segments.members("spurious", uow)) == spurious.count
    valuable_alive = {
        "name": "v",
        "rule": {"and": [{"field": "clv", "op": "gte", "value": 20000},
                         {"field": "p_alive", "op": "gt", "value": 0.5},
                         {"not": {"field": "lifecycle_stage", "value": "lapsed"}}]},
    }  # fmt: skip
    got = segments.preview(valuable_alive, uow).count
    assert got == _count(workspace, cs.clv >= 20000, cs.p_alive > 0.5, cs.lifecycle != "lapsed") > 0
    champions = segments.preview(
        {"name": "c", "rule": {"field": "rfm_segment", "value": "champions"}}, uow
    )
    assert champions.count == _count(workspace, cs.rfm_segment == "champions")


def test_a_score_field_with_the_wrong_type_is_refused_with_its_path() -> None:
    from kizuna.domain.segments import parse_segment

    with pytest.raises(SegmentError, match="/rule"):
        parse_segment({"name": "x", "rule": {"field": "p_alive", "op": "gt", "value": "high"}})
