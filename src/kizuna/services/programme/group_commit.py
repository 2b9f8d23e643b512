"""Group commit for the till's earn calls (request coalescing).

Why: an earn call alone is three statements, but it pays for a transaction of
its own — BEGIN, COMMIT with its WAL flush, a pooled connection and a hand-off
to a worker thread — and on two cores those per-call costs are a large share
of what a till can do per second. Here concurrent calls of one process wait
in a queue; one writer thread takes everything that queued while the previous
group was being written (up to :data:`MAX_GROUP`) and records the whole group
in ONE transaction, then answers each caller. No timer: under light load a
call goes alone at once (the queue is empty, so the group is one call and it
takes today's one-call path), under heavy load calls share the commit.

On PostgreSQL the group is written set-based (:mod:`group_writes`):
one statement locks every member of the group, one reads what each call
needs, each order is computed by the one-call path's own code
(:func:`orders.earn_locked`), and one statement writes every row of the
group — three statements for the whole group where one call alone needs
three. What the set-based write does not take goes through
:func:`orders.record_order` in the same transaction, after it.

What a caller sees is exactly what the one-call path would answer:

* same rules, same rows, same response; a member's calls keep their order
  (a second call of the member in the group runs after the first and sees
  it), and members are locked in one global order (customer id for the
  set-based write, member id for the rest);
* a caller is acknowledged only after its group committed;
* when the group's transaction fails, it is rolled back. A refusal of one
  order (a used coupon, an order already earned, a reused Idempotency-Key
  with another body…) sends that call alone *after* the others, which are
  written again as a group (up to :data:`MAX_ATTEMPTS` transactions); any
  other failure (a deadlock, a unique violation from a racing process, a
  lost connection) sends every call of the group alone through the one-call
  path. One bad order never fails another caller, and a call that would
  have been refused alone is refused with the same 4xx;
* calls the domain can refuse before writing (unknown member, bad lines,
  bad ids) are screened out first and go alone.

A second call with the same Idempotency-Key in one group reads the first's
key row in the same transaction, so it replays the first's response (or is
refused as a mismatch), as it would after the first committed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.errors import KizunaError
from kizuna.services.programme import config
from kizuna.services.programme.group_writes import Refused, set_based, write_set_based
from kizuna.services.programme.orders import (
    RecordOrder,
    check_command,
    check_lines,
    record_order,
)
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

#: The most calls one transaction records: big enough to share a commit among
#: every call a loaded till sends while one group is written, small enough
#: that a group's locks are held for a few milliseconds only.
MAX_GROUP = 128
#: Transactions a group may take: each refused order is dropped from the group
#: and the rest written again; past this, every call left goes alone.
MAX_ATTEMPTS = 4
#: Writer threads per process. One: a second one (writing the calls that
#: queued while the first waits on the database) made groups smaller and cost
#: more CPU per call than it saved in waiting (measured, bench/RESULTS.md).
WRITERS = 1
#: A writer thread with nothing to do for this long ends (a new one starts on demand).
IDLE_SECONDS = 30.0

log = logging.getLogger(__name__)

Result = tuple[int, dict[str, Any]]
#: One call's outcome: its (status, body), or the error the one-call path raised.
Outcome = Result | BaseException
Item = tuple[RecordOrder, datetime | None]
OpenUow = Callable[[], AbstractContextManager[UnitOfWork]]
Solo = Callable[[RecordOrder, datetime | None], Result]

_MEMBERS = sa.select(t.customers.c.external_id).where(
    t.customers.c.external_id.in_(sa.bindparam("m", expanding=True))
)


def _alone(solo: Solo, item: Item) -> Outcome:
    try:
        return solo(*item)
    except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
        return exc


def _screen(uow: UnitOfWork, items: Sequence[Item], indexes: list[int]) -> list[int]:
    """The calls that pass every check needing no lock; the others go alone."""
    programme = config.active_programme(uow).programme
    known: set[str] | None = None
    if uow.dialect != "postgresql" or not set_based(programme):  # else the group's lock tells
        wanted = sorted({items[i][0].member_id for i in indexes})
        known = set(uow.conn.execute(_MEMBERS, {"m": wanted}).scalars())
    passed = []
    for i in indexes:
        cmd = items[i][0]
        if known is not None and cmd.member_id not in known:
            continue
        try:
            check_command(cmd)
            check_lines(cmd.lines, cmd.currency, programme, uow.settings.currency)
        except KizunaError:
            continue
        passed.append(i)
    return passed


def record_group(open_uow: OpenUow, solo: Solo, items: Sequence[Item]) -> list[Outcome]:
    """Record the calls ``items`` as one transaction where they can be; one outcome per call.

    ``open_uow`` opens the group's unit of work (taking SQLite's writer lock
    where needed); ``solo`` is today's one-call path, used for a group of one
    and for every call the group cannot take.
    """
    outcomes: dict[int, Outcome] = {}
    later: list[int] = []
    pending = list(range(len(items)))
    for attempt in range(MAX_ATTEMPTS):
        if len(pending) <= 1:
            break
        results: dict[int, Result] = {}
        unknown: list[int] = []
        try:
            with open_uow() as uow:
                if attempt == 0:
                    passed = _screen(uow, items, pending)
                    later += [i for i in pending if i not in set(passed)]
                    pending = passed
                    if len(pending) <= 1:
                        break
                # One global lock order (the member id) across every process's groups.
                pending.sort(key=lambda i: items[i][0].member_id)
                for i in write_set_based(uow, items, pending, results, unknown):
                    try:
                        results[i] = record_order(uow, items[i][0], items[i][1], commit=False)
                    except KizunaError as exc:
                        raise Refused(i) from exc
                uow.commit()
        except Refused as refused:
            pending = [i for i in pending if i != refused.index and i not in unknown]
            later += [refused.index, *unknown]
            continue
        except Exception:  # noqa: BLE001 - any failure: every call goes alone
            log.info("an earn group failed; its calls go one by one", exc_info=True)
            break
        outcomes.update(results)
        later += unknown
        pending = []
        break
    for i in sorted(pending) + sorted(later):
        outcomes[i] = _alone(solo, items[i])
    return [outcomes[i] for i in range(len(items))]


@dataclass
class _Call:
    cmd: RecordOrder
    settle: Callable[[Outcome], None]


class GroupWriter:
    """One process's queue of earn calls and the thread that writes them in groups."""

    def __init__(
        self, open_uow: OpenUow, solo: Solo, max_group: int = MAX_GROUP, writers: int = WRITERS
    ) -> None:
        self._open_uow = open_uow
        self._solo = solo
        self._max = max_group
        self._writers = writers
        self._queue: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0
        #: How many calls each group held (for the benchmark; bounded).
        self.sizes: list[int] = []

    async def record(self, cmd: RecordOrder) -> Result:
        """Queue the call and wait for its group's commit; raises what the one-call path would."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()

        def settle(outcome: Outcome) -> None:
            loop.call_soon_threadsafe(_resolve, future, outcome)

        self.submit(_Call(cmd, settle))
        outcome = await future
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def submit(self, call: _Call) -> None:
        with self._lock:
            self._queue.put(call)
            if self._running < self._writers:
                self._running += 1
                threading.Thread(target=self._run, name="kizuna-earn-groups", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running -= 1
                        return
                continue
            calls = [first]
            while len(calls) < self._max:
                try:
                    calls.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if len(self.sizes) < 100_000:
                self.sizes.append(len(calls))
            try:
                outcomes = record_group(self._open_uow, self._solo, [(c.cmd, None) for c in calls])
            except Exception as exc:  # noqa: BLE001 - never leave a caller waiting
                outcomes = [exc] * len(calls)
            for call, outcome in zip(calls, outcomes, strict=True):
                call.settle(outcome)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():  # the caller may have gone (client disconnected)
        future.set_result(outcome)
