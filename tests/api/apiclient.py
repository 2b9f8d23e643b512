"""Helpers for API tests: members, keys and a client that sends them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api.auth import create_key
from kizuna.bootstrap import Context
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t


def add_members(ctx: Context, n: int, prefix: str = "M") -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    with ctx.engine.begin() as conn:
        conn.execute(
            sa.insert(t.customers),
            [
                {"external_id": x, "name": x, "signup_at": datetime(2025, 1, 1, tzinfo=UTC)}
                for x in ids
            ],
        )
    return ids


def make_key(ctx: Context, scope: str) -> str:
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        key = create_key(uow, scope, f"test-{scope}")
        uow.commit()
    return key


@dataclass
class Api:
    client: TestClient
    ctx: Context
    keys: dict[str, str]

    def headers(self, scope: str = "admin", key: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.keys[scope]}"}
        h["Idempotency-Key"] = key or uuid.uuid4().hex
        return h

    def post(self, path: str, body: object, scope: str = "admin", key: str | None = None) -> object:
        return self.client.post(path, json=body, headers=self.headers(scope, key))

    def get(self, path: str, scope: str = "admin", **params: object) -> object:
        return self.client.get(path, headers=self.headers(scope), params=params)
