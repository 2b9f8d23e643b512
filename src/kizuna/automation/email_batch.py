"""Email steps of many runs at once: the worker's fast path for campaigns.

The step-by-step runner (:class:`kizuna.automation.runner.Runner`) spends
about ten statements and four transactions on each message, and sends over
one SMTP connection; a birthday or newsletter journey with tens of
thousands of recipients is bound by that, not by the mail server. Here the
email steps due in one claimed batch share their database work and fan out
over several SMTP connections:

1. one transaction reads the runs, customers, consents and ledger rows of
   the whole batch, ledgers the deliberate skips (no consent, no address)
   with their step change, and commits a ``sending`` row per message — the
   same intent record the single path writes before calling out;
2. the messages go out over a pool of SMTP connections (threads; the
   socket waits release the GIL), and each is ledgered ``sent`` the moment
   the server accepts it;
3. one transaction records the step changes: the next step for the sent,
   a retry with backoff for a temporary failure, a dead letter for a
   permanent one.

The guarantees are the single path's: a crash leaves ``sending`` rows only
for messages not yet accepted (or accepted in the instant before the
crash), which the next worker sends with the same Message-ID — at least
once, never silently skipped, and at most one repeat per connection.
Anything unusual — hold-outs, quiet hours, frequency caps, exit goals,
coupon variables, a ledger row left by a crash — goes through the single
path, which knows every rule; this module only takes the common case.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kizuna.automation.actions import ActionContext, PermanentFailure, RetryLater
from kizuna.automation.channels.email import EMAIL, SMTPSender
from kizuna.automation.unsubscribe import unsubscribed_topics
from kizuna.domain.journeys import Journey, in_global_control
from kizuna.errors import KizunaError
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

if TYPE_CHECKING:
    from kizuna.automation.runner import Runner

#: Below this many email steps in a batch the single path is as fast.
MIN_BATCH = 8


@dataclass
class _Mail:
    run: Any
    journey: Journey
    step_id: str
    params: dict[str, Any]
    customer: dict[str, Any]
    key: str
    message: Message | None = None
    error: Exception | None = None


class SMTPPool:
    """Several SMTP connections, one per sending thread, reused across batches."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._local = threading.local()
        self._senders: list[SMTPSender] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="kizuna-smtp")

    def _sender(self) -> SMTPSender:
        sender = getattr(self._local, "sender", None)
        if sender is None:
            sender = SMTPSender()
            self._local.sender = sender
            with self._lock:
                self._senders.append(sender)
        return sender

    def send_all(
        self, settings: Any, mails: Sequence[_Mail], on_sent: Callable[[_Mail], None]
    ) -> None:
        """Send every built message; failures are stored on the mail, never raised.

        ``on_sent`` runs in the sending thread right after the server accepted
        the message, so the ledger says ``sent`` before the next message on
        that connection leaves: a crash can repeat at most the messages in
        flight, one per connection, each with its original Message-ID.
        """

        def one(mail: _Mail) -> None:
            assert mail.message is not None
            try:
                self._sender().send(settings, mail.message)
            except (RetryLater, PermanentFailure) as exc:
                mail.error = exc
                return
            on_sent(mail)

        list(self._executor.map(one, mails))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for sender in self._senders:
                sender.close()
            self._senders.clear()


def _email_params(journey: Journey, step_id: str | None) -> dict[str, Any] | None:
    """The step's parameters when it is a plain email step the fast path may take."""
    if step_id is None or journey.goal_days is not None:
        return None
    step = journey.step(step_id)
    if step.kind != "action" or step.params.get("action") != "email":
        return None
    if any(s.kind == "action" and s.params.get("action") == "issue_coupon" for s in journey.steps):
        return None  # the message may need the run's coupon code
    return dict(step.params)


def send_batch(runner: Runner, run_ids: Iterable[int]) -> tuple[set[int], set[int]]:
    """Take the plain email steps among ``run_ids``.

    Returns the runs it advanced, and among them those with another step
    due right away (which the single path continues). The runs it does not
    return are untouched and go through the single path.
    """
    from kizuna.automation.runner import (
        MAX_ATTEMPTS,
        RunState,
        _begin,
        _commit,
        _quiet_until,
        backoff,
    )
    from kizuna.domain.journeys import zone_of

    ids = list(run_ids)
    if len(ids) < MIN_BATCH or runner.settings.frequency_cap:
        return set(), set()
    r, s, c = at.journey_runs, at.sends, t.customers
    now = runner.clock()
    settings = runner.settings
    mails: list[_Mail] = []
    with runner._connect() as conn:
        _begin(conn)
        runs = conn.execute(
            sa.select(r).where(
                r.c.id.in_(ids),
                r.c.claimed_by == runner.worker,
                r.c.status == "active",
                r.c.due_at <= now,
                r.c.holdout.is_(False),
            )
        ).all()
        journeys: dict[int, Journey] = {}
        for run in runs:
            if run.journey_id not in journeys:
                journeys[run.journey_id] = runner.journey(conn, run.journey_id)
            journey = journeys[run.journey_id]
            params = _email_params(journey, run.step_id)
            if params is None or params.get("transactional"):
                continue
            mails.append(
                _Mail(run, journey, str(run.step_id), params, {}, f"run{run.id}:{run.step_id}")
            )
        if len(mails) < MIN_BATCH:
            _commit(conn)
            return set(), set()
        customer_ids = [m.run.customer_id for m in mails]
        customers = {
            row.id: dict(row._mapping)
            for row in conn.execute(sa.select(c).where(c.c.id.in_(customer_ids)))
        }
        consents = {
            row.customer_id: bool(row.granted)
            for row in conn.execute(
                sa.select(t.consents.c.customer_id, t.consents.c.granted).where(
                    t.consents.c.customer_id.in_(customer_ids), t.consents.c.channel == "email"
                )
            )
        }
        ledgered = {
            (row.customer_id, row.idempotency_key)
            for row in conn.execute(
                sa.select(s.c.customer_id, s.c.idempotency_key).where(
                    s.c.customer_id.in_(customer_ids),
                    s.c.idempotency_key.in_([m.key for m in mails]),
                )
            )
        }
        left_topic: set[tuple[int, str]] = set()
        for topic in {str(m.params["topic"]) for m in mails if m.params.get("topic")}:
            gone = unsubscribed_topics(conn, customer_ids, topic)
            left_topic |= {(cid, topic) for cid in gone}
        taken: list[_Mail] = []
        skipped: list[tuple[_Mail, str]] = []
        for mail in mails:
            mail.customer = customers[mail.run.customer_id]
            if (mail.run.customer_id, mail.key) in ledgered:
                continue  # a crash left a row: the single path resolves it
            if in_global_control(mail.run.customer_id, settings.global_control_percent):
                continue  # ledgered as held out by the single path
            tz = zone_of(mail.customer.get("timezone"), settings.tz)
            if _quiet_until(settings.quiet_hours, now, tz) is not None:
                continue  # held until morning by the single path
            if not consents.get(mail.run.customer_id, False):
                skipped.append((mail, "no email consent at send time"))
            elif not mail.customer.get("email"):
                skipped.append((mail, "no email address"))
            elif (mail.run.customer_id, str(mail.params.get("topic"))) in left_topic:
                skipped.append((mail, f"unsubscribed from topic {mail.params['topic']}"))
            else:
                try:
                    mail.message = EMAIL.compose(
                        ActionContext(
                            conn, settings, mail.run.id, mail.run.journey_id, mail.journey.name,
                            mail.step_id, mail.params, mail.customer, tz, now, mail.key, {},
                        )
                    )  # fmt: skip
                except KizunaError as exc:
                    mail.error = PermanentFailure(str(exc))
                taken.append(mail)
        base = [
            {
                "customer_id": m.run.customer_id, "idempotency_key": m.key, "run_id": m.run.id,
                "journey_id": m.run.journey_id, "step_id": m.step_id, "action": "email",
                "marketing": True, "created_at": now,
            }
            for m in (*taken, *(m for m, _ in skipped))
        ]  # fmt: skip
        reasons = {m.key: reason for m, reason in skipped}
        if base:
            conn.execute(
                sa.insert(s),
                [
                    {
                        **row,
                        "status": "skipped" if row["idempotency_key"] in reasons else "sending",
                        "reason": reasons.get(row["idempotency_key"]),
                        "done_at": now if row["idempotency_key"] in reasons else None,
                    }
                    for row in base
                ],
            )
        states = {m.run.id: _advanced(m, now, RunState) for m, _ in skipped}
        all_states = dict(states)
        _save_states(conn, runner.worker, states, now)
        _commit(conn)  # the intent to send is durable before any message leaves

    def record_sent(mail: _Mail) -> None:
        assert mail.message is not None
        with runner.engine.begin() as conn:
            conn.execute(
                sa.update(s)
                .where(s.c.customer_id == mail.run.customer_id, s.c.idempotency_key == mail.key)
                .values(
                    status="sent",
                    message_id=str(mail.message["Message-ID"]),
                    done_at=runner.clock(),
                )
            )

    runner.smtp_pool().send_all(settings, [m for m in taken if m.message is not None], record_sent)

    done_at = runner.clock()
    with runner._connect() as conn:
        _begin(conn)
        sent = [m for m in taken if m.error is None]
        states = {m.run.id: _advanced(m, now, RunState) for m in sent}
        dead: list[_Mail] = []
        for mail in taken:
            if mail.error is None:
                continue
            state = RunState(
                mail.run.status, mail.run.step_id, mail.run.waiting, mail.run.due_at,
                mail.run.variant, mail.run.attempts + 1, str(mail.error),
            )  # fmt: skip
            if isinstance(mail.error, RetryLater) and state.attempts < MAX_ATTEMPTS:
                state.due_at = now + backoff(state.attempts)
            else:
                state.status, state.due_at = "dead", None
                dead.append(mail)
            states[mail.run.id] = state
        if dead:
            conn.execute(
                sa.update(s)
                .where(
                    s.c.customer_id == sa.bindparam("b_customer"),
                    s.c.idempotency_key == sa.bindparam("b_key"),
                )
                .values(status="dead", reason=sa.bindparam("b_reason"), done_at=done_at),
                [
                    {"b_customer": m.run.customer_id, "b_key": m.key, "b_reason": str(m.error)}
                    for m in dead
                ],
            )
        _save_states(conn, runner.worker, states, now)
        _commit(conn)
    all_states.update(states)
    handled = {m.run.id for m in taken} | {m.run.id for m, _ in skipped}
    more = {
        run_id
        for run_id, state in all_states.items()
        if state.status == "active" and state.due_at is not None and state.due_at <= now
    }
    return handled, more


def _advanced(mail: _Mail, now: datetime, run_state: Any) -> Any:
    state = run_state(
        mail.run.status, mail.run.step_id, mail.run.waiting, mail.run.due_at,
        mail.run.variant, mail.run.attempts,
    )  # fmt: skip
    state.goto(mail.journey.next_after(mail.step_id), now)
    return state


def _save_states(conn: sa.Connection, worker: str, states: dict[int, Any], now: datetime) -> None:
    """Write many runs' new states in one executemany (the single path's ``_save``, batched)."""
    if not states:
        return
    r = at.journey_runs
    conn.execute(
        sa.update(r)
        .where(r.c.id == sa.bindparam("b_id"), r.c.claimed_by == worker)
        .values(
            status=sa.bindparam("b_status"), step_id=sa.bindparam("b_step"),
            waiting=sa.bindparam("b_waiting"), due_at=sa.bindparam("b_due"),
            waiting_since=sa.bindparam("b_since"),
            variant=sa.bindparam("b_variant"), attempts=sa.bindparam("b_attempts"),
            last_error=sa.bindparam("b_error"), finished_at=sa.bindparam("b_finished"),
        ),
        [
            {
                "b_id": run_id, "b_status": st.status, "b_step": st.step_id, "b_waiting": st.waiting, "b_since": st.waiting_since,
                "b_due": st.due_at, "b_variant": st.variant, "b_attempts": st.attempts,
                "b_error": st.last_error, "b_finished": now if st.status != "active" else None,
            }
            for run_id, st in states.items()
        ],
    )  # fmt: skip
