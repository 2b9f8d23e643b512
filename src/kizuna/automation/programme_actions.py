"""Journey actions of the loyalty programme: ``grant_points`` and ``issue_coupon``.

Both are internal actions: they run through the programme's own handlers in
the same transaction as the journey step and its send-ledger row, with the
step's key as the programme's idempotency key, so a crash or a retry never
grants twice and never skips (see
:mod:`kizuna.services.programme.journey_effects`).

``issue_coupon`` records the code as the step's ``message_id`` in ``sends``;
the runner offers the run's latest code to later templates as
``{{ coupon_code }}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kizuna.automation.actions import ActionContext, Outcome, register_action
from kizuna.errors import JourneyError, ValidationError

MAX_GRANT = 10**9
MAX_VALID_DAYS = 3660


def _int(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(key)
    return value


class GrantPoints:
    """Points for the member: ``points`` + ``reason`` (a manual grant by the journey),
    or ``reward: <programme action>`` (the points set under ``[actions]``)."""

    name = "grant_points"
    external = False
    marketing = False

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        from kizuna.domain.programme import ACTIONS as PROGRAMME_ACTIONS

        has_points, has_reward = "points" in params, "reward" in params
        if has_points == has_reward:
            raise JourneyError(
                f"journey {path}: grant_points needs either points (with a reason) "
                "or reward (a programme action such as birthday or custom:welcome)"
            )
        if has_points:
            points = params["points"]
            if isinstance(points, bool) or not isinstance(points, int):
                raise JourneyError(f"journey {path}/points: a whole number of points")
            if not 1 <= points <= MAX_GRANT:
                raise JourneyError(f"journey {path}/points: between 1 and {MAX_GRANT}")
            reason = params.get("reason")
            if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
                raise JourneyError(
                    f"journey {path}/reason: say why the points are given (up to 500 characters); "
                    "it shows in the member's ledger"
                )
        else:
            reward = params["reward"]
            if not isinstance(reward, str) or not (
                reward in PROGRAMME_ACTIONS or reward.startswith("custom:")
            ):
                raise JourneyError(
                    f"journey {path}/reward: one of {', '.join(PROGRAMME_ACTIONS)} or custom:<name>"
                )

    def perform(self, ctx: ActionContext) -> Outcome:
        from kizuna.services.programme.journey_effects import JourneyGrant, grant_points

        p = ctx.params
        grant = JourneyGrant(
            member_id=str(ctx.customer["external_id"]),
            step_key=ctx.idempotency_key,
            actor=f"journey:{ctx.journey}"[:200],
            reason=str(p.get("reason") or f"journey {ctx.journey}, step {ctx.step_id}"),
            points=p.get("points"),
            reward=p.get("reward"),
        )
        body = grant_points(ctx.conn, ctx.settings, grant, ctx.now)
        return Outcome("sent", reason=f"{body['points']} points", detail=body)


class IssueCoupon:
    """One single-use coupon bound to the member: ``kind`` (percent, fixed, free_item),
    ``value``, and optionally ``min_spend``, ``valid_days``, ``item``, ``prefix``, ``batch``."""

    name = "issue_coupon"
    external = False
    marketing = False

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        from kizuna.domain.rewards import normalise_code, validate_spec

        kind, value = params.get("kind"), params.get("value")
        if not isinstance(kind, str) or isinstance(value, bool) or not isinstance(value, int):
            raise JourneyError(
                f"journey {path}: issue_coupon needs kind (percent, fixed or free_item) "
                "and value (a whole number)"
            )
        try:
            validate_spec(kind, value)
        except ValidationError as exc:
            raise JourneyError(f"journey {path}/value: {exc}") from None
        try:
            min_spend, valid_days = _int(params, "min_spend"), _int(params, "valid_days")
        except ValueError as exc:
            raise JourneyError(f"journey {path}/{exc}: a whole number") from None
        if min_spend is not None and min_spend < 0:
            raise JourneyError(f"journey {path}/min_spend: cannot be negative")
        if valid_days is not None and not 1 <= valid_days <= MAX_VALID_DAYS:
            raise JourneyError(f"journey {path}/valid_days: between 1 and {MAX_VALID_DAYS}")
        for key, limit in (("item", 128), ("prefix", 16), ("batch", 100)):
            text = params.get(key)
            if text is not None and (not isinstance(text, str) or not 1 <= len(text) <= limit):
                raise JourneyError(f"journey {path}/{key}: text of 1 to {limit} characters")
        prefix = params.get("prefix")
        if isinstance(prefix, str) and normalise_code(prefix) != prefix.upper().strip():
            raise JourneyError(
                f"journey {path}/prefix: may not contain I, L or O (they read as 1 and 0)"
            )

    def perform(self, ctx: ActionContext) -> Outcome:
        from kizuna.services.programme.journey_effects import JourneyCoupon, issue_coupon

        p = ctx.params
        coupon = JourneyCoupon(
            member_id=str(ctx.customer["external_id"]),
            customer_id=int(ctx.customer["id"]),
            step_key=ctx.idempotency_key,
            batch=str(p.get("batch") or f"journey:{ctx.journey}:{ctx.step_id}"),
            kind=p["kind"],
            value=p["value"],
            min_spend=p.get("min_spend") or 0,
            valid_days=p.get("valid_days"),
            item=p.get("item"),
            prefix=p.get("prefix") or "",
        )
        body = issue_coupon(ctx.conn, ctx.settings, coupon, ctx.now)
        return Outcome("sent", message_id=str(body["code"]), detail=body)


register_action(GrantPoints())
register_action(IssueCoupon())
