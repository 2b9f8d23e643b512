"""Helpers for the dashboard tests: users of every role and logged-in HTTP clients."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from kizuna.bootstrap import Context
from kizuna.services.uow import UnitOfWork
from kizuna.services.users import CreateUser, handle_create

PASSWORD = "correct-horse-battery"
ROLES = ("admin", "marketer", "analyst")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_users(ctx: Context) -> None:
    """One user per role, named after the role."""
    for role in ROLES:
        handle_create(CreateUser(role, role, PASSWORD), UnitOfWork(ctx.engine, ctx.settings))


def client(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token for later POSTs."""
    page = await http.get("/login")
    response = await http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
    )
    assert response.status_code == 303, response.text
    home = await http.get("/data")
    return csrf_of(home.text)
