"""`kizuna serve`: API, dashboard and (on SQLite) the journey worker in one real process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from tests.browser import free_port
from tests.helpers import CUSTOMERS_CSV, write
from tests.test_cli import kizuna

from kizuna.store import tables


def test_serve_runs_api_dashboard_and_worker_in_one_process(tmp_path: Path) -> None:
    assert kizuna("init", "shop", cwd=tmp_path).returncode == 0
    shop = tmp_path / "shop"
    write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    assert kizuna("import", "customers", str(tmp_path / "customers.csv"), cwd=shop).returncode == 0
    write(tmp_path / "tokyo.yaml", "name: tokyo\nrule: {field: region, value: 東京都}\n")
    created = kizuna("segment", "create", str(tmp_path / "tokyo.yaml"), cwd=shop)
    assert created.returncode == 0, created.stderr
    write(
        tmp_path / "welcome.yaml",
        (
            "name: welcome\nholdout_percent: 0\ntrigger: {segment_entry: tokyo}\n"
            "steps:\n  - {id: mark, action: set_attribute, key: welcomed, value: 'yes'}\n"
        ),
    )
    for args in (
        ("journey", "create", str(tmp_path / "welcome.yaml")),
        ("journey", "activate", "welcome"),
    ):
        result = kizuna(*args, cwd=shop)
        assert result.returncode == 0, result.stderr
    # A new Tokyo customer arrives after the journey is live.
    write(tmp_path / "more.csv", "customer_id,name,region\nC9,新しい 人,東京都\n")
    assert kizuna("import", "customers", str(tmp_path / "more.csv"), cwd=shop).returncode == 0

    port = free_port()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("KIZUNA_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "kizuna", "-w", str(shop), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"]
        login = httpx.get(f"{base}/login", headers={"Accept-Language": "ja"})
        assert login.status_code == 200 and "<form" in login.text
        assert httpx.get(f"{base}/v1/members/C1").status_code == 401  # the API wants a key

        engine = sa.create_engine(f"sqlite:///{shop / 'kizuna.sqlite'}")
        c = tables.customers
        attrs = None
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                attrs = conn.execute(
                    sa.select(c.c.attributes).where(c.c.external_id == "C9")
                ).scalar_one()
            if attrs and attrs.get("welcomed") == "yes":
                break
            time.sleep(0.5)
        engine.dispose()
        assert attrs and attrs.get("welcomed") == "yes", (
            "the in-process worker did not run the journey"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
