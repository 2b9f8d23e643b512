"""A small advocacy workspace: referrals (one refused), ambassadors, an event, reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.services import ambassadors, community, referrals, reviews
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

T0 = datetime(2026, 3, 2, 3, tzinfo=UTC)
DAY = timedelta(days=1)


def seed(ctx: Context, now: datetime = T0) -> None:
    def uow() -> UnitOfWork:
        return UnitOfWork(ctx.engine, ctx.settings)

    people = [
        ("A1", "山田 太郎", "taro@example.jp", "090-1111-2222"),
        ("A2", "佐藤 花子", "hanako@example.jp", "090-3333-4444"),
        ("A3", "鈴木 一郎", "ichiro@example.jp", "090-5555-6666"),
        ("A4", "田中 次郎", "taro@example.jp", None),
    ]
    with ctx.engine.begin() as conn:
        ids = {
            ext: conn.execute(
                sa.insert(t.customers)
                .values(external_id=ext, name=name, email=email, phone=phone, signup_at=now)
                .returning(t.customers.c.id)
            ).scalar_one()
            for ext, name, email, phone in people
        }
        for n, ext in enumerate(("A1", "A2")):
            conn.execute(sa.insert(t.survey_answers).values(
                external_id=f"nps{n}", customer_id=ids[ext], kind="nps", score=10 - n,
                answered_at=now - DAY))  # fmt: skip
    code = referrals.code_for(uow(), "A1", now)["code"]
    referrals.capture(uow(), referrals.Capture("A3", code, now), now)
    referrals.capture(uow(), referrals.Capture("A4", code, now), now)
    with ctx.engine.begin() as conn:
        for ext in ("A3", "A4"):
            conn.execute(sa.insert(t.orders).values(
                external_id=f"o-{ext}", customer_id=ids[ext], ordered_at=now + DAY,
                total_amount=8000))  # fmt: skip
    referrals.settle(ctx.engine, ctx.settings, now + 40 * DAY)
    for step in ("invited", "accepted", "active"):
        ambassadors.move(uow(), "A1", step, "staff", now)
    ambassadors.assign_task(
        uow(), ambassadors.NewTask("t1", "A1", "review", "Review the tea set", 100, "staff"), now
    )
    ambassadors.complete_task(uow(), ambassadors.CompleteTask("t1", "staff", None, 250), now)
    community.create_event(
        uow(), community.NewEvent("ev1", "お茶会 Tea night", "meetup", now, location="Tokyo"), now
    )
    community.register(uow(), "ev1", "A2", brought_by="A1", now=now)
    community.check_in(uow(), "ev1", [("A1", now), ("A2", now)], "desk", now)
    reviews.submit(uow(), reviews.NewReview(
        "r1", "A2", 5, "とても丁寧でした。連絡は hanako@example.jp まで", channel="google"), now)  # fmt: skip
    reviews.submit(uow(), reviews.NewReview("r2", "A3", 2, "配送が遅い"), now)
