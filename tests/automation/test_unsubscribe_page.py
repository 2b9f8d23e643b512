"""The unsubscribe link of a journey email, followed over real HTTP (ASGI app, no login)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.helpers import add

from kizuna.api import create_app
from kizuna.automation.channels.email import has_consent
from kizuna.automation.unsubscribe import unsubscribe_url
from kizuna.bootstrap import Context
from kizuna.store import tables as t


def _customer(ctx: Context, language: str | None) -> int:
    with ctx.engine.begin() as conn:
        cid = add(conn, t.customers, external_id=f"u-{language}", name="u", email="u@example.jp",
                  language=language)  # fmt: skip
        add(conn, t.consents, customer_id=cid, channel="email", granted=True,
            changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
    return cid


def _consent(ctx: Context, cid: int) -> bool:
    with ctx.engine.connect() as conn:
        return has_consent(conn, cid, "email")


def test_the_link_asks_first_and_the_button_unsubscribes_in_the_customers_language(
    workspace: Context,
) -> None:
    cid = _customer(workspace, "ja")
    link = urlsplit(unsubscribe_url(workspace.settings, cid))
    client = TestClient(create_app(workspace))
    page = client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200 and "配信を停止" in page.text
    assert _consent(workspace, cid)  # a GET (a link scanner) changes nothing
    done = client.post(f"{link.path}?{link.query}")
    assert done.status_code == 200 and "配信を停止しました" in done.text
    assert not _consent(workspace, cid)
    again = client.post(f"{link.path}?{link.query}")  # a second click is harmless
    assert again.status_code == 200 and not _consent(workspace, cid)
    english = client.get(f"{link.path}?{link.query}&lang=en")
    assert "Unsubscribe from emails" in english.text


def test_one_click_post_from_the_mail_client_needs_no_session(workspace: Context) -> None:
    cid = _customer(workspace, "en")
    link = urlsplit(unsubscribe_url(workspace.settings, cid))
    client = TestClient(create_app(workspace))
    done = client.post(
        f"{link.path}?{link.query}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert not _consent(workspace, cid)


def test_a_tampered_link_is_refused_with_a_page_and_changes_nothing(workspace: Context) -> None:
    cid = _customer(workspace, "ja")
    link = urlsplit(unsubscribe_url(workspace.settings, cid))
    forged = link.query.replace(f"token={cid}.", f"token={cid + 1}.")
    client = TestClient(create_app(workspace))
    for response in (client.get(f"/unsubscribe?{forged}"), client.post(f"/unsubscribe?{forged}")):
        assert response.status_code == 400 and "無効" in response.text
    assert client.post("/unsubscribe?token=garbage").status_code == 400
    assert client.get("/unsubscribe").status_code == 400
    assert _consent(workspace, cid)
    with workspace.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.consents)).scalar_one() == 1
