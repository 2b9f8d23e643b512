"""The webhook channel: a JSON POST signed with HMAC-SHA256.

The receiver checks ``X-Kizuna-Signature: sha256=<hex>`` over
``<timestamp>.<body>`` with the shared secret, and can drop repeats by
``Idempotency-Key`` (the send ledger's key), since a crash right after the
call can make the worker call again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

import httpx

from kizuna.automation.actions import (
    ActionContext,
    Outcome,
    PermanentFailure,
    RetryLater,
    register_action,
)
from kizuna.errors import JourneyError


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookAction:
    name = "webhook"
    external = True
    marketing = False

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise JourneyError(f"journey {path}/url: webhook needs an http(s) url")
        if not isinstance(params.get("secret_env"), str):
            raise JourneyError(
                f"journey {path}/secret_env: name the environment variable holding the signing "
                "secret (secrets never live in journey files)"
            )

    def perform(self, ctx: ActionContext) -> Outcome:
        secret = os.environ.get(ctx.params["secret_env"], "")
        if not secret:
            raise PermanentFailure(f"environment variable {ctx.params['secret_env']} is not set")
        body = json.dumps(
            {
                "journey": ctx.journey,
                "step": ctx.step_id,
                "customer": {
                    "id": ctx.customer["id"],
                    "external_id": ctx.customer.get("external_id"),
                },
                "sent_at": ctx.now.isoformat(),
            },
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(ctx.now.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": ctx.idempotency_key,
            "X-Kizuna-Timestamp": timestamp,
            "X-Kizuna-Signature": signature(secret, timestamp, body),
        }
        try:
            response = httpx.post(ctx.params["url"], content=body, headers=headers, timeout=10)
        except httpx.HTTPError as exc:
            raise RetryLater(f"webhook call failed: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryLater(f"webhook answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(f"webhook answered {response.status_code}")
        return Outcome("sent")


register_action(WebhookAction())
