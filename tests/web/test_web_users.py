"""Dashboard users: salted scrypt hashes, refused bad input, and the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kizuna.bootstrap import Context
from kizuna.cli import app
from kizuna.errors import Conflict, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.services.users import (
    CreateUser,
    authenticate,
    handle_create,
    hash_password,
    list_users,
    verify_password,
)


def test_hashes_are_salted_and_verify_only_the_right_password() -> None:
    first, second = hash_password("correct-horse"), hash_password("correct-horse")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("correct-horse", first) and verify_password("correct-horse", second)
    assert not verify_password("correct-hors", first)
    assert not verify_password("correct-horse", "garbage")


def test_users_are_created_once_and_authenticated(workspace: Context) -> None:
    uow = UnitOfWork(workspace.engine, workspace.settings)
    user = handle_create(CreateUser("yuki", "analyst", "long-enough-pw"), uow)
    assert user.role == "analyst" and not user.sees_personal_data
    with pytest.raises(Conflict):
        handle_create(CreateUser("yuki", "admin", "long-enough-pw"), uow)
    for bad in (
        CreateUser("yuki 2", "admin", "long-enough-pw"),
        CreateUser("ken", "owner", "long-enough-pw"),
        CreateUser("ken", "admin", "short"),
    ):
        with pytest.raises(ValidationError):
            handle_create(bad, uow)
    assert authenticate(workspace.engine, "yuki", "wrong-password") is None
    assert authenticate(workspace.engine, "nobody", "long-enough-pw") is None
    logged = authenticate(workspace.engine, "yuki", "long-enough-pw")
    assert logged is not None and logged.last_login_at is not None
    assert [u.username for u in list_users(workspace.engine)] == ["yuki"]


def test_the_cli_creates_and_lists_users(sqlite_workspace: Context) -> None:
    ws = str(sqlite_workspace.settings.workspace)
    runner = CliRunner()
    created = runner.invoke(
        app,
        ["-w", ws, "user", "create", "hana", "--role", "marketer", "--password-stdin"],
        input="a-good-long-password\n",
    )
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["-w", ws, "user", "list"])
    assert "hana" in listed.output and "marketer" in listed.output
    assert "a-good-long-password" not in created.output + listed.output
    assert authenticate(sqlite_workspace.engine, "hana", "a-good-long-password") is not None
