"""Backup and restore of a workspace: one archive, with a manifest that proves it whole.

The archive (``kizuna-backup-<UTC time>.tar.gz``, mode 0600 because it holds
personal data and the workspace's secrets) contains:

* ``manifest.json`` — format, creation time, schema revision, the database
  kind, and the SHA-256 and size of every other member;
* the database: on SQLite a consistent copy made with SQLite's online backup
  API while the application may keep writing (readers and writers are not
  stopped; the copy is one snapshot, never a torn file); on PostgreSQL a
  ``pg_dump --format=custom`` dump when ``pg_dump`` is installed;
* ``workspace/``: the regular files at the top of the workspace folder
  (``kizuna.toml``, ``programme.toml``, ``.secret_key``, ...), not the
  database files themselves and not sub-folders (import reports, samples).

Restore checks everything before it writes anything: a truncated or altered
archive, an unknown format or a schema revision this Kizuna does not know is
refused with the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from kizuna.bootstrap import Context, safe_url
from kizuna.config import DEFAULT_DB_FILE
from kizuna.errors import KizunaError, WorkspaceError
from kizuna.store import schema

FORMAT = "kizuna-backup/1"
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/kizuna.sqlite"
PGDUMP_MEMBER = "database/kizuna.pgdump"
FILES_PREFIX = "workspace/"


class BackupError(KizunaError):
    """A backup could not be made or an archive cannot be restored; the message says why."""

    exit_code = 11


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sqlite_path(ctx: Context) -> Path:
    database = ctx.engine.url.database
    if not database:
        raise BackupError("this SQLite database is in memory; there is nothing to back up")
    return Path(database)


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent snapshot of a live SQLite database (WAL included) into ``target``.

    ``Connection.backup`` copies all pages in one step under a read
    transaction, so writers of other processes keep going (WAL) and the copy
    is the database as of one commit.
    """
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _libpq(url: sa.URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore; the password goes in the environment."""
    args = ["--dbname", url.database or ""]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _workspace_files(ctx: Context, skip: set[Path]) -> list[Path]:
    ws = ctx.settings.workspace
    if not ws.is_dir():
        return []
    return sorted(
        p
        for p in ws.iterdir()
        if p.is_file()
        and p.resolve() not in skip
        and not p.name.startswith(f"{DEFAULT_DB_FILE}-")
        and not p.name.endswith(".tar.gz")
    )


def backup(ctx: Context, out_dir: Path | None = None, now: datetime | None = None) -> BackupResult:
    """Write one archive of the database and the workspace files into ``out_dir``."""
    now = now or datetime.now(UTC)
    out_dir = (out_dir or ctx.settings.workspace / "backups").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    revision = schema.current_revision(ctx.engine)
    if revision is None:
        raise BackupError(
            f"{safe_url(ctx.settings.database_url)} has no Kizuna schema; nothing to back up"
        )
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    target = out_dir / f"kizuna-backup-{stamp}.tar.gz"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".backup-") as tmp:
        staging = Path(tmp)
        members: dict[str, Path] = {}
        skip: set[Path] = set()
        dialect = ctx.engine.dialect.name
        if dialect == "sqlite":
            db = sqlite_path(ctx)
            skip.add(db.resolve())
            copy = staging / "kizuna.sqlite"
            copy_sqlite(db, copy)
            members[SQLITE_MEMBER] = copy
        elif dialect == "postgresql":
            members[PGDUMP_MEMBER] = _pg_dump(ctx, staging / "kizuna.pgdump")
        else:
            raise BackupError(f"backups of {dialect} databases are not supported")
        for path in _workspace_files(ctx, skip):
            members[FILES_PREFIX + path.name] = path
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "schema_revision": revision,
            "database": dialect,
            "timezone": ctx.settings.timezone,
            "currency": ctx.settings.currency,
            "files": {
                name: {"sha256": _sha256(path), "size": path.stat().st_size}
                for name, path in members.items()
            },
        }
        partial = staging / "archive.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            body = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(now.timestamp()), 0o600
            tar.addfile(info, io.BytesIO(body))
            for name, path in members.items():
                tar.add(path, arcname=name, recursive=False)
        os.replace(partial, target)
    return BackupResult(target, manifest)


def _pg_dump(ctx: Context, target: Path) -> Path:
    binary = shutil.which("pg_dump")
    if binary is None:
        raise BackupError(
            "pg_dump is not installed here. Install the PostgreSQL client of the server's "
            "major version (Debian: apt install postgresql-client-15) and run `kizuna backup` "
            "again, or back up with: pg_dump --format=custom --file kizuna.pgdump "
            f"{safe_url(ctx.settings.database_url).replace('+psycopg', '')} "
            "(see docs/operations.md)"
        )
    args, env = _libpq(ctx.engine.url)
    done = subprocess.run(
        [binary, "--format=custom", "--no-owner", "--file", str(target), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return target


# ---- restore -------------------------------------------------------------------------


def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest of ``archive`` after checking every member's checksum and size."""
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist")
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            try:
                raw = tar.extractfile(MANIFEST)
            except KeyError:
                raise BackupError(
                    f"{archive} has no {MANIFEST}; it is not a Kizuna backup"
                ) from None
            if raw is None:
                raise BackupError(f"{archive}: {MANIFEST} is not a file")
            manifest: dict[str, Any] = json.loads(raw.read())
            if manifest.get("format") != FORMAT:
                raise BackupError(
                    f"{archive} has format {manifest.get('format')!r}; this Kizuna reads {FORMAT}"
                )
            names = set(tar.getnames()) - {MANIFEST}
            expected = set(manifest["files"])
            if names != expected:
                missing, extra = sorted(expected - names), sorted(names - expected)
                raise BackupError(
                    f"{archive} does not match its manifest (missing {missing}, unexpected {extra})"
                )
            for name, meta in manifest["files"].items():
                member = tar.extractfile(name)
                if member is None:
                    raise BackupError(f"{archive}: {name} is not a file")
                digest, size = hashlib.sha256(), 0
                for chunk in iter(lambda m=member: m.read(1 << 20), b""):  # type: ignore[misc]
                    digest.update(chunk)
                    size += len(chunk)
                if digest.hexdigest() != meta["sha256"] or size != meta["size"]:
                    raise BackupError(
                        f"{archive}: {name} is corrupt (checksum mismatch); use another backup"
                    )
    except (tarfile.TarError, EOFError, OSError, json.JSONDecodeError, KeyError) as exc:
        raise BackupError(f"{archive} is damaged or not a Kizuna backup: {exc}") from exc
    _check_revision(archive, str(manifest.get("schema_revision")))
    return manifest


def _check_revision(archive: Path, revision: str) -> None:
    scripts = ScriptDirectory.from_config(schema.alembic_config())
    known = {rev.revision for rev in scripts.walk_revisions()}
    if revision not in known:
        raise BackupError(
            f"{archive} was made at schema revision {revision}, which this Kizuna does not know "
            f"(its newest is {schema.head_revision()}); restore it with the Kizuna version that "
            "made it, or upgrade Kizuna first"
        )


@dataclass(frozen=True)
class RestoreResult:
    workspace: Path
    manifest: dict[str, Any]
    needs_upgrade: bool
    #: The restored kizuna.toml names another database than the one restored into.
    other_database_in_config: bool = False


def restore(
    archive: Path, workspace: Path, *, force: bool = False, database_url: str | None = None
) -> RestoreResult:
    """Restore ``archive`` into ``workspace`` (a folder); checks everything before writing.

    For an SQLite backup the database becomes ``WORKSPACE/kizuna.sqlite``;
    an existing one is kept aside as ``kizuna.sqlite.before-restore-<time>``
    when ``force`` is given, and refused otherwise. For a PostgreSQL backup
    ``database_url`` (or the restored kizuna.toml's) names the target, which
    ``pg_restore --clean`` overwrites.
    """
    manifest = read_manifest(archive)
    workspace = workspace.resolve()
    kind = manifest["database"]
    db_file = workspace / DEFAULT_DB_FILE
    if kind == "sqlite" and db_file.exists() and not force:
        raise BackupError(
            f"{db_file} already exists; restore into an empty folder, or pass --force to keep "
            "the current database aside and replace it"
        )
    workspace.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(dir=workspace, prefix=".restore-") as tmp:
        staging = Path(tmp)
        with tarfile.open(archive, mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        if kind == "sqlite":
            restored = staging / SQLITE_MEMBER
            _integrity(restored)
            for suffix in ("", "-wal", "-shm"):
                old = workspace / f"{DEFAULT_DB_FILE}{suffix}"
                if old.exists():
                    old.rename(workspace / f"{DEFAULT_DB_FILE}{suffix}.before-restore-{stamp}")
        for name in manifest["files"]:
            if name.startswith(FILES_PREFIX):
                target = workspace / name[len(FILES_PREFIX) :]
                if target.exists() and not force:
                    if target.read_bytes() == (staging / name).read_bytes():
                        continue
                    raise BackupError(
                        f"{target} exists and differs from the backup; pass --force to replace it"
                    )
                shutil.copy2(staging / name, target)
        if kind == "sqlite":
            shutil.move(str(staging / SQLITE_MEMBER), db_file)
        else:
            _pg_restore(staging / PGDUMP_MEMBER, workspace, database_url)
    head = schema.head_revision()
    differs = False
    if kind == "postgresql" and database_url:
        from kizuna.config import read_toml

        configured = str(read_toml(workspace).get("database_url", ""))
        differs = bool(configured) and configured != database_url
    return RestoreResult(workspace, manifest, manifest["schema_revision"] != head, differs)


def _integrity(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database in the backup is not a valid SQLite file: {exc}") from exc
    finally:
        conn.close()
    if not result or result[0] != "ok":
        raise BackupError(f"the database in the backup fails SQLite's integrity check: {result}")


def _pg_restore(dump: Path, workspace: Path, database_url: str | None) -> None:
    from kizuna.config import load_settings

    url = database_url or load_settings(workspace, env={}).database_url
    if not url.startswith("postgresql"):
        raise BackupError(
            "this backup holds a PostgreSQL dump; give the target with --database-url "
            "postgresql+psycopg://user:pass@host/db"
        )
    binary = shutil.which("pg_restore")
    if binary is None:
        raise WorkspaceError(
            "pg_restore is not installed; install the PostgreSQL client and run: "
            f"pg_restore --clean --if-exists --no-owner --dbname DB {dump.name}"
        )
    args, env = _libpq(sa.engine.make_url(url))
    done = subprocess.run(
        [binary, "--clean", "--if-exists", "--no-owner", "--single-transaction", *args, str(dump)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
