"""API keys: stored as SHA-256 hashes, each with one scope.

A key looks like ``kz_<prefix>_<secret>``; the prefix finds the row, the hash
of the whole key proves it. Keys are 190 random bits, so a fast hash is
enough (there is nothing to brute-force, unlike a password). Verified keys
are cached for :data:`CACHE_SECONDS`, so a revocation takes that long to
reach every process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from kizuna.errors import Forbidden, NotFound, Unauthorized, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt

SCOPES = ("admin", "marketer", "analyst", "pos")
#: What each scope may do. A POS key may only quote, earn, redeem and refund,
#: and read a member's summary (``member``: balance, expiring points, tier and
#: progress, which a till shows before earning or redeeming; not the ledger);
#: an analyst key only reads, and sees personal data masked (no ``personal``).
#: ``write`` covers segments, journeys and measures; ``score`` starts scoring
#: runs; ``ingest`` loads data; ``keys`` manages API keys.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "read",
            "member",
            "quote",
            "earn",
            "redeem",
            "refund",
            "adjust",
            "actions",
            "coupons",
            "programme",
            "batch",
            "write",
            "score",
            "ingest",
            "keys",
            "personal",
        }
    ),
    "marketer": frozenset(
        {
            "read",
            "member",
            "quote",
            "adjust",
            "actions",
            "coupons",
            "programme",
            "write",
            "score",
            "ingest",
            "personal",
        }
    ),
    "analyst": frozenset({"read", "member"}),
    "pos": frozenset({"member", "quote", "earn", "redeem", "refund"}),
}
#: How a refusal names what the key tried to do.
ACTIONS: dict[str, str] = {
    "member": "read member summaries",
    "write": "change segments, journeys or measures",
    "score": "start scoring runs",
    "ingest": "ingest data",
    "keys": "manage API keys",
    "personal": "see personal data",
}
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    scope: str
    name: str

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.scope]

    def require(self, permission: str) -> None:
        if permission not in PERMISSIONS[self.scope]:
            allowed = sorted(s for s, p in PERMISSIONS.items() if permission in p)
            action = ACTIONS.get(permission, permission)
            raise Forbidden(
                f"this {self.scope} key may not {action}; use a key with scope {' or '.join(allowed)}"
            )


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(uow: UnitOfWork, scope: str, name: str) -> str:
    """Create a key and return it; only its hash is stored, so show it once."""
    if scope not in SCOPES:
        raise ValidationError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    prefix = secrets.token_hex(4)
    key = f"kz_{prefix}_{secrets.token_urlsafe(24)}"
    uow.conn.execute(
        sa.insert(pt.api_keys).values(
            prefix=prefix,
            secret_hash=_hash(key),
            scope=scope,
            name=name or scope,
            created_at=datetime.now(UTC),
        )
    )
    return key


def revoke_key(uow: UnitOfWork, prefix: str) -> bool:
    res = uow.conn.execute(
        sa.update(pt.api_keys)
        .where(pt.api_keys.c.prefix == prefix)
        .values(revoked_at=datetime.now(UTC))
    )
    _cache.clear()
    return bool(res.rowcount)


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as an admin sees it: never the secret, which only its holder has."""

    id: int
    prefix: str
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


def list_keys(
    uow: UnitOfWork, *, after: int = 0, limit: int = 100, include_revoked: bool = True
) -> list[KeyInfo]:
    """Keys by id after ``after`` (for cursor paging), at most ``limit``."""
    k = pt.api_keys.c
    query = sa.select(k.id, k.prefix, k.scope, k.name, k.created_at, k.revoked_at).where(
        k.id > after
    )
    if not include_revoked:
        query = query.where(k.revoked_at.is_(None))
    rows = uow.conn.execute(query.order_by(k.id).limit(limit))
    return [KeyInfo(r.id, r.prefix, r.scope, r.name, r.created_at, r.revoked_at) for r in rows]


def get_key(uow: UnitOfWork, prefix: str) -> KeyInfo:
    k = pt.api_keys.c
    row = uow.conn.execute(
        sa.select(k.id, k.prefix, k.scope, k.name, k.created_at, k.revoked_at).where(
            k.prefix == prefix
        )
    ).first()
    if row is None:
        raise NotFound(
            f"no API key with prefix {prefix!r}; the prefix is the 8 characters after `kz_`"
        )
    return KeyInfo(row.id, row.prefix, row.scope, row.name, row.created_at, row.revoked_at)


_cache: dict[str, tuple[float, ApiKey]] = {}
_lock = threading.Lock()


def _parsed(header: str | None) -> tuple[str, str]:
    """The key's prefix and hash from an ``Authorization: Bearer`` header, or why it is refused."""
    if not header:
        raise Unauthorized(
            "missing API key: send `Authorization: Bearer kz_...` (create one with `kizuna api-key create`)"
        )
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("malformed Authorization header: use `Authorization: Bearer kz_...`")
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "kz" or len(parts[1]) != 8:
        raise Unauthorized("malformed API key: keys look like kz_<8 hex>_<secret>")
    return parts[1], _hash(key)


def cached(header: str | None) -> ApiKey | None:
    """The key if this process verified it less than :data:`CACHE_SECONDS` ago, else None.

    No database: the API checks this on its event loop and only sends a
    miss to a worker thread (:func:`verify`). A malformed header is refused
    here already.
    """
    digest = _parsed(header)[1]
    with _lock:
        hit = _cache.get(digest)
    if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    return None


def verify(uow: UnitOfWork | Callable[[], UnitOfWork], header: str | None) -> ApiKey:
    """The key named by an ``Authorization: Bearer`` header, or why it is refused.

    ``uow`` may be a factory: a key found in the cache then costs no
    database round trip at all.
    """
    prefix, digest = _parsed(header)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(digest)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    k = pt.api_keys.c
    query = sa.select(k.secret_hash, k.scope, k.name, k.revoked_at).where(k.prefix == prefix)
    if isinstance(uow, UnitOfWork):
        row = uow.conn.execute(query).first()
    else:
        with uow() as opened:
            row = opened.conn.execute(query).first()
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        raise Unauthorized("unknown API key; check it was copied whole, or create a new one")
    if row.revoked_at is not None:
        raise Unauthorized("this API key was revoked; create a new one")
    api_key = ApiKey(prefix, row.scope, row.name)
    with _lock:
        _cache[digest] = (now, api_key)
    return api_key
