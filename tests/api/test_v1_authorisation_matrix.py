"""Every scope × every ``/v1`` operation: refused (403) exactly where the product says so.

The rules are the product's, written out here rather than read from the
code that enforces them:

* an **admin** key may call everything;
* an **analyst** key reads: every GET, and the read-only POSTs (segment
  preview, journey dry runs); every other call is refused;
* a **POS** key works the till: quote, earn, refund, redeem (and confirm or
  cancel a redemption, redeem a reward), capture a referral code at sign-up
  and hand in a review; nothing else — not even reads;
* a **marketer** key runs the programme and the campaigns but does not ring
  up sales (earn, refund, redeem, batch loads);
* API keys are managed by admin keys only.

Operations are walked from the published OpenAPI, so a new route is covered
the day it is added (and must fit one of the rules). No call may answer 5xx.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from tests.api.apiclient import add_members, make_key

from kizuna.api import create_app
from kizuna.bootstrap import Context

SCOPES = ("admin", "marketer", "analyst", "pos")
READ_ONLY_POSTS = {
    ("POST", "/v1/segments/preview"),
    ("POST", "/v1/journeys/dry-run"),
    ("POST", "/v1/journeys/{name}/dry-run"),
}
TILL = {
    ("POST", "/v1/quotes"),
    ("POST", "/v1/orders"),
    ("POST", "/v1/orders/{order_id}/refunds"),
    ("POST", "/v1/members/{member_id}/redemptions"),
    ("POST", "/v1/redemptions/{redemption_id}/confirm"),
    ("POST", "/v1/redemptions/{redemption_id}/cancel"),
    ("POST", "/v1/members/{member_id}/rewards/{reward_id}"),
}
#: A till shows the member's balance and tier before earning or redeeming:
#: the summary, not the ledger.
POS_ALSO = {
    ("POST", "/v1/referrals"),
    ("POST", "/v1/reviews"),
    ("GET", "/v1/members/{member_id}"),
}
SALES = (TILL - {("POST", "/v1/quotes")}) | {("POST", "/v1/orders:batch")}


def refused(scope: str, method: str, path: str) -> bool:
    """Whether the product refuses ``scope`` this operation."""
    if scope == "admin":
        return False
    if path.startswith("/v1/api-keys"):
        return True  # keys are managed by admins only
    if scope == "analyst":
        return method != "GET" and (method, path) not in READ_ONLY_POSTS
    if scope == "pos":
        return (method, path) not in TILL | POS_ALSO
    return (method, path) in SALES


def test_every_scope_gets_exactly_what_it_should_on_every_operation(
    sqlite_workspace: Context,
) -> None:
    add_members(sqlite_workspace, 2)
    app = create_app(sqlite_workspace)
    client = TestClient(app)
    keys = {scope: make_key(sqlite_workspace, scope) for scope in SCOPES}
    operations = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 80  # every area's resources are published
    wrong: list[str] = []
    for method, path in operations:
        url = re.sub(r"\{[^}]+\}", "x1", path)
        for scope, key in keys.items():
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}
            body = None if method in ("GET", "DELETE") else {}
            response = client.request(method, url, headers=headers, json=body)
            if response.status_code >= 500:
                wrong.append(f"{scope} {method} {path}: {response.status_code}")
            elif (response.status_code == 403) != refused(scope, method, path):
                wrong.append(f"{scope} {method} {path}: got {response.status_code}")
            elif response.status_code == 403:
                problem = response.json()
                assert response.headers["content-type"].startswith("application/problem+json")
                assert scope in problem["detail"] or "scope" in problem["detail"], problem
    assert wrong == []


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer kz_nottherealkey", "Basic abc"])
def test_a_missing_or_malformed_key_is_401_on_every_operation(
    sqlite_workspace: Context, header: str
) -> None:
    app = create_app(sqlite_workspace)
    client = TestClient(app)
    wrong = []
    for path, item in app.openapi()["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method in item:
            url = re.sub(r"\{[^}]+\}", "x1", path)
            response = client.request(
                method.upper(), url, headers={"Authorization": header} if header else {}
            )
            if response.status_code != 401:
                wrong.append(f"{method} {path}: {response.status_code}")
    assert wrong == []
