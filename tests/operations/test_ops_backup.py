"""Backup while the shop keeps writing, restore elsewhere: every balance and count comes back."""

from __future__ import annotations

import io
import tarfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import POSTGRES_URL, _reset_postgres
from tests.operations.conftest import balances, counts, record
from typer.testing import CliRunner

from kizuna.bootstrap import Context, open_context
from kizuna.cli import app
from kizuna.services.backup import BackupError, backup, read_manifest, restore
from kizuna.services.programme.checks import check_all
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt


def _second_postgres() -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + POSTGRES_URL.rsplit("/", 1)[1] + "_2"


def _restore_target(ctx: Context, tmp_path: Path, name: str) -> tuple[Path, str | None]:
    if ctx.engine.dialect.name == "postgresql":
        url = _second_postgres()
        _reset_postgres(url)
        return tmp_path / name, url
    return tmp_path / name, None


def _open(folder: Path, url: str | None) -> Context:
    return open_context(url) if url else open_context(folder)


def test_backup_during_writes_restores_to_identical_books(loaded: Context, tmp_path: Path) -> None:
    stop = threading.Event()
    written: list[int] = []

    def shop() -> None:
        at = datetime(2026, 11, 20, tzinfo=UTC)
        i = 0
        while not stop.is_set():
            record(loaded, f"LIVE-{i}", "C0000002", 500 + i, at + timedelta(minutes=i))
            written.append(i)
            i += 1

    writer = threading.Thread(target=shop)
    writer.start()
    try:
        while len(written) < 3:
            stop.wait(0.05)
        during = backup(loaded, tmp_path / "b1")
    finally:
        stop.set()
        writer.join()
    assert len(written) >= 3
    # The copy taken mid-write is one consistent snapshot.
    target, url = _restore_target(loaded, tmp_path, "mid")
    restore(during.path, target, database_url=url)
    mid = _open(target, url)
    with UnitOfWork(mid.engine, mid.settings) as uow:
        assert check_all(uow) == []
    mid.dispose()

    # With the writer stopped, a backup restores to exactly the same books.
    final = backup(loaded, tmp_path / "b2")
    assert final.manifest["schema_revision"] and final.path.stat().st_mode & 0o077 == 0
    target, url = _restore_target(loaded, tmp_path, "copy")
    result = restore(final.path, target, database_url=url)
    assert not result.needs_upgrade
    # Restored into another PostgreSQL database: the copied kizuna.toml still names the first.
    assert result.other_database_in_config == (url is not None)
    copy = _open(target, url)
    copy.require_current_schema()
    assert balances(copy) == balances(loaded)
    assert counts(copy) == counts(loaded)
    with copy.engine.connect() as conn, loaded.engine.connect() as src:
        q = sa.select(pt.ledger_entries).order_by(pt.ledger_entries.c.id)
        assert conn.execute(q).all() == src.execute(q).all()
    assert (target / "kizuna.toml").read_text() == (
        loaded.settings.workspace / "kizuna.toml"
    ).read_text()
    copy.dispose()


def test_restore_refuses_a_damaged_or_foreign_archive(
    sqlite_workspace: Context, tmp_path: Path
) -> None:
    made = backup(sqlite_workspace, tmp_path / "b")
    data = made.path.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BackupError, match="damaged"):
        restore(cut, tmp_path / "x")
    assert not (tmp_path / "x" / "kizuna.sqlite").exists()

    # Same files, one byte of the database changed: the checksum catches it.
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(made.path) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            body = src.extractfile(member)
            assert body is not None
            raw = bytearray(body.read())
            if member.name.startswith("database/"):
                raw[200] ^= 0xFF
            dst.addfile(member, io.BytesIO(bytes(raw)))
    with pytest.raises(BackupError, match="corrupt"):
        read_manifest(tampered)

    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        tar.add(sqlite_workspace.settings.workspace / "kizuna.toml", arcname="kizuna.toml")
    with pytest.raises(BackupError, match="not a Kizuna backup"):
        restore(foreign, tmp_path / "y")

    # A restore never overwrites a live database without --force.
    with pytest.raises(BackupError, match="--force"):
        restore(made.path, sqlite_workspace.settings.workspace)


def test_backup_and_restore_from_the_command_line(
    sqlite_workspace: Context, tmp_path: Path
) -> None:
    runner = CliRunner()
    ws = str(sqlite_workspace.settings.workspace)
    out = runner.invoke(app, ["-w", ws, "backup", "--out", str(tmp_path / "b")])
    assert out.exit_code == 0, out.output
    archive = next((tmp_path / "b").glob("kizuna-backup-*.tar.gz"))
    done = runner.invoke(app, ["restore", str(archive), "--into", str(tmp_path / "new")])
    assert done.exit_code == 0, done.output
    assert "restored" in done.output
    again = runner.invoke(app, ["restore", str(archive), "--into", str(tmp_path / "new")])
    assert again.exit_code != 0
