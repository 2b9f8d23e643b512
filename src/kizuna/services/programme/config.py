"""The active programme: read from ``programme.toml`` or the API, versioned in the database.

Each distinct document gets one ``programme_versions`` row; the newest row is
the active programme, and every ledger entry records the version that
computed it, so "why did I get 37 points in March" has an answer even after
the rules change.
"""

from __future__ import annotations

import threading
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kizuna.domain.programme import DEFAULT_PROGRAMME_TOML, Programme, parse_programme
from kizuna.errors import ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt

PROGRAMME_FILE = "programme.toml"
#: How long a process trusts its cached programme before asking the database again.
CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class ActiveProgramme:
    programme: Programme
    version: int


_cache: dict[str, tuple[float, ActiveProgramme]] = {}
_lock = threading.Lock()


def read_programme_file(path: Path) -> Programme:
    """Parse and validate a programme file; problems name the field to fix."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(
            f"{path} does not exist; `kizuna program init` writes a starting one"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path} is not valid TOML: {exc}") from exc
    return parse_programme(data)


def default_programme() -> Programme:
    return parse_programme(tomllib.loads(DEFAULT_PROGRAMME_TOML))


def record_version(uow: UnitOfWork, programme: Programme, source: str) -> int:
    """The version id of ``programme``, adding a version row if it is new."""
    conn = uow.conn
    found = conn.execute(
        sa.select(pt.programme_versions.c.id).where(
            pt.programme_versions.c.digest == programme.digest
        )
    ).scalar()
    if found is not None:
        latest = conn.execute(sa.select(sa.func.max(pt.programme_versions.c.id))).scalar()
        if found == latest:
            return int(found)
        # Re-applying an older document makes it the newest version again.
        conn.execute(sa.delete(pt.programme_versions).where(pt.programme_versions.c.id == found))
    return int(
        conn.execute(
            sa.insert(pt.programme_versions)
            .values(
                digest=programme.digest,
                document=dict(programme.raw),
                source=source[:500],
                created_at=datetime.now(UTC),
            )
            .returning(pt.programme_versions.c.id)
        ).scalar_one()
    )


_LATEST = sa.select(sa.func.max(pt.programme_versions.c.id))
_DOCUMENT = sa.select(pt.programme_versions.c.document).where(
    pt.programme_versions.c.id == sa.bindparam("v")
)


def active_programme(uow: UnitOfWork) -> ActiveProgramme:
    """The newest recorded programme; on first use, the workspace file or the default.

    Cached per process by version: every :data:`CACHE_SECONDS` one cheap
    ``max(id)`` asks whether another process applied a new version; the
    document is read and parsed again only when it did.
    """
    key = f"{uow.engine.url}|{uow.settings.workspace}"
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    latest = uow.conn.execute(_LATEST).scalar()
    if hit and latest == hit[1].version:
        active = hit[1]
    elif latest is None:
        path = uow.settings.workspace / PROGRAMME_FILE
        programme = read_programme_file(path) if path.exists() else default_programme()
        version = record_version(uow, programme, str(path) if path.exists() else "built-in default")
        active = ActiveProgramme(programme, version)
    else:
        document = uow.conn.execute(_DOCUMENT, {"v": latest}).scalar_one()
        active = ActiveProgramme(parse_programme(_as_dict(document)), int(latest))
    with _lock:
        _cache[key] = (now, active)
    return active


def apply_programme(uow: UnitOfWork, programme: Programme, source: str) -> int:
    """Make ``programme`` the active one (a new version unless it is already active)."""
    version = record_version(uow, programme, source)
    forget_cache()
    return version


def forget_cache() -> None:
    with _lock:
        _cache.clear()


def _as_dict(doc: Any) -> dict[str, Any]:
    return dict(doc) if isinstance(doc, dict) else {}
