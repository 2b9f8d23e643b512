"""Journey actions through the programme engine: grant_points and issue_coupon, exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.automation import runner as runner_mod
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.journeys import in_holdout
from kizuna.domain.programme import parse_programme
from kizuna.errors import JourneyError
from kizuna.services import journeys
from kizuna.services.programme import config
from kizuna.services.programme.checks import check_all
from kizuna.services.programme.journey_effects import JourneyGrant, grant_points
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

NOW = datetime(2026, 4, 1, 10, tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(UTC)
N = 20
GIFT: dict[str, Any] = {
    "name": "birthday-gift",
    "holdout_percent": 30,
    "trigger": {"birthday": {}},
    "steps": [
        {"id": "gift", "action": "grant_points", "points": 500, "reason": "birthday gift"},
        {"id": "bonus", "action": "grant_points", "reward": "review"},
        {
            "id": "coupon",
            "action": "issue_coupon",
            "kind": "percent",
            "value": 10,
            "valid_days": 14,
            "min_spend": 3000,
        },  # fmt: skip
        {"id": "tell", "action": "create_task", "title": "Give {{ coupon_code }} to {{ name }}"},
    ],
}


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


@pytest.fixture
def ws(workspace: Context) -> Context:
    config.forget_cache()
    with workspace.engine.begin() as conn:
        for n in range(N):
            add(conn, t.customers, external_id=f"g{n}", name=f"顧客{n}",
                birthday=date(1990, 4, 1))  # fmt: skip
    with uow(workspace) as u:
        config.apply_programme(u, parse_programme({"actions": {"review": 50}}), "test")
        u.commit()
    return workspace


def start(ctx: Context, doc: dict[str, Any]) -> None:
    journeys.handle_save(journeys.SaveJourney(doc), uow(ctx))
    journeys.set_status(doc["name"], "active", uow(ctx))


def work(ctx: Context, at: datetime = NOW) -> None:
    run_worker(ctx, once=True, clock=lambda: at, worker_id="w1")


def ledger(ctx: Context) -> dict[str, list[tuple[str, int, str]]]:
    e, c = pt.ledger_entries.c, t.customers.c
    out: dict[str, list[tuple[str, int, str]]] = {}
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.external_id, e.kind, e.available, e.reason)
            .join(t.customers, c.id == e.customer_id)
            .order_by(e.id)
        )
        for r in rows:
            out.setdefault(r.external_id, []).append((r.kind, r.available, r.reason))
    return out


def coupons_by_member(ctx: Context) -> dict[str, list[Any]]:
    cp, c = pt.coupons.c, t.customers.c
    out: dict[str, list[Any]] = {}
    with ctx.engine.connect() as conn:
        for r in conn.execute(
            sa.select(c.external_id, pt.coupons).join(t.customers, c.id == cp.customer_id)
        ):
            out.setdefault(r.external_id, []).append(r)
    return out


def split(ctx: Context) -> tuple[set[str], set[str]]:
    with ctx.engine.connect() as conn:
        rows = list(conn.execute(sa.select(t.customers.c.id, t.customers.c.external_id)))
    held = {r.external_id for r in rows if in_holdout(r.id, GIFT["name"], 30)}
    return {r.external_id for r in rows} - held, held


def test_grant_and_coupon_happen_exactly_once_across_passes_and_holdouts_get_nothing(
    ws: Context,
) -> None:
    start(ws, GIFT)
    work(ws)
    work(ws)  # a second pass (a retry, another worker) finds every step done
    treated, held = split(ws)
    assert treated and held
    entries, issued = ledger(ws), coupons_by_member(ws)
    assert set(entries) == treated and set(issued) == treated
    for member in treated:
        assert entries[member] == [
            ("adjust", 500, "birthday gift"),
            ("earn", 50, f"reward for review (run{_run_id(ws, member)}:bonus)"),
        ]
        (coupon,) = issued[member]
        assert (coupon.kind, coupon.value, coupon.min_spend, coupon.max_uses) == (
            "percent", 10, 3000, 1,
        )  # fmt: skip
        assert coupon.valid_until == NOW + timedelta(days=14)
    with ws.engine.connect() as conn:
        e = pt.ledger_entries.c
        actors = set(conn.execute(sa.select(e.actor).where(e.kind == "adjust")).scalars())
        tasks = list(conn.execute(sa.select(at.journey_tasks.c.title)))
        runs = list(conn.execute(sa.select(at.journey_runs.c.status).distinct()).scalars())
    assert actors == {"journey:birthday-gift"}
    codes = {c.code for rows in issued.values() for c in rows}
    assert len(tasks) == len(treated) and all(row.title.split()[1] in codes for row in tasks)
    assert runs == ["completed"]
    with uow(ws) as u:
        assert check_all(u) == []


def _run_id(ctx: Context, member: str) -> int:
    r, c = at.journey_runs.c, t.customers.c
    with ctx.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(r.id)
                .join(t.customers, c.id == r.customer_id)
                .where(c.external_id == member)
            ).scalar_one()
        )


def test_a_crash_before_the_step_commits_leaves_no_grant_and_the_retry_grants_once(
    ws: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(ws, {**GIFT, "holdout_percent": 0})
    real = runner_mod._ledger_status
    calls = {"n": 0}

    def crash_once(outcome: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("power cut after the grant, before the commit")
        return real(outcome)

    monkeypatch.setattr(runner_mod, "_ledger_status", crash_once)
    with pytest.raises(RuntimeError):
        work(ws)
    assert ledger(ws) == {}  # the grant rolled back with its step
    work(ws, NOW + timedelta(minutes=6))  # the dead worker's other leases have expired
    entries = ledger(ws)
    assert len(entries) == N
    assert all([k for k, _, _ in rows] == ["adjust", "earn"] for rows in entries.values())
    assert all(len(rows) == 1 for rows in coupons_by_member(ws).values())
    with uow(ws) as u:
        assert check_all(u) == []


def test_the_programme_idempotency_key_replays_a_repeated_grant(ws: Context) -> None:
    grant = JourneyGrant("g0", "run999:gift", "journey:x", "gift", points=70)
    for _ in range(2):
        with ws.engine.begin() as conn:
            body = grant_points(conn, ws.settings, grant, NOW)
            assert body["balance"]["available"] == 70
    assert [k for k, _, _ in ledger(ws)["g0"]] == ["adjust"]


def test_a_grant_the_programme_refuses_sends_the_run_to_the_dead_letter_list(ws: Context) -> None:
    doc = {**GIFT, "name": "unknown-reward", "holdout_percent": 0,
           "steps": [{"id": "bonus", "action": "grant_points", "reward": "survey"}]}  # fmt: skip
    start(ws, doc)
    work(ws)
    with ws.engine.connect() as conn:
        rows = list(conn.execute(sa.select(at.sends.c.status, at.sends.c.reason)))
    assert len(rows) == N and {r.status for r in rows} == {"dead"}
    assert "does not reward 'survey'" in rows[0].reason
    assert ledger(ws) == {}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"action": "grant_points"}, "either points"),
        ({"action": "grant_points", "points": 5, "reward": "review"}, "either points"),
        ({"action": "grant_points", "points": 0, "reason": "x"}, "between 1"),
        ({"action": "grant_points", "points": 5}, "reason"),
        ({"action": "grant_points", "reward": "dance"}, "custom:<name>"),
        ({"action": "issue_coupon", "kind": "percent", "value": 150}, "1 to 100"),
        ({"action": "issue_coupon", "kind": "gift", "value": 1}, "coupon kind"),
        ({"action": "issue_coupon", "kind": "fixed", "value": 500, "valid_days": 0}, "valid_days"),
        ({"action": "email", "subject": "{{ coupon_code }}", "text": "x"}, "no issue_coupon"),
    ],
)
def test_bad_programme_steps_are_refused_before_activation(
    step: dict[str, Any], message: str
) -> None:
    doc = {"name": "bad", "trigger": {"birthday": {}}, "steps": [{"id": "s", **step}]}
    with pytest.raises(JourneyError, match=message):
        runner_mod.parse(doc)
