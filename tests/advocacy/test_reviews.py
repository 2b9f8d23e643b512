"""Reviews and UGC: ingest, moderation with reasons, and the reward rule paid once, within caps."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from tests.advocacy.conftest import T0, customer, points_of
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.errors import NotFound, ValidationError
from kizuna.services import reviews
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

DAY = timedelta(days=1)


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def _review(
    ctx: Context, rid: str, member: str = "a", **kw: object
) -> tuple[int, dict[str, object]]:
    kw.setdefault("rating", 5)
    kw.setdefault("body", "対応がとても丁寧でした")
    return reviews.submit(uow(ctx), reviews.NewReview(rid, member, **kw), T0)  # type: ignore[arg-type]


def test_submitted_review_waits_in_the_queue(ws: Context) -> None:
    customer(ws, "a")
    status, body = _review(
        ws, "r1", channel="instagram", url="https://instagram.com/p/1", kind="ugc"
    )
    assert (status, body["status"], body["kind"], body["channel"]) == (
        201,
        "pending",
        "ugc",
        "instagram",
    )
    assert _review(ws, "r1")[0] == 200
    with ws.engine.connect() as conn:
        assert [r["review_id"] for r in reviews.queue(conn)] == ["r1"]
        assert reviews.queue(conn, "approved") == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rating": 9}, "rating must be 1 to 5"),
        ({"rating": None, "body": None}, "needs a rating, a text or a link"),
        ({"url": "javascript:alert(1)"}, "url must start with"),
        ({"kind": "tweet"}, "kind must be one of"),
    ],
)
def test_bad_reviews_are_refused_with_the_fix(
    ws: Context, kw: dict[str, object], message: str
) -> None:
    customer(ws, "a")
    with pytest.raises(ValidationError, match=message):
        _review(ws, "r1", **kw)


def test_approval_rewards_once_and_rejection_needs_a_reason(ws: Context) -> None:
    a = customer(ws, "a")
    _review(ws, "r1")
    with pytest.raises(ValidationError, match="say why"):
        reviews.moderate(uow(ws), reviews.Moderate("r1", "rejected", "mod"), T0)
    body = reviews.moderate(uow(ws), reviews.Moderate("r1", "approved", "mod"), T0)
    assert (body["status"], body["points"], body["decided_by"]) == ("approved", 50, "mod")
    reviews.moderate(uow(ws), reviews.Moderate("r1", "approved", "mod"), T0)  # a retry
    taken_down = reviews.moderate(
        uow(ws), reviews.Moderate("r1", "rejected", "mod", "spam link"), T0
    )
    assert (taken_down["status"], taken_down["reason"]) == ("rejected", "spam link")
    reviews.moderate(uow(ws), reviews.Moderate("r1", "approved", "mod"), T0 + DAY)  # re-approved
    assert points_of(ws, a) == 50


def test_concurrent_approvals_pay_once(ws: Context) -> None:
    a = customer(ws, "a")
    _review(ws, "r1")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            reviews.moderate(uow(ws), reviews.Moderate("r1", "approved", "mod"), T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and points_of(ws, a) == 50


def test_monthly_cap_approves_without_points(ws: Context) -> None:
    a = customer(ws, "a")
    capped = dataclasses.replace(ws.settings, review_reward_cap_per_month=2)
    for i in range(3):
        _review(ws, f"r{i}")
        reviews.moderate(
            UnitOfWork(ws.engine, capped), reviews.Moderate(f"r{i}", "approved", "m"), T0
        )
    with ws.engine.connect() as conn:
        third = reviews.review(conn, "r2")
    assert (third["status"], third["points"]) == ("approved", 0)
    assert "cap" in str(third["reward_note"])
    assert points_of(ws, a) == 100
    _review(ws, "r3")  # next month the reward is paid again
    reviews.moderate(
        UnitOfWork(ws.engine, capped), reviews.Moderate("r3", "approved", "m"), T0 + 31 * DAY
    )
    assert points_of(ws, a) == 150


def test_imported_reviews_are_moderated_too(ws: Context) -> None:
    a = customer(ws, "a")
    with ws.engine.begin() as conn:
        add(
            conn, t.reviews, external_id="imp", customer_id=a, kind="review", rating=4, posted_at=T0
        )
    with ws.engine.connect() as conn:
        assert [r["review_id"] for r in reviews.queue(conn)] == ["imp"]
    reviews.moderate(uow(ws), reviews.Moderate("imp", "approved", "m"), T0)
    assert points_of(ws, a) == 50
    with pytest.raises(NotFound):
        reviews.moderate(uow(ws), reviews.Moderate("nope", "approved", "m"), T0)
