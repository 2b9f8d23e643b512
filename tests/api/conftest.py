"""An API client on a fresh workspace (SQLite and PostgreSQL) with members and keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.api.apiclient import Api, add_members, make_key

from kizuna.api import create_app
from kizuna.bootstrap import Context
from kizuna.services.programme import config


@pytest.fixture
def api(workspace: Context) -> Iterator[Api]:
    config.forget_cache()
    add_members(workspace, 5)
    keys = {s: make_key(workspace, s) for s in ("admin", "marketer", "analyst", "pos")}
    with TestClient(create_app(workspace), raise_server_exceptions=False) as client:
        yield Api(client, workspace, keys)
    config.forget_cache()
