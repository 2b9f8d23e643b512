"""Fixtures of the dashboard tests."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from tests.web.webclient import add_users

from kizuna.bootstrap import Context
from kizuna.services import users
from kizuna.web import create_dashboard_app


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests hash with a small scrypt cost; the stored hash names its cost, so
    verification follows it. Production keeps :data:`users.SCRYPT_N`."""
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)


@pytest.fixture
def dashboard(workspace: Context) -> FastAPI:
    """The dashboard app over a fresh workspace with one user per role."""
    add_users(workspace)
    return create_dashboard_app(workspace)


@pytest.fixture
def sqlite_dashboard(sqlite_workspace: Context) -> FastAPI:
    """The dashboard on SQLite only, for behaviour that no database affects."""
    add_users(sqlite_workspace)
    return create_dashboard_app(sqlite_workspace)
