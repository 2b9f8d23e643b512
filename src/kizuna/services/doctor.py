"""``kizuna doctor``: check a deployment and say what to fix, one line per problem.

Each check returns ok, warn (works, but worth a look) or fail (something a
user will notice: mail not sent, pages erroring, steps not run). A broken
setting does not stop the other checks: the bad value is reported and the
default stands in for it, so one run names every problem at once.

Workers prove they are alive through :class:`Heartbeat`: each worker loop
upserts its row in ``worker_heartbeats`` every few seconds (leases on
journey runs only show workers that happened to have work).
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.bootstrap import make_engine, safe_url
from kizuna.config import CONFIG_FILE, SETTINGS_BY_NAME, Settings, load_settings
from kizuna.errors import ConfigError, KizunaError
from kizuna.store import operations_tables as ops
from kizuna.store import schema

#: Clock skew between this machine and the database that breaks due times.
SKEW_WARN_SECONDS = 2.0
SKEW_FAIL_SECONDS = 30.0
#: A due step waiting longer than this means workers are too few or stuck.
LAG_WARN = timedelta(minutes=10)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str


def _settings(workspace: str | Path | None, checks: list[Check]) -> Settings | None:
    """Settings with every bad value reported and replaced by its default."""
    overrides: dict[str, Any] = {}
    if isinstance(workspace, str) and "://" in workspace:
        overrides["database_url"] = workspace
        workspace = None
    for _ in range(len(SETTINGS_BY_NAME) + 1):
        try:
            settings = load_settings(workspace, overrides=overrides)
            break
        except ConfigError as exc:
            match = re.match(r"setting (\w+) from ", str(exc))
            if not match or match.group(1) in overrides:
                checks.append(Check("settings", "fail", str(exc)))
                return None
            name = match.group(1)
            checks.append(Check(f"setting {name}", "fail", f"{exc}; fix it in kizuna.toml or env"))
            overrides[name] = SETTINGS_BY_NAME[name].default
    else:  # pragma: no cover - every setting broken at once
        return None
    ws_has_config = (settings.workspace / CONFIG_FILE).exists()
    if settings.is_sqlite and not ws_has_config:
        checks.append(
            Check(
                "workspace",
                "fail",
                f"{settings.workspace} is not a Kizuna workspace (no {CONFIG_FILE}); "
                "pass --workspace or run `kizuna init`",
            )
        )
    return settings


def _sanity(s: Settings) -> list[Check]:
    out: list[Check] = []
    _name, address = parseaddr(s.email_from)
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", address or ""):
        out.append(
            Check(
                "setting email_from",
                "fail",
                f"{s.email_from!r} is not an email address; set e.g. 'Shop <news@example.jp>'",
            )
        )
    elif address.endswith("@localhost"):
        out.append(
            Check(
                "setting email_from",
                "warn",
                f"{address} is the default; real mail servers refuse or spam-file it — "
                "set email_from to an address of your domain",
            )
        )
    url = urlparse(s.public_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        out.append(
            Check(
                "setting public_url",
                "fail",
                f"{s.public_url!r} is not an http(s) URL; unsubscribe links would not work",
            )
        )
    if not s.secret_key:
        secret_file = s.workspace / ".secret_key"
        if not s.is_sqlite:
            out.append(
                Check(
                    "setting secret_key",
                    "warn",
                    "empty: each dashboard host makes its own key, so sessions do not carry "
                    "across processes/hosts; set KIZUNA_SECRET_KEY to the same random value "
                    "everywhere",
                )
            )
        elif secret_file.exists() and secret_file.stat().st_mode & 0o077:
            out.append(
                Check(
                    "setting secret_key",
                    "fail",
                    f"{secret_file} is readable by other users; chmod 600 it",
                )
            )
    if not out:
        out.append(Check("settings", "ok", "secret, sender address and public URL look right"))
    return out


def _database(s: Settings) -> tuple[list[Check], sa.Engine | None]:
    try:
        engine = make_engine(s.database_url)
        if engine.dialect.name == "postgresql":
            engine.dispose()
            engine = sa.create_engine(
                s.database_url,
                connect_args={"options": "-c timezone=UTC", "connect_timeout": 5},
            )
    except KizunaError as exc:
        return [Check("database", "fail", str(exc))], None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        current = schema.current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", exc)
        reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        return [
            Check(
                "database",
                "fail",
                f"cannot reach {safe_url(s.database_url)}: {reason}; "
                "check KIZUNA_DATABASE_URL, the server and the network",
            )
        ], None
    head = schema.head_revision()
    if current is None:
        return [
            Check(
                "database",
                "fail",
                f"{safe_url(s.database_url)} is reachable but has no Kizuna schema; "
                "run `kizuna db upgrade`",
            )
        ], engine
    if current != head:
        return [
            Check(
                "database",
                "fail",
                f"schema at revision {current}, this Kizuna needs {head}: "
                "run `kizuna db upgrade` (after a backup)",
            )
        ], engine
    return [
        Check("database", "ok", f"{safe_url(s.database_url)} reachable, schema at head {head}")
    ], engine


def _clock(s: Settings, engine: sa.Engine | None) -> list[Check]:
    out = [Check("timezone", "ok", f"workspace timezone {s.timezone}")]
    if engine is None or engine.dialect.name != "postgresql":
        return out
    with engine.connect() as conn:
        before = time.time()
        db_now = conn.execute(sa.text("SELECT extract(epoch from clock_timestamp())")).scalar_one()
        after = time.time()
    skew = float(db_now) - (before + after) / 2
    status = (
        "fail"
        if abs(skew) > SKEW_FAIL_SECONDS
        else "warn"
        if abs(skew) > SKEW_WARN_SECONDS
        else "ok"
    )
    message = f"database clock is {skew:+.1f} s from this machine's"
    if status != "ok":
        message += "; run NTP (chrony/systemd-timesyncd) on both, due times depend on it"
    out.append(Check("clock", status, message))
    return out


def check_smtp(s: Settings, timeout: float = 5.0) -> Check:
    """Connect and say EHLO (STARTTLS/SSL as configured), within ``timeout`` seconds."""
    where = f"{s.smtp_host}:{s.smtp_port}"
    try:
        client: smtplib.SMTP
        if s.smtp_tls == "ssl":
            client = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
        try:
            code, _ = client.ehlo()
            if code != 250:
                return Check("smtp", "fail", f"{where} answered EHLO with {code}")
            if s.smtp_tls == "starttls" and not client.has_extn("starttls"):
                return Check(
                    "smtp",
                    "fail",
                    f"{where} does not offer STARTTLS; set smtp_tls=none or ssl, or fix the server",
                )
        finally:
            try:
                client.quit()
            except smtplib.SMTPException:
                client.close()
    except (OSError, smtplib.SMTPException) as exc:
        return Check(
            "smtp",
            "fail",
            f"cannot talk to SMTP at {where}: {exc or type(exc).__name__}; "
            "check smtp_host/smtp_port and that the server is up",
        )
    return Check("smtp", "ok", f"{where} answers EHLO")


def _workers(engine: sa.Engine | None, stale_seconds: float, now: datetime) -> list[Check]:
    if engine is None:
        return []
    from kizuna.store import automation_tables as at

    h, r, j = ops.worker_heartbeats.c, at.journey_runs.c, at.journeys.c
    with engine.connect() as conn:
        beats = conn.execute(sa.select(h.worker_id, h.seen_at)).all()
        oldest_due = conn.execute(
            sa.select(sa.func.min(r.due_at))
            .select_from(at.journey_runs.join(at.journeys, j.id == r.journey_id))
            .where(r.status == "active", r.due_at <= now, j.status == "active")
        ).scalar_one()
        active = conn.execute(
            sa.select(sa.func.count()).select_from(at.journeys).where(j.status == "active")
        ).scalar_one()
    if isinstance(oldest_due, str):
        oldest_due = datetime.fromisoformat(oldest_due).replace(tzinfo=UTC)
    alive = [b for b in beats if (now - b.seen_at).total_seconds() <= stale_seconds]
    stale = [b for b in beats if b not in alive]
    out: list[Check] = []
    if alive:
        out.append(Check("workers", "ok", f"{len(alive)} worker(s) alive"))
    elif active:
        out.append(
            Check(
                "workers",
                "fail",
                f"{active} active journey(s) but no worker seen in {stale_seconds:.0f} s; "
                "start `kizuna worker` (or `kizuna serve`, which runs one)",
            )
        )
    else:
        out.append(Check("workers", "warn", "no worker running (no active journeys either)"))
    if stale:
        names = ", ".join(b.worker_id for b in stale[:5])
        out.append(Check("workers", "warn", f"{len(stale)} worker(s) stopped answering: {names}"))
    if oldest_due is not None and now - oldest_due > LAG_WARN:
        minutes = (now - oldest_due).total_seconds() / 60
        out.append(
            Check(
                "queue",
                "warn",
                f"the oldest due journey step has waited {minutes:.0f} min; "
                "add workers or look for errors in their logs",
            )
        )
    return out


def diagnose(
    workspace: str | Path | None,
    *,
    smtp_timeout: float = 5.0,
    worker_stale_seconds: float = 120.0,
    now: datetime | None = None,
) -> list[Check]:
    """Every check, in the order a person would fix them."""
    now = now or datetime.now(UTC)
    checks: list[Check] = []
    settings = _settings(workspace, checks)
    if settings is None:
        return checks
    checks += _sanity(settings)
    db_checks, engine = _database(settings)
    checks += db_checks
    try:
        checks += _clock(settings, engine)
        checks.append(check_smtp(settings, smtp_timeout))
        migrated = any(c.name == "database" and c.status == "ok" for c in db_checks)
        checks += _workers(engine if migrated else None, worker_stale_seconds, now)
    finally:
        if engine is not None:
            engine.dispose()
    if not any(c.name == "timezone" for c in checks):
        checks.append(Check("timezone", "ok", settings.timezone))
    return checks


class Heartbeat:
    """A worker's row in ``worker_heartbeats``, refreshed at most every ``every`` seconds.

    Failing to write it must never stop the worker (SQLite may be busy), so
    errors are swallowed; the next loop tries again.
    """

    def __init__(self, engine: sa.Engine, worker_id: str, every: float = 10.0) -> None:
        self.engine = engine
        self.worker_id = worker_id[:64]
        self.every = every
        self.started_at = datetime.now(UTC)
        self._last = float("-inf")

    def beat(self, claimed: int) -> None:
        if time.monotonic() - self._last < self.every:
            return
        now = datetime.now(UTC)
        values = {
            "worker_id": self.worker_id,
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": self.started_at,
            "seen_at": now,
            "claimed": claimed,
        }
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(ops.worker_heartbeats).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["worker_id"], set_={"seen_at": now, "claimed": claimed}
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt)
            self._last = time.monotonic()
        except sa.exc.SQLAlchemyError:
            pass

    def stop(self) -> None:
        """A clean stop removes the row, so doctor does not report the worker as dead."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.delete(ops.worker_heartbeats).where(
                        ops.worker_heartbeats.c.worker_id == self.worker_id
                    )
                )
        except sa.exc.SQLAlchemyError:
            pass
