"""Use cases of segments: preview, save, list, refresh membership.

A refresh is set-based (two ``INSERT ... SELECT`` and one ``DELETE``), so it
runs as a handful of statements whatever the number of customers, and every
entry and exit lands in ``segment_changes`` for journeys to trigger on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from kizuna.automation.segments_sql import CompileContext, compile_rule, members_query
from kizuna.domain.segments import SegmentDefinition, parse_segment
from kizuna.errors import Conflict, NotFound, SegmentError
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t


def load_definition(path: Path) -> dict[str, Any]:
    """A definition document from a ``.yaml``/``.yml``/``.json`` file."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SegmentError(
            "/", f"{path} is not valid {path.suffix.lstrip('.').upper()}: {exc}"
        ) from None
    if not isinstance(doc, dict):
        raise SegmentError("/", f"{path} must hold one object with name and rule")
    return doc


def _compile_context(uow: UnitOfWork, now: datetime | None) -> CompileContext:
    return CompileContext(now or datetime.now(UTC), uow.settings.tz, uow.dialect)


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[dict[str, Any]]


def preview(
    document: Any, uow: UnitOfWork, sample: int = 10, now: datetime | None = None
) -> Preview:
    """How many customers a definition selects today, and the first few of them."""
    definition = parse_segment(document)
    ctx = _compile_context(uow, now)
    with uow:
        where = compile_rule(definition.rule, ctx)
        c = t.customers
        total = uow.conn.execute(
            sa.select(sa.func.count()).select_from(c).where(where)
        ).scalar_one()
        rows = uow.conn.execute(
            sa.select(c.c.external_id, c.c.name, c.c.email)
            .where(where)
            .order_by(c.c.id)
            .limit(sample)
        )
        return Preview(int(total), [dict(r._mapping) for r in rows])


@dataclass(frozen=True)
class SaveSegment:
    """Create a segment, or replace the rule of an existing one with ``replace``."""

    document: dict[str, Any]
    replace: bool = False


def handle_save(command: SaveSegment, uow: UnitOfWork, now: datetime | None = None) -> int:
    definition = parse_segment(command.document)
    moment = now or datetime.now(UTC)
    with uow:
        existing = uow.conn.execute(
            sa.select(at.segments.c.id).where(at.segments.c.name == definition.name)
        ).scalar_one_or_none()
        values = {
            "description": definition.description,
            "definition": dict(command.document),
            "updated_at": moment,
        }
        if existing is not None:
            if not command.replace:
                raise Conflict(
                    f"segment {definition.name!r} exists; pass --replace to change its rule"
                )
            uow.conn.execute(
                sa.update(at.segments).where(at.segments.c.id == existing).values(**values)
            )
            segment_id = int(existing)
        else:
            segment_id = int(
                uow.conn.execute(
                    sa.insert(at.segments)
                    .values(name=definition.name, created_at=moment, **values)
                    .returning(at.segments.c.id)
                ).scalar_one()
            )
        uow.commit()
        return segment_id


def list_segments(uow: UnitOfWork) -> list[dict[str, Any]]:
    s = at.segments
    with uow:
        rows = uow.conn.execute(
            sa.select(
                s.c.id, s.c.name, s.c.description, s.c.member_count, s.c.refreshed_at
            ).order_by(s.c.name)
        )
        return [dict(r._mapping) for r in rows]


def get_definition(name: str, uow: UnitOfWork) -> tuple[int, SegmentDefinition]:
    """The stored segment ``name`` (inside an open unit of work)."""
    row = uow.conn.execute(
        sa.select(at.segments.c.id, at.segments.c.definition).where(at.segments.c.name == name)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no segment named {name!r}; see `kizuna segment list`")
    return int(row.id), parse_segment(row.definition)


@dataclass(frozen=True)
class RefreshResult:
    segment: str
    entered: int
    exited: int
    members: int
    refresh_id: int


@dataclass(frozen=True)
class RefreshSegment:
    name: str
    reason: str = "manual"


def handle_refresh(
    command: RefreshSegment, uow: UnitOfWork, now: datetime | None = None
) -> RefreshResult:
    """Bring ``segment_members`` up to date and record who entered and who left."""
    moment = now or datetime.now(UTC)
    ctx = CompileContext(moment, uow.settings.tz, uow.dialect)
    s, m, ch = at.segments, at.segment_members, at.segment_changes
    with uow:
        conn = uow.conn
        segment_id, definition = get_definition(command.name, uow)
        # Serialise refreshes of one segment: two at once would both see the
        # same customer as new and record the entry twice.
        conn.execute(sa.select(s.c.id).where(s.c.id == segment_id).with_for_update())
        refresh_id = int(
            conn.execute(
                sa.insert(at.segment_refreshes)
                .values(segment_id=segment_id, started_at=moment, reason=command.reason)
                .returning(at.segment_refreshes.c.id)
            ).scalar_one()
        )
        rule = compile_rule(definition.rule, ctx)
        c = t.customers
        is_member = sa.exists().where(m.c.segment_id == segment_id, m.c.customer_id == c.c.id)
        cols = ["segment_id", "customer_id", "refresh_id", "change", "at"]
        conn.execute(
            sa.insert(ch).from_select(
                cols,
                sa.select(
                    sa.literal(segment_id, t.Id),
                    c.c.id,
                    sa.literal(refresh_id, t.Id),
                    sa.literal("entered"),
                    sa.literal(moment, ch.c.at.type),
                )
                .where(rule, ~is_member)
                .order_by(c.c.id),
            )
        )
        still = sa.exists().where(c.c.id == m.c.customer_id, rule)
        conn.execute(
            sa.insert(ch).from_select(
                cols,
                sa.select(
                    sa.literal(segment_id, t.Id),
                    m.c.customer_id,
                    sa.literal(refresh_id, t.Id),
                    sa.literal("exited"),
                    sa.literal(moment, ch.c.at.type),
                )
                .where(m.c.segment_id == segment_id, ~still)
                .order_by(m.c.customer_id),
            )
        )
        this_run = sa.select(ch.c.customer_id).where(ch.c.refresh_id == refresh_id)
        # Counted, not taken from rowcount: drivers disagree on INSERT ... SELECT.
        tally = {
            row[0]: int(row[1])
            for row in conn.execute(
                sa.select(ch.c.change, sa.func.count())
                .where(ch.c.refresh_id == refresh_id)
                .group_by(ch.c.change)
            )
        }
        entered, exited = int(tally.get("entered", 0)), int(tally.get("exited", 0))
        conn.execute(
            sa.delete(m).where(
                m.c.segment_id == segment_id,
                m.c.customer_id.in_(this_run.where(ch.c.change == "exited")),
            )
        )
        conn.execute(
            sa.insert(m).from_select(
                ["segment_id", "customer_id", "entered_at"],
                sa.select(ch.c.segment_id, ch.c.customer_id, ch.c.at).where(
                    ch.c.refresh_id == refresh_id, ch.c.change == "entered"
                ),
            )
        )
        members = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(m).where(m.c.segment_id == segment_id)
            ).scalar_one()
        )
        conn.execute(
            sa.update(at.segment_refreshes)
            .where(at.segment_refreshes.c.id == refresh_id)
            .values(finished_at=datetime.now(UTC), entered=entered, exited=exited, members=members)
        )
        conn.execute(
            sa.update(s)
            .where(s.c.id == segment_id)
            .values(refreshed_at=moment, member_count=members)
        )
        uow.commit()
        return RefreshResult(definition.name, int(entered), int(exited), members, refresh_id)


def refresh_all(
    uow: UnitOfWork, reason: str = "schedule", now: datetime | None = None
) -> list[RefreshResult]:
    """Refresh every stored segment, one transaction each (for the schedule and after scoring)."""
    names = [row["name"] for row in list_segments(uow)]
    return [handle_refresh(RefreshSegment(name, reason), uow, now) for name in names]


def members(name: str, uow: UnitOfWork) -> list[int]:
    """Customer ids currently in segment ``name``."""
    with uow:
        segment_id, _ = get_definition(name, uow)
        m = at.segment_members
        return list(
            uow.conn.execute(
                sa.select(m.c.customer_id)
                .where(m.c.segment_id == segment_id)
                .order_by(m.c.customer_id)
            ).scalars()
        )


def evaluate(
    definition: SegmentDefinition, uow: UnitOfWork, now: datetime | None = None
) -> list[int]:
    """Customer ids a definition selects right now, without storing anything."""
    ctx = _compile_context(uow, now)
    with uow:
        return list(
            uow.conn.execute(
                members_query(definition.rule, ctx).order_by(t.customers.c.id)
            ).scalars()
        )
