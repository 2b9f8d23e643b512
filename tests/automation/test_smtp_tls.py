"""Email over STARTTLS and implicit TLS with authentication, against a real aiosmtpd server."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from tests.automation.smtp_sink import Sink, free_port
from tests.helpers import add

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, trusted below through SSL_CERT_FILE."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _authenticator(
    _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"kizuna",
        b"s3cret",
    )
    return AuthResult(success=ok, handled=False)


class TLSController(Controller):
    def __init__(self, *args: Any, implicit: ssl.SSLContext | None = None, **kw: Any) -> None:
        super().__init__(*args, ssl_context=implicit, **kw)


@pytest.fixture(params=["starttls", "ssl"])
def tls_server(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Sink, int, str]]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test CA only
    sink, port = Sink(), free_port()
    mode = request.param
    controller = TLSController(
        sink,
        hostname="localhost",
        port=port,
        implicit=context if mode == "ssl" else None,
        tls_context=context if mode == "starttls" else None,
        require_starttls=mode == "starttls",
        authenticator=_authenticator,
        auth_required=True,
        # aiosmtpd cannot tell that an implicit-TLS socket is encrypted, so it
        # would hide AUTH there; the client still speaks TLS from the first byte.
        auth_require_tls=mode == "starttls",
    )
    controller.start()
    try:
        yield sink, port, mode
    finally:
        controller.stop()


def _seed(ctx: Context) -> None:
    today = local_date(datetime.now(UTC), ZoneInfo("Asia/Tokyo"))
    with ctx.engine.begin() as conn:
        cid = add(conn, t.customers, external_id="tls", name="山田", email="tls@example.jp",
                  birthday=today.replace(year=1990))  # fmt: skip
        add(conn, t.consents, customer_id=cid, channel="email", granted=True,
            changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
    doc = {"name": "bd", "holdout_percent": 0, "trigger": {"birthday": {}},
           "steps": [{"id": "m", "action": "email", "subject": "お誕生日", "text": "{{ name }}様"}]}  # fmt: skip
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(doc), uow)
    journeys.set_status("bd", "active", uow)


def _statuses(ctx: Context) -> list[tuple[str, str | None]]:
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(at.sends.c.status, at.sends.c.reason))]


def test_mail_goes_out_encrypted_and_authenticated(
    sqlite_workspace: Context, tls_server: tuple[Sink, int, str]
) -> None:
    sink, port, mode = tls_server
    _seed(sqlite_workspace)
    settings = replace(sqlite_workspace.settings, smtp_host="localhost", smtp_port=port,
                       smtp_tls=mode, smtp_user="kizuna", smtp_password="s3cret")  # fmt: skip
    run_worker(Context(settings), once=True, programme_jobs_every_seconds=None)
    assert [str(m["Subject"]) for m in sink.messages] == ["お誕生日"], _statuses(sqlite_workspace)
    assert _statuses(sqlite_workspace) == [("sent", None)]


def test_a_wrong_password_is_a_dead_letter_not_a_silent_drop(
    sqlite_workspace: Context, tls_server: tuple[Sink, int, str]
) -> None:
    sink, port, mode = tls_server
    _seed(sqlite_workspace)
    settings = replace(sqlite_workspace.settings, smtp_host="localhost", smtp_port=port,
                       smtp_tls=mode, smtp_user="kizuna", smtp_password="wrong")  # fmt: skip
    run_worker(Context(settings), once=True, programme_jobs_every_seconds=None)
    assert sink.messages == []
    ((status, reason),) = _statuses(sqlite_workspace)
    assert status == "dead" and "535" in (reason or "")
