"""Recommended products reach a real journey email, through ``{{ recommendations(3) }}``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from tests.automation.smtp_sink import smtp_sink
from tests.recommend.recsample import AS_OF, load

from kizuna.automation.templates import render
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.ingest.sample import SampleSummary
from kizuna.services import journeys, recommendations
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t
from kizuna.store.recommend_tables import recommendations as rec_table

BIRTHDAY: dict[str, Any] = {
    "name": "birthday-picks",
    "holdout_percent": 0,
    "trigger": {"birthday": {"offset_days": 0}},
    "steps": [
        {"id": "morning", "wait": {"until": "09:00"}},
        {
            "id": "greet",
            "action": "email",
            "subject": "{{ name }}様、お誕生日おめでとうございます",
            "text": "おすすめ: {{ recommendations(3) }}\nランク: {{ tier() or '-' }} "
            "ポイント: {{ points_available() }}\n{{ unsubscribe_url }}",
            "html": "<ul>{% for p in recommendations(3) %}<li data-id='{{ p.product_id }}'>"
            "{{ p.name }}</li>{% endfor %}</ul>",
        },
    ],
}


def tokyo(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(UTC)


def test_birthday_email_lists_each_customers_own_recommendations(
    workspace: Context, rec_sample: SampleSummary
) -> None:
    load(workspace, rec_sample.out_dir)
    recommendations.fit(workspace, AS_OF, with_als=False)
    with workspace.engine.begin() as conn:
        chosen = list(
            conn.execute(
                sa.select(rec_table.c.customer_id)
                .distinct()
                .order_by(rec_table.c.customer_id)
                .limit(3)
            ).scalars()
        )
        conn.execute(t.customers.update().values(birthday=None))
        for n, cid in enumerate(chosen):
            conn.execute(
                t.customers.update()
                .where(t.customers.c.id == cid)
                .values(birthday=date(1990, 4, 1), email=f"pick{n}@example.jp")
            )
        conn.execute(t.consents.delete().where(t.consents.c.customer_id.in_(chosen)))
        for cid in chosen:
            conn.execute(
                t.consents.insert().values(
                    customer_id=cid,
                    channel="email",
                    granted=True,
                    changed_at=tokyo(2024, 1, 1, 0),
                    source="test",
                )  # fmt: skip
            )
        expected = {
            f"pick{n}@example.jp": recommendations.recommendations_for(conn, cid, 3)
            for n, cid in enumerate(chosen)
        }
    uow = UnitOfWork(workspace.engine, workspace.settings)
    journeys.handle_save(journeys.SaveJourney(BIRTHDAY), uow)
    journeys.set_status(
        "birthday-picks", "active", UnitOfWork(workspace.engine, workspace.settings)
    )
    with smtp_sink() as (sink, port):
        settings = replace(workspace.settings, smtp_port=port)
        for at in (tokyo(2025, 4, 1, 0, 30), tokyo(2025, 4, 1, 9, 5)):
            run_worker(Context(settings), once=True, clock=lambda at=at: at, worker_id="w1")
        assert len(sink.messages) == 3
        for address, products in expected.items():
            assert len(products) == 3
            (msg,) = sink.to(address)
            text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
            assert "おすすめ: " + ", ".join(p.name for p in products) in text
            assert "ポイント: 0" in text
            for p in products:
                assert f"data-id='{p.product_id}'" in html or f'data-id="{p.product_id}"' in html
                assert p.name in html
    # Other customers' products do not leak into a message.
    lists = [{p.name for p in ps} for ps in expected.values()]
    assert lists[0] != lists[1] or lists[1] != lists[2]


def test_outside_a_send_the_functions_render_empty_and_stay_sandboxed() -> None:
    import kizuna.automation.recommend_actions  # noqa: F401  (registers the functions)

    assert render("[{{ recommendations(3) }}]", {"id": 1}) == "[]"
    assert render("{{ points_available() }}/{{ points_expiring(30) }}", {}) == "0/0"
