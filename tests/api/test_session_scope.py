"""The dashboard session applies to dashboard paths only; API and operations paths skip it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kizuna.api import create_app
from kizuna.bootstrap import Context
from kizuna.web import mount
from kizuna.web.auth import SESSION_COOKIE
from kizuna.web.session_scope import sessionless


@pytest.mark.parametrize(
    ("path", "skips"),
    [
        ("/v1", True),
        ("/v1/members/M1", True),
        ("/healthz", True),
        ("/readyz", True),
        ("/metrics", True),
        ("/openapi.json", True),
        ("/v1x", False),
        ("/healthz-page", False),
        ("/", False),
        ("/login", False),
        ("/customers/C1", False),
        ("/static/kizuna.css", False),
        ("/unsubscribe/abc", False),
    ],
)
def test_only_api_and_operations_paths_skip_the_session(path: str, skips: bool) -> None:
    assert sessionless(path) is skips


def test_the_dashboard_still_sets_its_session_and_the_api_never_does(
    workspace: Context,
) -> None:
    app = create_app(workspace)
    mount(app, workspace)
    with TestClient(app) as client:
        login = client.get("/login")
        assert login.status_code == 200
        assert SESSION_COOKIE in login.headers.get("set-cookie", "")
        for path in ("/healthz", "/v1/members/M1", "/openapi.json"):
            r = client.get(path)  # the client sends the session cookie back
            assert "set-cookie" not in r.headers, path
