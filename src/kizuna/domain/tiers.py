"""Tiers: which level a member's qualifying activity reaches, and what is next.

Upgrades happen at once (the moment an order crosses a threshold); downgrades
wait for the end of the tier period plus a grace period, then either drop one
level at a time or re-evaluate straight to the level earned.
"""

from __future__ import annotations

from dataclasses import dataclass

from kizuna.domain.programme import Programme, Tier


@dataclass(frozen=True)
class Progress:
    """Where a member stands: tier now, next tier and what is still needed."""

    tier: str | None
    qualifying: int
    next_tier: str | None
    needed: int
    benefits: tuple[str, ...]


def qualified_tier(programme: Programme, qualifying: int) -> Tier | None:
    """The highest tier whose threshold ``qualifying`` reaches."""
    reached = [t for t in programme.tiers if qualifying >= t.threshold]
    return reached[-1] if reached else None


def rank(programme: Programme, name: str | None) -> int:
    for i, t in enumerate(programme.tiers):
        if t.name == name:
            return i
    return -1


def upgrade(programme: Programme, current: str | None, qualifying: int) -> str | None:
    """The tier after an order: higher if earned, never lower (downgrades wait)."""
    q = qualified_tier(programme, qualifying)
    if q is None or rank(programme, q.name) <= rank(programme, current):
        return current
    return q.name


def review(programme: Programme, current: str | None, qualifying: int) -> str | None:
    """The tier after a period-end review: keeps, drops one level, or re-evaluates."""
    q = qualified_tier(programme, qualifying)
    q_rank = rank(programme, q.name if q else None)
    c_rank = rank(programme, current)
    if q_rank >= c_rank:
        return q.name if q else current
    if programme.tier_downgrade == "one_level":
        return programme.tiers[c_rank - 1].name if c_rank >= 1 else None
    return q.name if q else None


def progress(programme: Programme, current: str | None, qualifying: int) -> Progress:
    c_rank = rank(programme, current)
    nxt = programme.tiers[c_rank + 1] if c_rank + 1 < len(programme.tiers) else None
    tier = programme.tier(current)
    return Progress(
        tier=current,
        qualifying=qualifying,
        next_tier=nxt.name if nxt else None,
        needed=max(nxt.threshold - qualifying, 0) if nxt else 0,
        benefits=tier.benefits if tier else (),
    )
