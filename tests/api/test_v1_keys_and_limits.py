"""API keys over HTTP (admin only) and per-key rate limits shared by every process."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from sqlalchemy import event as sa_event
from tests.api.apiclient import Api
from tests.api.test_v1_customers import PROBLEM, walk

from kizuna.api import auth, ratelimit
from kizuna.bootstrap import Context, make_engine
from kizuna.services.users import audit_log


def test_an_admin_creates_lists_and_revokes_keys(api: Api) -> None:
    created = api.post("/v1/api-keys", {"scope": "analyst", "name": "BI tool"})
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith(f"kz_{new['prefix']}_") and new["revoked_at"] is None
    api.keys["new"] = new["key"]
    assert api.get("/v1/customers", scope="new").status_code == 200
    listed = walk(api, "/v1/api-keys", limit=2)
    assert [k["prefix"] for k in listed][-1] == new["prefix"]
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    revoked = api.client.delete(f"/v1/api-keys/{new['prefix']}", headers=api.headers())
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = api.get("/v1/customers", scope="new")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    active = walk(api, "/v1/api-keys", revoked="false")
    assert new["prefix"] not in {k["prefix"] for k in active}
    audit = [(a["action"], a["detail"].get("prefix")) for a in audit_log(api.ctx.engine)]
    assert ("api_key_create", new["prefix"]) in audit
    assert ("api_key_revoke", new["prefix"]) in audit


def test_key_management_is_for_admins_and_checks_its_input(api: Api) -> None:
    for scope in ("marketer", "analyst", "pos"):
        r = api.post("/v1/api-keys", {"scope": "admin"}, scope=scope)
        assert r.status_code == 403 and "manage API keys" in r.json()["detail"]
    bad = api.post("/v1/api-keys", {"scope": "root"})
    assert bad.status_code == 422 and "scope" in bad.json()["detail"]
    assert api.get("/v1/api-keys/0000000z").status_code == 422
    missing = api.get("/v1/api-keys/00000000")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


def _limited(api: Api, limits: str) -> None:
    api.ctx.settings = dataclasses.replace(api.ctx.settings, api_rate_limits=limits)


def test_a_key_over_its_limit_gets_429_with_retry_after(api: Api) -> None:
    _limited(api, "analyst=3,admin=0")
    codes = [api.get("/v1/customers", scope="analyst").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api.get("/v1/customers", scope="analyst")
    assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
    assert int(r.headers["retry-after"]) >= 1
    assert "api_rate_limits" in r.json()["detail"]
    # Another key and an unlimited scope are unaffected.
    assert api.get("/v1/customers", scope="admin").status_code == 200


def test_the_bucket_refills_at_the_configured_rate(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        took = [ratelimit.take(conn, "k1", 60, now=1000.0).allowed for _ in range(61)]
        assert took == [True] * 60 + [False]
        assert ratelimit.take(conn, "k1", 60, now=1000.5).retry_after == 1
        assert ratelimit.take(conn, "k1", 60, now=1002.0).allowed  # 2 tokens back
        assert ratelimit.take(conn, "k1", 60, now=1002.0).allowed
        assert not ratelimit.take(conn, "k1", 60, now=1002.0).allowed
        # A process whose clock is behind never takes tokens back or adds any.
        assert not ratelimit.take(conn, "k1", 60, now=900.0).allowed


def test_leases_save_writes_but_never_admit_more_than_the_limit(workspace: Context) -> None:
    settings = dataclasses.replace(workspace.settings, api_rate_limits="analyst=120")
    assert ratelimit.lease_size(120) == 2 and ratelimit.lease_size(10**6) == ratelimit.MAX_LEASE
    admitted = 0
    started = time.monotonic()
    for _ in range(125):
        try:
            ratelimit.check(workspace.engine, settings, "lease", "analyst")
            admitted += 1
        except ratelimit.RateLimited:
            pass
    # The bucket refills at 2 tokens/s while the loop runs (longer on a busy
    # machine): never fewer than the burst, never more than burst + refill.
    refilled = int((time.monotonic() - started) * 120 / 60)
    assert 120 <= admitted <= 120 + refilled
    with workspace.engine.begin() as conn:
        # A lease of 2 when 2 are left, 1 when only 1 is: the bucket empties exactly.
        assert ratelimit.take(conn, "odd", 3, now=0.0, want=2).taken == 2
        assert ratelimit.take(conn, "odd", 3, now=0.0, want=2).taken == 1
        assert not ratelimit.take(conn, "odd", 3, now=0.0, want=2).allowed


def test_concurrent_processes_share_one_bucket(workspace: Context) -> None:
    """Eight connections (as eight API processes would) spend exactly the limit."""
    if workspace.settings.is_sqlite:
        pytest.skip("SQLite has one writer; the row lock race is PostgreSQL's")
    engines = [make_engine(workspace.settings.database_url) for _ in range(8)]
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer(engine: object) -> None:
        for _ in range(10):
            with engine.begin() as conn:  # type: ignore[attr-defined]
                ok = ratelimit.take(conn, "shared", 25, now=5000.0).allowed
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=hammer, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in engines:
        e.dispose()
    assert len(allowed) == 80 and sum(allowed) == 25


def test_a_bucket_created_between_two_statements_is_spent_from_not_refused(
    workspace: Context,
) -> None:
    """The first burst on a new key: one request's UPDATE finds no bucket, another
    request creates it, and the first must then spend from it rather than answer 429."""
    if workspace.settings.is_sqlite:
        pytest.skip("SQLite has one writer; the row lock race is PostgreSQL's")
    other = make_engine(workspace.settings.database_url)
    fired: list[str] = []

    def create_bucket_meanwhile(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if not fired and statement.lstrip().upper().startswith("UPDATE"):
            fired.append(statement)
            with other.begin() as c2:
                assert ratelimit.take(c2, "race", 100, now=10.0).allowed

    try:
        with workspace.engine.begin() as conn:
            sa_event.listen(conn, "after_cursor_execute", create_bucket_meanwhile)
            decision = ratelimit.take(conn, "race", 100, now=10.0)
    finally:
        other.dispose()
    assert fired and decision.allowed and decision.remaining == 98


def test_scope_permissions_are_what_the_docs_promise() -> None:
    assert "personal" not in auth.PERMISSIONS["analyst"]
    assert auth.PERMISSIONS["analyst"] == {"read", "member"}
    assert {"write", "ingest", "score"} <= auth.PERMISSIONS["marketer"]
    assert "keys" not in auth.PERMISSIONS["marketer"]
    assert not {"read", "write", "ingest"} & auth.PERMISSIONS["pos"]
    assert "member" in auth.PERMISSIONS["pos"]  # the member summary, for the till
