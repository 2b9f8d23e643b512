"""Journey action of the advocacy area: ``invite_ambassador``.

A promoter journey (``trigger: {event: survey_answered}`` with a condition
on the NPS score, or a segment of top candidates) can invite the customer
into the ambassador programme. The invitation is written in the step's own
transaction through :func:`kizuna.services.ambassadors.move_on`, so a crash
or retry of the step never invites twice; the ``ambassador_invited`` event it
records can start the journey that sends the invitation e-mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kizuna.automation.actions import ActionContext, Outcome, register_action
from kizuna.errors import JourneyError


class InviteAmbassador:
    """Invite the customer to the ambassador programme (skipped when already in it)."""

    name = "invite_ambassador"
    external = False
    marketing = False

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        score = params.get("min_score")
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
        ):
            raise JourneyError(f"journey {path}/min_score: a candidate score from 0 to 1")

    def perform(self, ctx: ActionContext) -> Outcome:
        from kizuna.domain.ambassadors import CURRENT
        from kizuna.services import ambassadors

        customer_id = int(ctx.customer["id"])
        current = ambassadors.status_of(ctx.conn, customer_id)
        if current in CURRENT:
            return Outcome("skipped", reason=f"already {current}")
        found = ambassadors.candidates(
            ctx.conn,
            ctx.now,
            include_current=True,
            only=customer_id,
            window_days=ambassadors.window_days(ctx.settings),
        )
        score = found[0].score if found else 0.0
        wanted = ctx.params.get("min_score")
        if wanted is not None and score < float(wanted):
            return Outcome("skipped", reason=f"candidate score {score:.2f} below {wanted}")
        ambassadors.move_on(
            ctx.conn,
            str(ctx.customer["external_id"]),
            "invited",
            f"journey:{ctx.journey}",
            ctx.now,
            score,
        )
        return Outcome("sent", reason=f"invited (score {score:.2f})")


register_action(InviteAmbassador())
