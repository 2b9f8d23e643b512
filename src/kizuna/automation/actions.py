"""Journey actions as plugins: a registry of named actions.

Built-in actions are registered here like any plugin would be, with
:func:`register_action`. An action either changes only the system of record
(``external = False``: it runs inside the step's transaction, so it happens
exactly once with the step) or reaches outside (``external = True``: email,
webhook), in which case the runner records it in the send ledger first and
marks it done after, see :mod:`kizuna.automation.runner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.errors import JourneyError
from kizuna.store import automation_tables as at
from kizuna.store import tables as t


class RetryLater(Exception):
    """A temporary failure (SMTP 4xx, webhook 5xx, timeout): try again with backoff."""


class PermanentFailure(Exception):
    """A failure retrying cannot fix (SMTP 5xx, webhook 4xx): straight to the dead-letter list."""


@dataclass(frozen=True)
class ActionContext:
    conn: sa.Connection
    settings: Settings
    run_id: int
    journey_id: int
    journey: str
    step_id: str
    params: Mapping[str, Any]
    customer: Mapping[str, Any]
    tz: ZoneInfo
    now: datetime
    idempotency_key: str
    #: What earlier steps of the run produced, for templates (``coupon_code``).
    variables: Mapping[str, Any] = field(default_factory=dict)

    def template_variables(self) -> dict[str, Any]:
        """The customer's fields plus the run's variables: what a template may use."""
        return {**self.customer, **self.variables}


@dataclass(frozen=True)
class Outcome:
    """``sent`` (done), ``skipped`` (deliberately not done, with a reason) or ``deferred``."""

    status: str
    reason: str = ""
    until: datetime | None = None
    message_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class Action(Protocol):
    name: str
    external: bool
    #: Marketing messages count towards frequency caps and wait out quiet hours.
    marketing: bool

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        """Raise :class:`JourneyError` for bad parameters, before activation."""

    def perform(self, ctx: ActionContext) -> Outcome:
        """Do the effect (idempotently, keyed by ``ctx.idempotency_key`` where possible)."""


ACTIONS: dict[str, Action] = {}


def register_action(action: Action) -> None:
    ACTIONS[action.name] = action


def get_action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise JourneyError(f"no action named {name!r}; known: {sorted(ACTIONS)}") from None


class SetAttribute:
    """Set ``attributes.<key>`` (a tag is ``key: tag_vip, value: true``)."""

    name = "set_attribute"
    external = False
    marketing = False

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        from kizuna.domain.segments import ATTRIBUTE_KEY

        key = params.get("key")
        if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
            raise JourneyError(f"journey {path}/key: set_attribute needs key (letters, digits, _)")
        if "value" not in params:
            raise JourneyError(f"journey {path}/value: set_attribute needs a value")

    def perform(self, ctx: ActionContext) -> Outcome:
        c = t.customers
        current = ctx.conn.execute(
            sa.select(c.c.attributes).where(c.c.id == ctx.customer["id"])
        ).scalar_one()
        attributes = dict(current or {})
        attributes[ctx.params["key"]] = ctx.params["value"]
        ctx.conn.execute(
            sa.update(c).where(c.c.id == ctx.customer["id"]).values(attributes=attributes)
        )
        return Outcome("sent")


class CreateTask:
    """A follow-up task for staff, such as calling a detractor."""

    name = "create_task"
    external = False
    marketing = False

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        if not isinstance(params.get("title"), str) or not params["title"]:
            raise JourneyError(f"journey {path}/title: create_task needs a title")

    def perform(self, ctx: ActionContext) -> Outcome:
        from kizuna.automation.templates import render

        title = render(ctx.params["title"], ctx.template_variables(), what="task title")[:300]
        ctx.conn.execute(
            sa.insert(at.journey_tasks).values(
                customer_id=ctx.customer["id"], run_id=ctx.run_id, step_id=ctx.step_id, title=title,
                created_at=ctx.now,
            )
        )  # fmt: skip
        return Outcome("sent")


class NotYetAvailable:
    """An action whose engine has not landed: known by name, refused with a clear reason."""

    external = False
    marketing = False

    def __init__(self, name: str, needs: str) -> None:
        self.name = name
        self.needs = needs

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        raise JourneyError(
            f"journey {path}: action {self.name!r} is not available yet; it needs {self.needs}"
        )

    def perform(self, ctx: ActionContext) -> Outcome:
        self.validate(ctx.params, f"/steps/{ctx.step_id}")
        raise AssertionError("unreachable")


register_action(SetAttribute())
register_action(CreateTask())
