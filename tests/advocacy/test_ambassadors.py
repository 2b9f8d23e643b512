"""Ambassadors: the documented ranking, the pipeline with who-and-when, tasks paid once."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from tests.advocacy.conftest import T0, customer, order, points_of
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.domain import ambassadors as rules
from kizuna.errors import Conflict
from kizuna.services import ambassadors, referrals
from kizuna.services.uow import UnitOfWork
from kizuna.store import scoring_tables as st
from kizuna.store import tables as t

DAY = timedelta(days=1)


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def test_score_formula_is_the_documented_one() -> None:
    assert rules.candidate_score(True, 0, None) == pytest.approx(0.40)
    assert rules.candidate_score(False, 3, None) == pytest.approx(0.35 * 0.5)
    assert rules.candidate_score(False, 0, 1.0) == pytest.approx(0.25)
    assert rules.candidate_score(True, 10**6, 1.0) == pytest.approx(1.0)


def _signals(ctx: Context) -> dict[str, int]:
    ids = {ext: customer(ctx, ext) for ext in ("promoter", "busy", "rich", "quiet")}
    with ctx.engine.begin() as conn:
        for n, (ext, score) in enumerate([("promoter", 6), ("promoter", 10), ("busy", 7)]):
            add(conn, t.survey_answers, external_id=f"s{n}", customer_id=ids[ext], kind="nps",
                score=score, answered_at=T0 - (3 - n) * DAY)  # fmt: skip
        for n in range(3):
            add(conn, t.reviews, external_id=f"r{n}", customer_id=ids["busy"], kind="review",
                rating=5, posted_at=T0 - DAY)  # fmt: skip
        ev = add(conn, t.community_events, external_id="ev", name="meetup", kind="meetup",
                 starts_at=T0 - DAY)  # fmt: skip
        add(conn, t.community_activity, external_id="a1", customer_id=ids["busy"],
            kind="event_attendance", community_event_id=ev, occurred_at=T0 - DAY)  # fmt: skip
        add(conn, t.reviews, external_id="old", customer_id=ids["quiet"], kind="review",
            rating=5, posted_at=T0 - 400 * DAY)  # fmt: skip
        run = add(conn, st.scoring_runs, version=1, as_of=T0.date(), created_at=T0,
                  status="complete", engine="duckdb", definition={}, models={}, kpis={},
                  timings={})  # fmt: skip
        for ext, clv in [("promoter", 100), ("busy", 200), ("rich", 900), ("quiet", 50)]:
            conn.execute(sa.insert(st.customer_scores).values(
                run_id=run, customer_id=ids[ext], frequency=1, recency_days=1, tenure_days=1,
                total_amount=0, r_score=1, f_score=1, m_score=1, rfm_segment="x", p_alive=1.0,
                expected_purchases_1y=1.0, clv=clv, behaviour_score=0.5, loyalty="none",
                lifecycle="active"))  # fmt: skip
    return ids


def test_candidates_ranked_by_promoter_engagement_and_clv(ws: Context) -> None:
    _signals(ws)
    with ws.engine.connect() as conn:
        ranked = ambassadors.candidates(conn, T0)
    by = {c.member_id: c for c in ranked}
    # rich has value but no advocacy signal; quiet's only review is over a year old
    assert [c.member_id for c in ranked] == ["promoter", "busy"]
    assert by["promoter"].nps == 10 and by["promoter"].promoter  # the latest answer counts
    assert (by["busy"].reviews, by["busy"].attended, by["busy"].promoter) == (3, 1, False)
    assert by["busy"].score == pytest.approx(0.35 * (1 - 2 ** (-4 / 3)) + 0.25 * 2 / 3)


def test_the_candidate_window_is_the_lifecycle_ambassador_window(ws: Context) -> None:
    """A workspace that counts advocacy over 500 days ranks the 400-day-old review too,
    on the dashboard as in the API and journeys (one setting, not two windows)."""
    _signals(ws)
    assert ambassadors.window_days(ws.settings) == 365
    wider = dataclasses.replace(
        ws.settings, lifecycle_rules=ws.settings.lifecycle_rules + ",ambassador_window_days=500"
    )
    assert ambassadors.window_days(wider) == 500
    with ws.engine.connect() as conn:
        live = ambassadors.candidates(conn, T0, window_days=500)
    assert [c.member_id for c in live] == ["promoter", "busy", "quiet"]
    assert {c.member_id: c.reviews for c in live}["quiet"] == 1
    # The stored dashboard ranking keys on the window: changing it ranks again.
    assert "quiet" not in {c.member_id for c in ambassadors.ranked_candidates(ws, T0, 10)}
    shared = Context(wider)
    shared._engine = ws.engine
    assert "quiet" in {c.member_id for c in ambassadors.ranked_candidates(shared, T0, 10)}


def test_the_dashboard_ranking_is_stored_and_follows_every_change(ws: Context) -> None:
    """The stored ranking equals the live one and is made again after any change."""
    ids = _signals(ws)
    now = T0 + timedelta(hours=5)
    first = ambassadors.ranked_candidates(ws, now, 10)
    with ws.engine.connect() as conn:
        live = ambassadors.candidates(conn, now, limit=10)
    assert [c.member_id for c in first] == [c.member_id for c in live] == ["promoter", "busy"]
    assert first == live
    # Inviting a candidate changes a row in place: they leave the list at once.
    ambassadors.move(uow(ws), "promoter", "invited", "hanako", now)
    assert [c.member_id for c in ambassadors.ranked_candidates(ws, now, 10)] == ["busy"]
    # A new review enters at once too.
    with ws.engine.begin() as conn:
        add(conn, t.reviews, external_id="new", customer_id=ids["rich"], kind="review",
            rating=5, posted_at=now)  # fmt: skip
    assert {c.member_id for c in ambassadors.ranked_candidates(ws, now, 10)} == {"busy", "rich"}
    # A year later every act has left the window (counted from the start of the
    # day); busy stays a candidate through their NPS answer alone.
    later = ambassadors.ranked_candidates(ws, now + 400 * DAY, 10)
    assert [(c.member_id, c.acts) for c in later] == [("busy", 0)]


def test_pipeline_records_who_and_when_and_tells_journeys(ws: Context) -> None:
    customer(ws, "a")
    ambassadors.move(uow(ws), "a", "invited", "hanako", T0)
    ambassadors.move(uow(ws), "a", "accepted", "self-service", T0 + DAY)
    ambassadors.move(uow(ws), "a", "accepted", "self-service", T0 + DAY)  # a retry
    ambassadors.move(uow(ws), "a", "active", "hanako", T0 + 2 * DAY)
    body = ambassadors.move(uow(ws), "a", "alumni", "taro", T0 + 90 * DAY)
    assert body["status"] == "alumni"
    assert (body["invited_by"], body["accepted_by"], body["activated_by"], body["alumni_by"]) == (
        "hanako", "self-service", "hanako", "taro")  # fmt: skip
    assert body["activated_at"] == (T0 + 2 * DAY).isoformat()
    assert [h["to"] for h in body["history"]] == ["invited", "accepted", "active", "alumni"]
    with ws.engine.connect() as conn:
        types = (
            conn.execute(
                sa.select(t.events.c.type).where(t.events.c.type.startswith("ambassador_"))
            )
            .scalars()
            .all()
        )
    assert sorted(types) == sorted(
        ["ambassador_invited", "ambassador_accepted", "ambassador_activated", "ambassador_alumni"]
    )


def test_pipeline_refuses_skipping_steps(ws: Context) -> None:
    customer(ws, "a")
    with pytest.raises(Conflict, match="not invited yet"):
        ambassadors.move(uow(ws), "a", "active", "hanako", T0)
    ambassadors.move(uow(ws), "a", "invited", "hanako", T0)
    with pytest.raises(Conflict, match="next steps are: accepted, declined"):
        ambassadors.move(uow(ws), "a", "active", "hanako", T0)


def _active(ctx: Context, ext: str) -> int:
    cid = customer(ctx, ext)
    for step in ("invited", "accepted", "active"):
        ambassadors.move(uow(ctx), ext, step, "staff", T0)
    return cid


def test_task_points_are_granted_exactly_once_under_retries(
    ws: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = _active(ws, "a")
    task = ambassadors.NewTask("t1", "a", "review", "Review the new tea set", 300, "staff")
    assert ambassadors.assign_task(uow(ws), task, T0)[0] == 201
    assert ambassadors.assign_task(uow(ws), task, T0)[0] == 200
    done = ambassadors.CompleteTask("t1", "staff", "https://example.jp/post/1", 1200)

    def crash(*_a: object, **_k: object) -> bool:
        raise ConnectionError("worker lost its database connection")

    with monkeypatch.context() as m:  # the first attempt dies after granting, before commit
        m.setattr(ambassadors, "record_event", crash)
        with pytest.raises(ConnectionError):
            ambassadors.complete_task(uow(ws), done, T0 + DAY)
    assert points_of(ws, cid) == 0
    first = ambassadors.complete_task(uow(ws), done, T0 + DAY)
    again = ambassadors.complete_task(uow(ws), done, T0 + 2 * DAY)
    assert (first[0], again[0]) == (201, 200)
    assert again[1]["completed_at"] == (T0 + DAY).isoformat()
    assert points_of(ws, cid) == 300


def test_concurrent_completions_grant_once(ws: Context) -> None:
    cid = _active(ws, "a")
    for i in range(3):
        ambassadors.assign_task(
            uow(ws), ambassadors.NewTask(f"t{i}", "a", "custom", "Speak", 100, "staff"), T0
        )
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            for i in range(3):
                ambassadors.complete_task(uow(ws), ambassadors.CompleteTask(f"t{i}", "staff"), T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert points_of(ws, cid) == 300


def test_tasks_only_for_active_ambassadors(ws: Context) -> None:
    customer(ws, "a")
    with pytest.raises(Conflict, match="not an active ambassador"):
        ambassadors.assign_task(
            uow(ws), ambassadors.NewTask("t1", "a", "review", "Review", 10, "staff"), T0
        )


def test_impact_counts_referred_customers_their_revenue_and_reach(ws: Context) -> None:
    a = _active(ws, "a")
    b = customer(ws, "b")
    code = referrals.code_for(uow(ws), "a", T0)["code"]
    referrals.capture(uow(ws), referrals.Capture("b", code, T0), T0)
    order(ws, "o1", b, T0 + DAY, total_amount=7000)
    order(ws, "o2", b, T0 + 5 * DAY, total_amount=3000)
    ambassadors.assign_task(uow(ws), ambassadors.NewTask("t1", "a", "review", "R", 10, "s"), T0)
    ambassadors.complete_task(uow(ws), ambassadors.CompleteTask("t1", "s", None, 450), T0)
    with ws.engine.connect() as conn:
        got = ambassadors.impact(conn, [a])[a]
        rows = ambassadors.pipeline(conn)
    assert got == {"referred": 1, "rewarded": 0, "revenue": 10000, "tasks_done": 1, "reach": 450,
                   "points": 10}  # fmt: skip
    assert rows[0]["member_id"] == "a" and rows[0]["revenue"] == 10000
