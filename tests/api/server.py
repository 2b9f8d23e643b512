"""A real uvicorn process serving a workspace, for concurrency and crash tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``uvicorn --factory kizuna.api:app_from_env`` on loopback; start, kill, restart."""

    def __init__(self, workspace: Path, workers: int = 1) -> None:
        self.workspace = workspace
        self.workers = workers
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "KIZUNA_WORKSPACE": str(self.workspace)}
        env.pop("KIZUNA_DATABASE_URL", None)
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "kizuna.api:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(self.workers),
        ]
        self.proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        deadline = time.monotonic() + 120  # a shared, busy machine starts uvicorn slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("uvicorn did not start within 120 s")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handlers, no flushing."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None
