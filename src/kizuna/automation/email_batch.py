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
   socket waits release the GIL), and each is ledgered ``sent`` once the
   server accepts it, before its connection sends the next one — the marks
   of all connections waiting at that moment share one commit;
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
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from kizuna.automation.actions import ActionContext, PermanentFailure, RetryLater
from kizuna.automation.channels.email import EMAIL, OutgoingEmail, SMTPSender, message_id
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
    message: Message | OutgoingEmail | None = None
    error: Exception | None = None
    ledger_id: int = 0


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

    def submit(
        self,
        settings: Any,
        mails: Sequence[_Mail],
        on_sent: Callable[[list[_Mail]], None],
        concurrent: int = 1,
    ) -> list[Future[None]]:
        """Start sending every built message; the futures end when all are handled.

        Failures are stored on the mail, never raised.

        Each connection sends its next message only once the previous one is
        ledgered ``sent`` (``on_sent``, called with every message accepted
        since the last call — a group commit shared by the connections), so
        a crash can repeat at most the messages in flight, one per
        connection, each with its original Message-ID. An error while
        ledgering stops the batch and is raised: the rows stay ``sending``
        and the next pass resends them, at least once. The worker prepares
        its next batch in the database meanwhile (see :class:`EmailBatch`).
        """
        queue = deque(mails)
        threads = min(self.size, len(mails))
        ledger = _GroupCommit(on_sent, threads, concurrent)

        def drain() -> None:
            sender = self._sender()
            try:
                while queue:
                    try:
                        mail = queue.popleft()
                    except IndexError:
                        return
                    assert mail.message is not None
                    try:
                        sender.send(settings, mail.message)
                    except (RetryLater, PermanentFailure) as exc:
                        mail.error = exc
                        continue
                    try:
                        ledger.mark(mail)
                    except BaseException:
                        queue.clear()  # the database failed: send nothing more
                        raise
            finally:
                ledger.leave()

        return [self._executor.submit(drain) for _ in range(threads)]

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for sender in self._senders:
                sender.close()
            self._senders.clear()


class _GroupCommit:
    """Ledger accepted messages of several sending threads in shared transactions.

    A thread that has a message accepted adds it to the open group and
    waits until a transaction containing it has committed. A waiter commits
    the open group once every connection not already waiting on a commit
    has a message in it (none can add more: each waits for its own), or
    after ``linger`` seconds, so one slow connection does not hold the
    others back. Up to ``concurrent`` groups commit at once: on PostgreSQL
    their WAL flushes overlap; SQLite has one writer, so one. One commit
    per message would make the database, not SMTP, the limit.
    """

    def __init__(
        self,
        commit: Callable[[list[_Mail]], None],
        active: int,
        concurrent: int = 1,
        linger: float = 0.002,
    ) -> None:
        self._commit = commit
        self._cond = threading.Condition()
        self._open: list[_Mail] = []
        self._next = 0  # number of the open group
        self._done: set[int] = set()
        self._failed: dict[int, BaseException] = {}
        self._active = active  # sending threads still running
        self._waiting = 0  # of them, those whose message is in a committing group
        self._committing = 0
        self._concurrent = concurrent
        self._linger = linger

    def leave(self) -> None:
        """A sending thread has no more messages: the others no longer wait for it."""
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def mark(self, mail: _Mail) -> None:
        """Return once ``mail`` is committed as sent; raise if its group failed."""
        with self._cond:
            self._open.append(mail)
            mine = self._next
            deadline = time.monotonic() + self._linger
            while mine not in self._done:
                if mine != self._next:  # my group is being committed by its leader
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                free = self._committing < self._concurrent
                if free and (len(self._open) >= self._active - self._waiting or left <= 0):
                    break
                self._cond.wait(max(left, 0.0) if free else None)
            else:
                if mine in self._failed:
                    raise self._failed[mine]
                return
            group, self._open = self._open, []
            self._next += 1
            self._committing += 1
            self._waiting += len(group)
        error: BaseException | None = None
        try:
            self._commit(group)
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._cond:
                if error is not None:
                    self._failed[mine] = error
                self._done.add(mine)
                self._committing -= 1
                self._waiting -= len(group)
                self._cond.notify_all()


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


@dataclass
class EmailBatch:
    """A claimed batch whose ``sending`` rows are committed: phases 2 and 3 still to come.

    The worker keeps one batch on the wire while it prepares the next
    (:meth:`kizuna.automation.runner.Runner.begin_batch`): the SMTP
    connections never wait for the claim, the reads and the ``sending``
    rows of the next batch. Nothing of a batch leaves before its
    ``sending`` rows are committed, so overlapping changes no guarantee; a
    crash with a prepared batch not yet started leaves only ``sending`` rows
    and leases, which expire, and the single path then sends each of those
    messages once with its Message-ID.
    """

    runner: Runner
    now: datetime
    taken: list[_Mail]
    states: dict[int, Any]
    handled: set[int]
    futures: list[Future[None]] | None = None

    def start(self) -> None:
        """Put the batch's messages on the wire (returns at once)."""
        runner = self.runner
        s = at.sends
        if self.futures is not None or not self.taken:
            self.futures = self.futures or []
            return

        postgres = runner.engine.dialect.name == "postgresql"

        def record_sent(group: list[_Mail]) -> None:
            # By primary key. On PostgreSQL one array parameter, so every group
            # size shares one prepared statement; building an OR of key pairs
            # cost ~100 µs of CPU per message.
            ids = [m.ledger_id for m in group]
            where = (
                s.c.id == sa.any_(sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.BigInteger)))
                if postgres
                else s.c.id.in_(ids)
            )
            with runner.engine.begin() as conn:
                conn.execute(
                    sa.update(s).where(where).values(status="sent", done_at=runner.clock())
                )

        # SQLite has one writer; PostgreSQL overlaps the WAL flushes of a few commits.
        concurrent = 1 if runner.engine.dialect.name == "sqlite" else 4
        self.futures = runner.smtp_pool().submit(
            runner.settings,
            [m for m in self.taken if m.message is not None],
            record_sent,
            concurrent,
        )

    def wait(self) -> None:
        """Return once every message is accepted (and ledgered ``sent``) or failed.

        Raises what stopped a connection (a ``sent`` mark the database
        refused), after every connection has stopped.
        """
        self.start()
        assert self.futures is not None
        errors: list[BaseException] = []
        for future in self.futures:
            try:
                future.result()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def finish(self) -> tuple[set[int], set[int]]:
        """Wait for the messages, then record the step changes (phase 3)."""
        from kizuna.automation.runner import MAX_ATTEMPTS, RunState, _begin, _commit, backoff

        self.wait()
        runner, now, taken = self.runner, self.now, self.taken
        s = at.sends
        if not taken:
            return self.handled, _due_again(self.states, now)
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
                    .values(
                        status="dead",
                        reason=sa.bindparam("b_reason"),
                        done_at=done_at,
                        message_id=None,
                    ),
                    [
                        {"b_customer": m.run.customer_id, "b_key": m.key, "b_reason": str(m.error)}
                        for m in dead
                    ],
                )
            _relaxed_commit(conn)
            _save_states(conn, runner.worker, states, now)
            _commit(conn)
        self.states.update(states)
        return self.handled, _due_again(self.states, now)


def _insert_ledger(conn: sa.Connection, rows: list[dict[str, Any]]) -> Any:
    """Insert the batch's ledger rows; returns (idempotency_key, id) of each.

    On PostgreSQL as ``INSERT ... SELECT unnest(:column_array), ...``: one
    short statement with one array per column instead of a multi-row
    ``VALUES`` with 14 parameters per row, which cost SQLAlchemy and psycopg
    tens of µs of CPU per row to render and parse.
    """
    s = at.sends
    returning = (s.c.idempotency_key, s.c.id)
    if conn.dialect.name != "postgresql":
        return conn.execute(sa.insert(s).returning(*returning), rows)
    names = list(rows[0])
    arrays = sa.select(
        *(
            sa.func.unnest(
                sa.bindparam(
                    f"a_{name}", [row[name] for row in rows], postgresql.ARRAY(s.c[name].type)
                )
            )
            for name in names
        )
    )
    return conn.execute(sa.insert(s).from_select(names, arrays).returning(*returning))


def _due_again(states: dict[int, Any], now: datetime) -> set[int]:
    return {
        run_id
        for run_id, state in states.items()
        if state.status == "active" and state.due_at is not None and state.due_at <= now
    }


def _relaxed_commit(conn: sa.Connection) -> None:
    """On PostgreSQL, let this transaction's commit return before its WAL flush.

    Only for writes whose loss in a database crash can neither repeat nor
    lose a message: the lease of a claim, and the step changes after
    ``sent`` marks, which themselves always commit synchronously (a later
    synchronous commit flushes all WAL before it). Lost step changes leave
    the runs on a step whose ledger row says ``sent``; the next worker moves
    them on without sending. Saves a ~3 ms flush per batch.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def prepare_batch(runner: Runner, run_ids: Iterable[int]) -> EmailBatch:
    """Phase 1 for the plain email steps among ``run_ids``; an empty batch when none fit."""
    from kizuna.automation.runner import RunState, _begin, _commit, _quiet_until
    from kizuna.domain.journeys import zone_of

    ids = list(run_ids)
    now = runner.clock()
    if len(ids) < MIN_BATCH or runner.settings.frequency_cap:
        return EmailBatch(runner, now, [], {}, set())
    r, s, c = at.journey_runs, at.sends, t.customers
    settings = runner.settings
    mails: list[_Mail] = []
    with runner._connect() as conn:
        _begin(conn)
        # By primary key only, the rest checked here: given ``status`` and
        # ``due_at`` too, SQLite walks the (status, due_at) index over every
        # due run of the campaign instead.
        runs = [
            run
            for run in conn.execute(sa.select(r).where(r.c.id.in_(ids)))
            if run.claimed_by == runner.worker
            and run.status == "active"
            and run.due_at is not None
            and run.due_at <= now
            and not run.holdout
        ]
        journeys: dict[int, Journey] = {}
        steps: dict[tuple[int, str | None], dict[str, Any] | None] = {}
        for run in runs:
            if run.journey_id not in journeys:
                journeys[run.journey_id] = runner.journey(conn, run.journey_id)
            journey = journeys[run.journey_id]
            if (run.journey_id, run.step_id) not in steps:
                steps[run.journey_id, run.step_id] = _email_params(journey, run.step_id)
            params = steps[run.journey_id, run.step_id]
            if params is None or params.get("transactional"):
                continue
            mails.append(
                _Mail(run, journey, str(run.step_id), params, {}, f"run{run.id}:{run.step_id}")
            )
        if len(mails) < MIN_BATCH:
            _commit(conn)
            return EmailBatch(runner, now, [], {}, set())
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
                except (KizunaError, PermanentFailure) as exc:
                    mail.error = PermanentFailure(str(exc))
                taken.append(mail)
        # A ``sending`` row carries the Message-ID its message will have (derived
        # from the key), so marking it sent is one statement for a whole group.
        rows = [
            {
                "customer_id": m.run.customer_id, "idempotency_key": m.key, "run_id": m.run.id,
                "journey_id": m.run.journey_id, "step_id": m.step_id, "action": "email",
                "marketing": True, "created_at": now, "status": "sending", "reason": None,
                "done_at": None, "message_id": None if m.message is None else message_id(m.message),
            }
            for m in taken
        ] + [
            {
                "customer_id": m.run.customer_id, "idempotency_key": m.key, "run_id": m.run.id,
                "journey_id": m.run.journey_id, "step_id": m.step_id, "action": "email",
                "marketing": True, "created_at": now, "status": "skipped", "reason": reason,
                "done_at": now, "message_id": None,
            }
            for m, reason in skipped
        ]  # fmt: skip
        if rows:
            # The ids let each ``sent`` mark find its rows by primary key.
            ledger_ids = {str(row[0]): int(row[1]) for row in _insert_ledger(conn, rows)}
            for mail in taken:
                mail.ledger_id = ledger_ids[mail.key]
        states = {m.run.id: _advanced(m, now, RunState) for m, _ in skipped}
        _save_states(conn, runner.worker, states, now)
        _commit(conn)  # the intent to send is durable before any message leaves
    handled = {m.run.id for m in taken} | {m.run.id for m, _ in skipped}
    return EmailBatch(runner, now, taken, states, handled)


def _advanced(mail: _Mail, now: datetime, run_state: Any) -> Any:
    state = run_state(
        mail.run.status, mail.run.step_id, mail.run.waiting, mail.run.due_at,
        mail.run.variant, mail.run.attempts,
    )  # fmt: skip
    state.goto(mail.journey.next_after(mail.step_id), now)
    return state


def _save_states(conn: sa.Connection, worker: str, states: dict[int, Any], now: datetime) -> None:
    """Write many runs' new states, and give back the leases of those not due again now.

    A campaign moves hundreds of runs to the same next state, so there is
    one ``UPDATE ... WHERE id IN (...)`` per distinct state rather than one
    per run (an executemany costs a server round of parse, plan and execute
    per row on PostgreSQL). Folding the lease release in saves the separate
    release statement the single path needs.
    """
    r = at.journey_runs
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for run_id, st in states.items():
        again = st.status == "active" and st.due_at is not None and st.due_at <= now
        values = (
            st.status, st.step_id, st.waiting, st.due_at, st.waiting_since, st.variant,
            st.attempts, st.last_error, not again,
        )  # fmt: skip
        groups[values].append(run_id)
    for values, ids in groups.items():
        status, step, waiting, due, since, variant, attempts, error, release = values
        lease: dict[str, Any] = {"claimed_by": None, "claimed_until": None} if release else {}
        for start in range(0, len(ids), 1000):
            conn.execute(
                sa.update(r)
                .where(r.c.id.in_(sorted(ids)[start : start + 1000]), r.c.claimed_by == worker)
                .values(
                    status=status, step_id=step, waiting=waiting, due_at=due,
                    waiting_since=since, variant=variant, attempts=attempts, last_error=error,
                    finished_at=now if status != "active" else None, **lease,
                )
            )  # fmt: skip
