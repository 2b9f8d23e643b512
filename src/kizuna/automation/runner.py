"""The journey runner: enrol customers, claim due runs, advance them step by step.

Durability comes from rows, not memory: a run's current step and due time
live in ``journey_runs``; a worker *claims* due runs by writing a lease
(``claimed_by``/``claimed_until``) in a short transaction — ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL so workers never wait on each other, ``BEGIN
IMMEDIATE`` on SQLite, which has a single writer anyway. A worker that dies
simply lets its leases expire and another picks the runs up.

Effects and the send ledger (``sends``, unique per customer and
``run<id>:<step>``):

* internal actions (set an attribute, create a task) run in the same
  transaction as the step change and its ledger row: exactly once;
* external actions (email, webhook) first commit a ``sending`` row, then
  call out, then commit ``sent`` with the step change. A retry finds the
  ``sent`` row and moves on, so it never sends twice; the one ambiguous case
  — the process dies after the server accepted the message and before
  ``sent`` was committed — is resent with the same Message-ID /
  Idempotency-Key (at least once, never silently skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kizuna.automation.actions import (
    ACTIONS,
    ActionContext,
    Outcome,
    PermanentFailure,
    RetryLater,
    get_action,
)
from kizuna.automation.segments_sql import CompileContext, compile_rule
from kizuna.config import Settings
from kizuna.domain.journeys import (
    Journey,
    choose_branch,
    in_global_control,
    parse_journey,
    wait_until,
    zone_of,
)
from kizuna.errors import JourneyError, KizunaError
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

MAX_ATTEMPTS = 5
MAX_STEPS_PER_TURN = 64
LEASE = timedelta(minutes=5)


def load_plugins() -> None:
    """Import the channel plugins and every ``automation/*_actions`` module so their actions are registered."""
    from kizuna.automation import _import_modules
    from kizuna.automation.channels import email, webhook  # noqa: F401

    _import_modules("_actions")


def parse(doc: Any) -> Journey:
    """A validated journey, every action step checked by its own plugin."""
    load_plugins()
    journey = parse_journey(doc, set(ACTIONS))
    for i, step in enumerate(journey.steps):
        if step.kind == "action":
            get_action(step.params["action"]).validate(step.params, f"/steps/{i}")
    _check_coupon_code(journey)
    return journey


#: Actions whose ``message_id`` later steps of the same run see, under this name.
RUN_VARIABLES = {"issue_coupon": "coupon_code"}


def _check_coupon_code(journey: Journey) -> None:
    """``{{ coupon_code }}`` needs an ``issue_coupon`` step; refuse the journey up front."""
    actions = [s.params for s in journey.steps if s.kind == "action"]
    if any(p["action"] == "issue_coupon" for p in actions):
        return
    for i, step in enumerate(journey.steps):
        if step.kind == "action" and any(
            isinstance(v, str) and "coupon_code" in v for v in step.params.values()
        ):
            raise JourneyError(
                f"journey /steps/{i}: uses coupon_code but no issue_coupon step issues one; "
                "add an issue_coupon step before it"
            )


def run_variables(conn: sa.Connection, run_id: int, journey: Journey) -> dict[str, Any]:
    """What earlier action steps of this run produced: ``coupon_code`` is the latest coupon."""
    wanted = {
        s.params["action"]
        for s in journey.steps
        if s.kind == "action" and s.params["action"] in RUN_VARIABLES
    }
    if not wanted:
        return {}
    s = at.sends
    rows = conn.execute(
        sa.select(s.c.action, s.c.message_id)
        .where(
            s.c.run_id == run_id,
            s.c.action.in_(sorted(wanted)),
            s.c.status == "sent",
            s.c.message_id.is_not(None),
        )
        .order_by(s.c.id)
    )
    return {RUN_VARIABLES[row.action]: row.message_id for row in rows}


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes, capped at 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


# --- claiming -------------------------------------------------------------------


def claim_candidates(now: datetime, batch: int) -> sa.Select[Any]:
    """The first ``batch`` due, unleased runs of active journeys, in claim order.

    Journey priority arbitrates among steps due at the same moment: the more
    important journey takes the frequency-cap slot first. The order uses the
    run's copy of the priority, so ``ix_journey_runs_claim`` (status, due_at,
    priority, id) yields the rows in order and the database stops after
    ``batch`` of them; ordering by ``journeys.priority`` sorted every due run
    on each claim.

    Runs of paused (or draft) journeys are filtered by ``NOT IN`` over the
    few such journeys rather than a join: with a join, PostgreSQL — when
    its statistics still predate a large enrolment, as right after one —
    drives the scan from ``journeys`` through the ``journey_id`` index and
    sorts again; the ``NOT IN`` (a hashed sub-plan) leaves it the index.
    """
    r, j = at.journey_runs, at.journeys
    return (
        sa.select(r.c.id)
        .where(
            r.c.status == "active",
            r.c.due_at <= now,
            sa.or_(r.c.claimed_until.is_(None), r.c.claimed_until < now),
            r.c.journey_id.not_in(sa.select(j.c.id).where(j.c.status != "active")),
        )
        .order_by(r.c.due_at, r.c.priority, r.c.id)
        .limit(batch)
    )


def claim(
    engine: sa.Engine, worker: str, now: datetime, batch: int = 100, lease: timedelta = LEASE
) -> list[int]:
    """Lease up to ``batch`` due runs to ``worker`` and return their ids."""
    r = at.journey_runs
    candidates = claim_candidates(now, batch)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # A lease lost in a database crash sends nothing twice: every
            # message's ``sending`` row commits synchronously (flushing this
            # too) before it leaves. So the claim does not wait for its flush.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            ids = list(conn.execute(candidates.with_for_update(of=r, skip_locked=True)).scalars())
            if ids:
                conn.execute(
                    sa.update(r)
                    .where(r.c.id.in_(ids))
                    .values(claimed_by=worker, claimed_until=now + lease)
                )
            return ids
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            ids = list(conn.execute(candidates).scalars())
            if ids:
                conn.execute(
                    sa.update(r)
                    .where(r.c.id.in_(ids))
                    .values(claimed_by=worker, claimed_until=now + lease)
                )
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        return ids


# --- one run --------------------------------------------------------------------


@dataclass
class RunState:
    """The mutable part of a run row while a worker advances it."""

    status: str
    step_id: str | None
    waiting: bool
    due_at: datetime | None
    variant: str | None
    attempts: int
    last_error: str | None = None
    waiting_since: datetime | None = None

    def goto(self, step_id: str | None, now: datetime) -> None:
        self.waiting, self.attempts, self.last_error = False, 0, None
        self.waiting_since = None
        if step_id is None:
            self.status, self.step_id, self.due_at = "completed", None, None
        else:
            self.step_id, self.due_at = step_id, now


@dataclass
class ClaimedBatch:
    """Claimed run ids and the prepared email part of them (an ``EmailBatch``)."""

    run_ids: list[int]
    batch: Any


class Runner:
    """Advances claimed runs; holds per-worker caches (journeys, the SMTP connection)."""

    def __init__(
        self, engine: sa.Engine, settings: Settings, worker: str, clock: Callable[[], datetime]
    ) -> None:
        load_plugins()
        self.engine, self.settings, self.worker, self.clock = engine, settings, worker, clock
        self._journeys: dict[int, tuple[str, Journey]] = {}
        self._pool: Any = None

    def smtp_pool(self) -> Any:
        """The worker's parallel SMTP connections (see :mod:`kizuna.automation.email_batch`)."""
        if self._pool is None:
            from kizuna.automation.email_batch import SMTPPool

            self._pool = SMTPPool(self.settings.smtp_connections)
        return self._pool

    def close(self) -> None:
        """Close the SMTP connections this runner opened."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def process_batch(self, run_ids: list[int], stopping: Callable[[], bool]) -> None:
        """Advance a claimed batch: plain email steps together, everything else one by one."""
        pending = self.begin_batch(run_ids)
        pending.batch.start()
        self.end_batch(pending, stopping)

    def begin_batch(self, run_ids: list[int]) -> ClaimedBatch:
        """Prepare a claimed batch's plain email steps (their ``sending`` rows are committed).

        Nothing is sent yet: ``batch.start()`` puts the messages on the wire
        and :meth:`end_batch` finishes the batch. The worker prepares the
        next batch while the previous one is sending.
        """
        from kizuna.automation.email_batch import prepare_batch

        return ClaimedBatch(run_ids, prepare_batch(self, run_ids))

    def end_batch(self, pending: ClaimedBatch, stopping: Callable[[], bool]) -> None:
        """Wait for the batch's messages, record them, then take the other runs one by one."""
        done, more = pending.batch.finish()
        run_ids = pending.run_ids
        for run_id in run_ids:
            if stopping():
                break
            # A run whose email went out may have more to do now (a branch, a
            # second action); the single path continues it and releases it.
            # The batch path gave back the leases of the others with their new state.
            if run_id not in done or run_id in more:
                self.process(run_id)

    def journey(self, conn: sa.Connection, journey_id: int) -> Journey:
        row = conn.execute(
            sa.select(at.journeys.c.definition, at.journeys.c.updated_at).where(
                at.journeys.c.id == journey_id
            )
        ).one()
        stamp = row.updated_at.isoformat()
        cached = self._journeys.get(journey_id)
        if cached is None or cached[0] != stamp:
            cached = (stamp, parse(row.definition))
            self._journeys[journey_id] = cached
        return cached[1]

    def process(self, run_id: int) -> None:
        """Advance one run until it waits, finishes or needs another turn."""
        try:
            for _ in range(MAX_STEPS_PER_TURN):
                if not self._turn(run_id):
                    break
        finally:
            self.release(run_id)

    def _connect(self) -> sa.Connection:
        if self.engine.dialect.name == "sqlite":
            # Transactions are begun by hand as BEGIN IMMEDIATE (see _begin).
            return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self.engine.connect()

    def release(self, run_id: int) -> None:
        """Give the lease back, so a deferred or waiting run is free for any worker when due."""
        r = at.journey_runs
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(r)
                .where(r.c.id == run_id, r.c.claimed_by == self.worker)
                .values(claimed_by=None, claimed_until=None)
            )

    def _turn(self, run_id: int) -> bool:
        """One transaction's worth of progress; True when the run should continue now."""
        r = at.journey_runs
        now = self.clock()
        with self._connect() as conn:
            _begin(conn)
            run = conn.execute(
                sa.select(r).where(
                    r.c.id == run_id, r.c.claimed_by == self.worker, r.c.status == "active"
                )
            ).one_or_none()
            if run is None or run.due_at is None or run.due_at > now:
                return False
            journey = self.journey(conn, run.journey_id)
            customer = dict(
                conn.execute(sa.select(t.customers).where(t.customers.c.id == run.customer_id))
                .one()
                ._mapping
            )
            tz = zone_of(customer.get("timezone"), self.settings.tz)
            state = RunState(
                run.status, run.step_id, run.waiting, run.due_at, run.variant, run.attempts,
                waiting_since=run.waiting_since,
            )  # fmt: skip
            if journey.goal_days is not None and _converted(
                conn, run.customer_id, run.started_at, now
            ):
                state.status, state.due_at = "exited", None
                self._save(conn, run, state, now)
                return False
            assert state.step_id is not None
            step = journey.step(state.step_id)
            more = True
            if step.kind == "wait" and "event" in step.params:
                more = self._wait_for_event(
                    conn, run, journey, step.id, step.params, state, now, tz
                )
            elif step.kind == "wait":
                if state.waiting:
                    state.goto(journey.next_after(step.id), now)
                else:
                    state.waiting, state.due_at = True, wait_until(step.params, now, tz)
                    more = state.due_at <= now
            elif step.kind == "exit":
                state.status, state.step_id, state.due_at = "completed", None, None
            elif step.kind == "branch":
                assert step.condition is not None
                ok = conn.execute(
                    sa.select(
                        sa.exists().where(
                            t.customers.c.id == run.customer_id,
                            compile_rule(
                                step.condition,
                                CompileContext(now, self.settings.tz, conn.dialect.name),
                            ),
                        )
                    )
                ).scalar_one()
                state.goto(step.then if ok else step.otherwise, now)
            elif step.kind == "split":
                target = choose_branch(step, run.customer_id, journey.name)
                state.variant = target if state.variant is None else f"{state.variant}/{target}"
                state.goto(target, now)
            else:
                return self._action(
                    conn, run, journey, step.id, step.params, customer, tz, state, now
                )
            self._save(conn, run, state, now)
            return more and state.status == "active"

    def _wait_for_event(
        self,
        conn: sa.Connection,
        run: Any,
        journey: Journey,
        step_id: str,
        params: Mapping[str, Any],
        state: RunState,
        now: datetime,
        tz: ZoneInfo,
    ) -> bool:
        """Wait until the customer does ``params['event']``, at most until the limit.

        The run sleeps until its deadline; :func:`kizuna.services.journeys.wake_event_waits`
        makes it due early when the event arrives. Either way the decision is
        taken here, from the rows: the event since the wait began → the next
        step; none, and the deadline has passed → the ``timeout`` step.
        """
        if not state.waiting:
            state.waiting, state.waiting_since = True, now
            state.due_at = wait_until(params, now, tz)
            return state.due_at <= now
        since = state.waiting_since or run.started_at
        if event_since(conn, str(params["event"]), run.customer_id, since, now):
            state.goto(journey.next_after(step_id), now)
            return True
        deadline = wait_until(params, since, tz)
        if now >= deadline:
            state.goto(params.get("timeout") or journey.next_after(step_id), now)
            return True
        state.due_at = deadline
        return False

    def _action(
        self,
        conn: sa.Connection,
        run: Any,
        journey: Journey,
        step_id: str,
        params: Mapping[str, Any],
        customer: dict[str, Any],
        tz: ZoneInfo,
        state: RunState,
        now: datetime,
    ) -> bool:
        s = at.sends
        action = get_action(params["action"])
        key = f"run{run.id}:{step_id}"
        marketing = action.marketing and not params.get("transactional", False)
        ledger = conn.execute(
            sa.select(s.c.status).where(
                s.c.customer_id == run.customer_id, s.c.idempotency_key == key
            )
        ).scalar_one_or_none()
        if ledger in ("sent", "skipped", "holdout", "dead"):
            state.goto(journey.next_after(step_id), now)  # done before a crash: never twice
            self._save(conn, run, state, now)
            return state.status == "active"
        base = {
            "customer_id": run.customer_id, "idempotency_key": key, "run_id": run.id,
            "journey_id": run.journey_id, "step_id": step_id, "action": action.name,
            "marketing": marketing, "created_at": now,
        }  # fmt: skip
        control = marketing and in_global_control(
            run.customer_id, self.settings.global_control_percent
        )
        if ledger is None and (run.holdout or control):
            reason = "global control group" if control and not run.holdout else None
            conn.execute(sa.insert(s).values(**base, status="holdout", reason=reason, done_at=now))
            state.goto(journey.next_after(step_id), now)
            self._save(conn, run, state, now)
            return state.status == "active"
        if ledger is None and marketing:
            quiet = _quiet_until(self.settings.quiet_hours, now, tz)
            capped = (
                None
                if quiet
                else _capped_until(conn, self.settings.frequency_cap, run.customer_id, now)
            )
            if capped is not None and params.get("when_capped") == "skip":
                conn.execute(
                    sa.insert(s).values(
                        **base, status="skipped", reason="frequency cap", done_at=now
                    )
                )
                state.goto(journey.next_after(step_id), now)
                self._save(conn, run, state, now)
                return state.status == "active"
            if quiet or capped:
                state.due_at = quiet or capped  # held, never dropped
                self._save(conn, run, state, now)
                return False
        ctx = ActionContext(
            conn,
            self.settings,
            run.id,
            run.journey_id,
            journey.name,
            step_id,
            params,
            customer,
            tz,
            now,
            key,
            run_variables(conn, run.id, journey),
        )
        if not action.external:
            try:
                outcome = action.perform(ctx)
            except (PermanentFailure, KizunaError) as exc:
                # Nothing of the effect survives the rollback; the reason goes to the
                # dead-letter list instead of stopping the worker.
                _restart(conn)
                conn.execute(
                    sa.insert(s).values(**base, status="dead", reason=str(exc), done_at=now)
                )
                state.status, state.due_at, state.last_error = "dead", None, str(exc)
                self._save(conn, run, state, now)
                return False
            conn.execute(
                sa.insert(s).values(
                    **base,
                    status=_ledger_status(outcome),
                    reason=outcome.reason or None,
                    message_id=outcome.message_id,
                    done_at=now,
                )
            )
            state.goto(journey.next_after(step_id), now)
            self._save(conn, run, state, now)
            return state.status == "active"
        if ledger is None:
            conn.execute(sa.insert(s).values(**base, status="sending"))
        # Commit the intent before calling out, then record the result.
        _commit(conn)
        try:
            outcome = action.perform(ctx)
        except RetryLater as exc:
            _restart(conn)
            state.attempts += 1
            state.last_error = str(exc)
            if state.attempts >= MAX_ATTEMPTS:
                self._dead(conn, run, key, str(exc), state, now)
            else:
                state.due_at = now + backoff(state.attempts)
                self._save(conn, run, state, now)
            return False
        except (PermanentFailure, KizunaError) as exc:
            _restart(conn)
            self._dead(conn, run, key, str(exc), state, now)
            return False
        _restart(conn)
        if outcome.status == "deferred":
            state.due_at = outcome.until
            conn.execute(
                sa.delete(s).where(s.c.customer_id == run.customer_id, s.c.idempotency_key == key)
            )
            self._save(conn, run, state, now)
            return False
        conn.execute(
            sa.update(s)
            .where(s.c.customer_id == run.customer_id, s.c.idempotency_key == key)
            .values(
                status=_ledger_status(outcome),
                reason=outcome.reason or None,
                message_id=outcome.message_id,
                done_at=self.clock(),
            )
        )
        state.goto(journey.next_after(step_id), now)
        self._save(conn, run, state, now)
        return state.status == "active"

    def _dead(
        self, conn: sa.Connection, run: Any, key: str, reason: str, state: RunState, now: datetime
    ) -> None:
        s = at.sends
        conn.execute(
            sa.update(s)
            .where(s.c.customer_id == run.customer_id, s.c.idempotency_key == key)
            .values(status="dead", reason=reason, done_at=now)
        )
        state.status, state.due_at, state.last_error = "dead", None, reason
        self._save(conn, run, state, now)

    def _save(self, conn: sa.Connection, run: Any, state: RunState, now: datetime) -> None:
        r = at.journey_runs
        finished = now if state.status != "active" else None
        conn.execute(
            sa.update(r)
            .where(r.c.id == run.id, r.c.claimed_by == self.worker)
            .values(
                status=state.status, step_id=state.step_id, waiting=state.waiting, due_at=state.due_at,
                waiting_since=state.waiting_since,
                variant=state.variant, attempts=state.attempts, last_error=state.last_error,
                finished_at=finished,
            )
        )  # fmt: skip
        _commit(conn)


def event_since(
    conn: sa.Connection, event: str, customer_id: int, since: datetime, now: datetime
) -> bool:
    """Whether the customer did ``event`` after ``since`` (and not after ``now``)."""
    from kizuna.services.journeys import event_source

    source, _, when, where = event_source(event)
    return bool(
        conn.execute(
            sa.select(
                sa.exists().where(
                    source.c.customer_id == customer_id, when > since, when <= now, *where
                )
            )
        ).scalar_one()
    )


def _begin(conn: sa.Connection) -> None:
    """Start a step's transaction; on SQLite take the write lock up front.

    A deferred SQLite transaction that reads and then writes fails at once
    (SQLITE_BUSY_SNAPSHOT, no waiting) if another process — a second worker,
    an import, the dashboard — wrote in between; BEGIN IMMEDIATE waits for
    the single writer instead.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _commit(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("COMMIT")
    else:
        conn.commit()


def _restart(conn: sa.Connection) -> None:
    """Drop whatever the call-out read and begin the transaction that records its result."""
    if conn.dialect.name == "sqlite":
        if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("ROLLBACK")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.rollback()


def _ledger_status(outcome: Outcome) -> str:
    return "skipped" if outcome.status == "skipped" else "sent"


def _converted(conn: sa.Connection, customer_id: int, since: datetime, now: datetime) -> bool:
    o = t.orders
    return bool(
        conn.execute(
            sa.select(sa.exists().where(
                o.c.customer_id == customer_id, o.c.status == "completed", o.c.ordered_at > since, o.c.ordered_at <= now
            ))
        ).scalar_one()
    )  # fmt: skip


def _quiet_until(quiet_hours: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet period if ``now`` falls inside it (local time of the customer)."""
    if not quiet_hours:
        return None
    start_s, _, end_s = quiet_hours.partition("-")
    start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return wait_until(
        {"until": end.isoformat("minutes")},
        datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC),
        tz,
    )


def _capped_until(
    conn: sa.Connection, cap: str, customer_id: int, now: datetime
) -> datetime | None:
    """When the next marketing message fits under the cap, or None if it fits now."""
    if not cap:
        return None
    limit_s, _, days_s = cap.partition("/")
    limit, period = int(limit_s), timedelta(days=int(days_s))
    s = at.sends
    recent = list(
        conn.execute(
            sa.select(s.c.done_at)
            .where(
                s.c.customer_id == customer_id,
                s.c.marketing.is_(True),
                s.c.status == "sent",
                s.c.done_at > now - period,
            )
            .order_by(s.c.done_at.desc())
        ).scalars()
    )
    if len(recent) < limit:
        return None
    return recent[limit - 1] + period
