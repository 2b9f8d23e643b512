"""Community metrics as plain functions of attendance and referral-by-member facts.

Three numbers say whether a community lives: how many members took part
recently (*active members*), whether attendees come back (*repeat
attendance*: the share of attendees with two or more attended events), and
whether members grow it themselves (*members who bring members*: people who
brought someone to an event or group, and how many they brought).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

MODES = ("online", "offline")


@dataclass(frozen=True)
class Metrics:
    active_members: int
    attendees: int
    repeat_attendees: int
    repeat_rate: float | None
    bringers: int
    brought: int


def metrics(
    active: Iterable[int],
    attendance: Iterable[tuple[int, int]],
    brought_by: Iterable[tuple[int, int]],
) -> Metrics:
    """``active``: customers with any activity in the window; ``attendance``:
    (customer, event) pairs attended; ``brought_by``: (newcomer, bringer) pairs."""
    per_person = Counter(customer for customer, _event in set(attendance))
    repeat = sum(1 for n in per_person.values() if n >= 2)
    pairs = {(new, old) for new, old in brought_by if new != old}
    return Metrics(
        active_members=len(set(active)),
        attendees=len(per_person),
        repeat_attendees=repeat,
        repeat_rate=repeat / len(per_person) if per_person else None,
        bringers=len({old for _new, old in pairs}),
        brought=len({new for new, _old in pairs}),
    )
