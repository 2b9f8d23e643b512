"""Per-key rate limits: a token bucket per API key, kept in the database.

Each key may make ``N`` requests per minute (the ``api_rate_limits`` setting,
per scope), bursting up to ``N`` at once. The bucket is one row of
``api_rate_buckets`` and one request costs one ``UPDATE ... RETURNING``
that refills and spends in the same statement, so every API process on every
machine draws from the same bucket and two concurrent requests can never
both spend the last token (the row lock serialises them on PostgreSQL;
SQLite has one writer). A process-local bucket would be cheaper, but with
``N`` processes a key could then make ``N`` times its limit.

To keep that write off most requests, a process takes tokens in small
leases (one second's worth, at most :data:`MAX_LEASE`) and spends them from
memory. Leased tokens were already taken from the shared bucket, so all the
processes together never exceed the limit; a process may only hold up to a
lease it has not used yet, which makes a busy key hit its limit a little
early, never late.

Time is the API process's clock as Unix seconds; a process whose clock is
behind never refills a bucket backwards (the refill is clamped at zero).
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.config import Settings
from kizuna.errors import KizunaError
from kizuna.store.api_tables import api_rate_buckets as b


class RateLimited(KizunaError):
    """The key made more requests than its scope's limit allows; retry after ``retry_after``."""

    def __init__(self, message: str, retry_after: int, limit: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


#: Most tokens one process takes from the shared bucket in one statement.
MAX_LEASE = 50


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int
    taken: int = 1


def limits(settings: Settings) -> dict[str, int]:
    """Requests per minute per scope; a scope not named, or 0, is unlimited."""
    found: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in settings.api_rate_limits.split(","))):
        scope, _, number = part.partition("=")
        found[scope.strip()] = int(number)
    return found


def limit_for(settings: Settings, scope: str) -> int:
    return limits(settings).get(scope, 0)


def take(
    conn: sa.Connection, prefix: str, per_minute: int, now: float | None = None, want: int = 1
) -> Decision:
    """Spend ``want`` tokens (or, if fewer are left, one) of key ``prefix``'s bucket,
    or say how long until one is free."""
    now = time.time() if now is None else now
    capacity = float(per_minute)
    rate = per_minute / 60.0
    elapsed = sa.case((b.c.refilled_at < now, now - b.c.refilled_at), else_=0.0)
    refilled = b.c.tokens + elapsed * rate
    available = sa.case((refilled > capacity, capacity), else_=refilled)

    def spend(n: int) -> sa.Update:
        return (
            sa.update(b)
            .where(b.c.key_prefix == prefix, available >= float(n))
            .values(
                tokens=available - float(n),
                refilled_at=sa.case((b.c.refilled_at < now, now), else_=b.c.refilled_at),
            )
            .returning(b.c.tokens)
        )

    amounts = [want, 1] if want > 1 else [1]
    for _ in range(3):
        for n in amounts:
            left = conn.execute(spend(n)).scalar_one_or_none()
            if left is not None:
                return Decision(True, int(left), 0, n)
        current = conn.execute(
            sa.select(available.label("available")).where(b.c.key_prefix == prefix)
        ).scalar_one_or_none()
        if current is not None and float(current) >= 1.0:
            # The row was created by another request after our UPDATE's snapshot
            # (the first burst on a new key): spend from it rather than refuse.
            continue
        if current is not None:
            wait = max(1, math.ceil((1.0 - float(current)) / rate))
            return Decision(False, 0, wait)
        insert = postgresql.insert(b) if conn.dialect.name == "postgresql" else sqlite.insert(b)
        first = max(1, min(want, per_minute))
        created = conn.execute(
            insert.values(key_prefix=prefix, tokens=capacity - first, refilled_at=now)
            .on_conflict_do_nothing(index_elements=["key_prefix"])
            .returning(b.c.tokens)
        ).scalar_one_or_none()
        if created is not None:
            return Decision(True, int(created), 0, first)
        # Another process created the bucket between our statements: spend from it.
    raise AssertionError("unreachable: the bucket row exists after the insert")


_leased: dict[tuple[str, str], int] = {}
_leased_lock = threading.Lock()


def lease_size(per_minute: int) -> int:
    """Tokens taken per database statement: one second's worth, 1 to :data:`MAX_LEASE`."""
    return max(1, min(per_minute // 60, MAX_LEASE))


def check(
    engine: sa.Engine,
    settings: Settings,
    prefix: str,
    scope: str,
    writer_lock: AbstractContextManager[object] | None = None,
) -> None:
    """Admit one request of key ``prefix`` or raise :class:`RateLimited` (answered as 429).

    ``writer_lock`` is held around the database write (the API's SQLite
    writer lock), and only when a new lease has to be taken.
    """
    per_minute = limit_for(settings, scope)
    if per_minute <= 0:
        return
    held = (settings.database_url, prefix)
    with _leased_lock:
        if _leased.get(held, 0) > 0:
            _leased[held] -= 1
            return
    with writer_lock or nullcontext(), engine.begin() as conn:
        decision = take(conn, prefix, per_minute, want=lease_size(per_minute))
    if decision.allowed:
        with _leased_lock:
            _leased[held] = _leased.get(held, 0) + decision.taken - 1
        return
    raise RateLimited(
        f"rate limit of {per_minute} requests per minute for {scope} keys reached; "
        f"retry after {decision.retry_after} s, or ask an admin to raise "
        "`api_rate_limits` or give this client its own key",
        decision.retry_after,
        per_minute,
    )
