"""User management through HTTP: admins create users, change roles, disable and reset
passwords (audited, never with the password); others are refused; the last admin stays."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from tests.web.webclient import client, csrf_of, login

from kizuna.bootstrap import Context
from kizuna.services.users import audit_log, authenticate, list_users

pytestmark = pytest.mark.anyio


def _id(ctx: Context, name: str) -> int:
    return next(u.id for u in list_users(ctx.engine) if u.username == name)


async def test_admins_manage_users(dashboard: FastAPI, workspace: Context) -> None:
    async with client(dashboard) as admin, client(dashboard) as other:
        http = admin
        http.cookies.set("kizuna_lang", "en")
        await login(http, "admin")
        page = (await http.get("/users")).text
        assert 'data-user="marketer"' in page
        token = csrf_of(page)
        made = await http.post(
            "/users",
            data={
                "csrf_token": token,
                "username": "hana",
                "role": "analyst",
                "password": "long-enough-pw",
            },
        )
        assert made.status_code == 303
        short = await http.post(
            "/users",
            data={"csrf_token": token, "username": "x", "role": "analyst", "password": "short"},
        )
        assert short.status_code == 422 and "too short" in short.text
        hana = _id(workspace, "hana")
        await login(other, "hana", "long-enough-pw")
        assert (await other.get("/programme")).status_code == 200
        assert (await other.get("/users")).status_code == 403
        await http.post(f"/users/{hana}", data={"csrf_token": token, "role": "marketer"})
        assert (await other.get("/programme/edit")).status_code == 200  # the new role, at once
        await http.post(f"/users/{hana}", data={"csrf_token": token, "disabled": "1"})
        assert (await other.get("/programme")).status_code == 303  # disabled: back to login
        await http.post(f"/users/{hana}", data={"csrf_token": token, "disabled": "0"})
        await http.post(
            f"/users/{hana}/password", data={"csrf_token": token, "password": "another-long-pw"}
        )
        assert authenticate(workspace.engine, "hana", "another-long-pw") is not None
        assert authenticate(workspace.engine, "hana", "long-enough-pw") is None
        last = await http.post(
            f"/users/{_id(workspace, 'admin')}", data={"csrf_token": token, "role": "analyst"}
        )
        assert last.status_code == 422 and "last enabled admin" in last.text
        rows = (await http.get("/users.csv")).text
        assert "hana,marketer" in rows
    log = audit_log(workspace.engine)
    assert {"user_create", "user_change", "user_password"} <= {a["action"] for a in log}
    assert all("password" not in str(a["detail"]) or a["action"] == "user_password" for a in log)
    assert not any("another-long-pw" in str(a["detail"]) for a in log)


async def test_marketers_and_analysts_cannot_manage_users(
    dashboard: FastAPI, workspace: Context
) -> None:
    for role in ("marketer", "analyst"):
        async with client(dashboard) as http:
            token = await login(http, role)
            assert (await http.get("/users")).status_code == 403
            response = await http.post(
                "/users",
                data={
                    "csrf_token": token,
                    "username": "evil",
                    "role": "admin",
                    "password": "long-enough-pw",
                },
            )
            assert response.status_code == 403
    assert "evil" not in {u.username for u in list_users(workspace.engine)}
