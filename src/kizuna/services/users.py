"""Dashboard users: create, list and authenticate them.

Passwords are stored only as scrypt hashes (stdlib :func:`hashlib.scrypt`) with
a per-user random salt, in a self-describing string
``scrypt$<n>$<r>$<p>$<salt>$<hash>`` so the cost can be raised later without
breaking old hashes. Comparison is constant-time, and an unknown user name
costs the same hashing work as a wrong password, so response times do not
reveal which user names exist.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store.web_tables import ROLES, dashboard_audit, dashboard_users

#: scrypt cost: 2**14 iterations with r=8 is 16 MiB and ~50 ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
MIN_PASSWORD_CHARS = 10
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in the self-describing format."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``, compared in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_LEN, maxmem=64 * 2**20
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user name is unknown, so both paths cost the same."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    """A dashboard user as the dashboard sees it (never with the hash)."""

    id: int
    username: str
    role: str
    created_at: datetime
    last_login_at: datetime | None
    disabled: bool

    @property
    def sees_personal_data(self) -> bool:
        """Admins and marketers see names, e-mails, phones; analysts see them masked."""
        return self.role in ("admin", "marketer")


def _user(row: Any) -> User:
    return User(
        int(row.id),
        row.username,
        row.role,
        row.created_at,
        row.last_login_at,
        bool(row.disabled),
    )


@dataclass(frozen=True)
class CreateUser:
    """Create dashboard user ``username`` with ``role`` and ``password``."""

    username: str
    role: str
    password: str


def handle_create(cmd: CreateUser, uow: UnitOfWork) -> User:
    """Store the new user; refuses a bad name, unknown role, short password or reused name."""
    if not USERNAME.match(cmd.username):
        raise ValidationError(
            f"user name {cmd.username!r} is not allowed; use 1-64 letters, digits or . _ @ -"
        )
    if cmd.role not in ROLES:
        raise ValidationError(f"unknown role {cmd.role!r}; choose one of {', '.join(ROLES)}")
    if len(cmd.password) < MIN_PASSWORD_CHARS:
        raise ValidationError(
            f"the password is too short; use at least {MIN_PASSWORD_CHARS} characters"
        )
    u = dashboard_users
    with uow:
        exists = uow.conn.execute(
            sa.select(u.c.id).where(u.c.username == cmd.username)
        ).scalar_one_or_none()
        if exists is not None:
            raise Conflict(f"a dashboard user named {cmd.username!r} already exists")
        row = uow.conn.execute(
            sa.insert(u)
            .values(
                username=cmd.username,
                role=cmd.role,
                password_hash=hash_password(cmd.password),
                created_at=datetime.now(UTC),
            )
            .returning(*(c for c in u.c if c.name != "password_hash"))
        ).one()
        uow.commit()
    return _user(row)


def list_users(engine: sa.Engine) -> list[User]:
    """Every dashboard user, by name."""
    u = dashboard_users
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*(c for c in u.c if c.name != "password_hash")).order_by(u.c.username)
        )
        return [_user(r) for r in rows]


def get_user(engine: sa.Engine, user_id: int) -> User:
    """The user with surrogate key ``user_id``; :class:`NotFound` if there is none."""
    u = dashboard_users
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(*(c for c in u.c if c.name != "password_hash")).where(u.c.id == user_id)
        ).one_or_none()
    if row is None:
        raise NotFound(f"no dashboard user with id {user_id}")
    return _user(row)


def authenticate(engine: sa.Engine, username: str, password: str) -> User | None:
    """The user if ``password`` is theirs and they are not disabled, else ``None``."""
    u = dashboard_users
    with engine.begin() as conn:
        row = conn.execute(sa.select(u).where(u.c.username == username)).one_or_none()
        if row is None:
            verify_password(password, _dummy_hash())
            return None
        if not verify_password(password, row.password_hash) or row.disabled:
            return None
        now = datetime.now(UTC)
        conn.execute(sa.update(u).where(u.c.id == row.id).values(last_login_at=now))
    user = _user(row)
    return User(user.id, user.username, user.role, user.created_at, now, user.disabled)


def record_audit(engine: sa.Engine, username: str, action: str, detail: dict[str, Any]) -> None:
    """Append one line to the audit log; ``detail`` must hold no personal data."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(dashboard_audit).values(
                at=datetime.now(UTC), username=username, action=action, detail=detail
            )
        )


def audit_log(engine: sa.Engine, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` audit lines, newest first."""
    a = dashboard_audit
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a).order_by(a.c.at.desc(), a.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


# --- administration (the dashboard's user management page) ------------------------


@dataclass(frozen=True)
class ChangeUser:
    """Change one user: their role, whether they are disabled, and/or their password."""

    user_id: int
    role: str | None = None
    disabled: bool | None = None
    password: str | None = None


def _enabled_admins(conn: sa.Connection, besides: int) -> int:
    u = dashboard_users
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                u.c.role == "admin", u.c.disabled == sa.false(), u.c.id != besides
            )
        ).scalar_one()
    )


def handle_change(cmd: ChangeUser, uow: UnitOfWork) -> User:
    """Apply ``cmd``; refuses to leave the workspace without an enabled admin.

    The role and the disabled flag are read on every request, so a change
    takes effect on the user's next page; a new password on their next login.
    """
    u = dashboard_users
    if cmd.role is not None and cmd.role not in ROLES:
        raise ValidationError(f"unknown role {cmd.role!r}; choose one of {', '.join(ROLES)}")
    if cmd.password is not None and len(cmd.password) < MIN_PASSWORD_CHARS:
        raise ValidationError(
            f"the password is too short; use at least {MIN_PASSWORD_CHARS} characters"
        )
    with uow:
        row = uow.conn.execute(
            sa.select(u.c.id, u.c.role, u.c.disabled).where(u.c.id == cmd.user_id)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no dashboard user with id {cmd.user_id}")
        stays_admin = (cmd.role or row.role) == "admin" and not (
            cmd.disabled if cmd.disabled is not None else row.disabled
        )
        if row.role == "admin" and not stays_admin and _enabled_admins(uow.conn, row.id) == 0:
            raise Conflict("this is the last enabled admin; make another user admin first")
        values: dict[str, Any] = {}
        if cmd.role is not None:
            values["role"] = cmd.role
        if cmd.disabled is not None:
            values["disabled"] = cmd.disabled
        if cmd.password is not None:
            values["password_hash"] = hash_password(cmd.password)
        if values:
            uow.conn.execute(sa.update(u).where(u.c.id == cmd.user_id).values(**values))
        uow.commit()
    return get_user(uow.engine, cmd.user_id)
