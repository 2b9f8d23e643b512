"""Idempotency keys: a retried request returns the first result and has no second effect.

The key and the response are written in the same transaction as the effect,
after the member's row lock is taken, so a retry racing the original waits
for it and then finds its answer; a crash before commit leaves neither.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.errors import Conflict, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt

MAX_KEY = 255
_k = pt.idempotency_keys.c
_REPLAY = sa.select(_k.request_hash, _k.status_code, _k.response).where(_k.key == sa.bindparam("k"))
_REMEMBER = sa.insert(pt.idempotency_keys)


@dataclass(frozen=True)
class Idem:
    """An Idempotency-Key and the fingerprint of the request it was sent with."""

    key: str
    request_hash: str


def make_idem(key: str | None, method: str, path: str, body: bytes) -> Idem:
    if key is None or not key.strip():
        raise ValidationError(
            "this call changes data and needs an Idempotency-Key header (any unique string, e.g. a UUID)"
        )
    if len(key) > MAX_KEY or not key.isprintable():
        raise ValidationError(f"Idempotency-Key must be 1 to {MAX_KEY} printable characters")
    digest = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
    return Idem(key, digest)


@dataclass(frozen=True)
class Stored:
    status: int
    body: dict[str, Any]


def replay(uow: UnitOfWork, idem: Idem | None) -> Stored | None:
    """The stored response of an earlier request with this key, if any."""
    if idem is None:
        return None
    row = uow.conn.execute(_REPLAY, {"k": idem.key}).first()
    if row is None:
        return None
    if row.request_hash != idem.request_hash:
        raise Conflict(
            f"Idempotency-Key {idem.key!r} was already used for a different request; "
            "send a new key for a new request, or the same body to retry"
        )
    return Stored(int(row.status_code), dict(row.response))


def remembered(idem: Idem, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """The ``idempotency_keys`` row that makes a retry return this response."""
    return {
        "key": idem.key,
        "request_hash": idem.request_hash,
        "status_code": status,
        "response": body,
        "created_at": datetime.now(UTC),
    }


def remember(uow: UnitOfWork, idem: Idem | None, status: int, body: dict[str, Any]) -> None:
    if idem is None:
        return
    uow.conn.execute(_REMEMBER, remembered(idem, status, body))


def purge(uow: UnitOfWork, older_than: datetime) -> int:
    """Forget keys older than the retry horizon (scheduled work)."""
    res = uow.conn.execute(
        sa.delete(pt.idempotency_keys).where(pt.idempotency_keys.c.created_at < older_than)
    )
    return int(res.rowcount or 0)
