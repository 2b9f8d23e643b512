"""Workers on separate "hosts" (Linux network namespaces) claim disjoint work on PostgreSQL.

Each worker process runs in its own network namespace, joined to this one by
a veth pair: it has its own network stack and reaches PostgreSQL and the
SMTP server only through its veth link, as a worker on another machine would
through the network. PostgreSQL here listens on 127.0.0.1 only (and other
tests share it), so a small TCP relay on the host ends of the veth links
carries the traffic to it instead of reconfiguring the server.

The proof: every journey step is done exactly once (one message per
customer, one ``sent`` ledger row per run), and both namespaces did some of
the work (the SMTP server saw both peers).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from tests.automation.smtp_sink import free_port
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

N = 200
JOURNEY = {
    "name": "netns",
    "holdout_percent": 0,
    "trigger": {"birthday": {}},
    "steps": [{"id": "greet", "action": "email", "subject": "おめでとう", "text": "{{ name }}様"}],
}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Namespaces:
    """Two namespaces, each linked to this one by a veth pair with a /30 subnet."""

    def __init__(self, tag: str, count: int = 2) -> None:
        self.names = [f"kzops-{tag}-{i}" for i in range(count)]
        base = 100 + os.getpid() % 100
        self.hosts = [f"10.{base}.{i}.1" for i in range(count)]
        self.peers = [f"10.{base}.{i}.2" for i in range(count)]
        self.links = [f"kzo{tag}{i}"[:15] for i in range(count)]

    def create(self) -> None:
        for name, link, host, peer in zip(
            self.names, self.links, self.hosts, self.peers, strict=True
        ):
            _ip("netns", "add", name)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("addr", "add", f"{host}/30", "dev", link)
            _ip("link", "set", link, "up")
            _ip("-n", name, "addr", "add", f"{peer}/30", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def delete(self) -> None:
        for name, link in zip(self.names, self.links, strict=True):
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


class Relay:
    """TCP relay from ``(host, port)`` listeners to one target, in a background event loop."""

    def __init__(self, listen: list[tuple[str, int]], target: tuple[str, int]) -> None:
        self.listen, self.target = listen, target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def start(self) -> None:
        self.thread.start()
        for host, port in self.listen:
            asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._handle, host, port), self.loop
            ).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class PeerSink:
    """An SMTP server that records each message's recipient and the peer that sent it."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.01)
        msg = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        with self.lock:
            self.got.append((str(msg["To"]), session.peer[0]))
        return "250 OK"


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")
    ns = Namespaces(str(os.getpid() % 1000))
    try:
        ns.create()
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        ns.delete()
        reason = getattr(exc, "stderr", "") or exc
        pytest.skip(f"cannot create network namespaces here: {reason}")
    yield ns
    ns.delete()


def seed(ctx: Context) -> None:
    today = local_date(datetime.now(UTC), ZoneInfo("Asia/Tokyo"))
    with ctx.engine.begin() as conn:
        for n in range(N):
            cid = add(conn, t.customers, external_id=f"n{n}", name=f"顧客{n}", email=f"n{n}@example.jp",
                      birthday=today.replace(year=1990))  # fmt: skip
            add(conn, t.consents, customer_id=cid, channel="email", granted=True,
                changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(JOURNEY), uow)
    journeys.set_status("netns", "active", uow)


def test_workers_in_separate_network_namespaces_claim_disjoint_work(
    workspace: Context, namespaces: Namespaces
) -> None:
    if workspace.engine.dialect.name != "postgresql":
        pytest.skip("several workers on several hosts is the PostgreSQL deployment")
    seed(workspace)
    db_url = workspace.engine.url
    pg_port, smtp_port = free_port(), free_port()
    relay = Relay(
        [(h, pg_port) for h in namespaces.hosts], (db_url.host or "127.0.0.1", db_url.port or 5432)
    )
    relay.start()
    sink = PeerSink()
    smtp = Controller(sink, hostname="0.0.0.0", port=smtp_port)
    smtp.start()
    procs = []
    try:
        for i, (name, host) in enumerate(zip(namespaces.names, namespaces.hosts, strict=True)):
            env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
            remote = db_url.set(host=host, port=pg_port).render_as_string(hide_password=False)
            env.update({"KIZUNA_DATABASE_URL": remote, "KIZUNA_SMTP_HOST": host,
                        "KIZUNA_SMTP_PORT": str(smtp_port), "NO_COLOR": "1"})  # fmt: skip
            procs.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        name,
                        sys.executable,
                        "-m",
                        "kizuna",
                        "-w",
                        str(workspace.settings.workspace),
                        "worker",
                        "--once",
                        "--batch",
                        "5",
                        "--id",
                        f"host{i}",
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        smtp.stop()
        relay.stop()

    recipients = Counter(to for to, _ in sink.got)
    assert len(recipients) == N and set(recipients.values()) == {1}, "every step exactly once"
    peers = Counter(peer for _, peer in sink.got)
    assert set(peers) == set(namespaces.peers), f"both hosts worked: {peers}"
    s, r = at.sends.c, at.journey_runs.c
    with workspace.engine.connect() as conn:
        sent = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(s.run_id))).where(
                s.status == "sent"
            )
        ).one()
        left = conn.execute(
            sa.select(sa.func.count()).where(r.status == "active", r.due_at <= datetime.now(UTC))
        ).scalar_one()
    assert tuple(sent) == (N, N)
    assert left == 0
