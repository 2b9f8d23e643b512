"""The ambassador programme's rules: the candidate score, the pipeline and task kinds.

The candidate score (0-1) ranks who to invite. It is deliberately simple
and documented, so a marketer can say why someone is on the list:

``score = 0.40 · promoter + 0.35 · engagement + 0.25 · clv_rank``

* ``promoter`` is 1 when the customer's latest NPS answer is 9 or 10, else 0
  (advocacy starts with willingness to recommend);
* ``engagement`` is ``1 − 2^(−n/3)`` for ``n`` advocacy acts in the last
  year — reviews, UGC posts, referrals made and community events attended —
  so the third act already gives one half and the score saturates instead of
  rewarding volume without end;
* ``clv_rank`` is the percentile rank (0-1) of predicted CLV in the latest
  scoring run (0 without a run): an ambassador who also keeps buying is worth
  more, but value alone never makes an advocate.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHTS = {"promoter": 0.40, "engagement": 0.35, "clv": 0.25}
ENGAGEMENT_HALF = 3.0

#: invite → accept → active → alumni; an invitation may be declined, and
#: alumni or people who declined may be invited again.
STATUSES = ("invited", "accepted", "active", "alumni", "declined")
TRANSITIONS: dict[str, frozenset[str]] = {
    "invited": frozenset({"accepted", "declined"}),
    "accepted": frozenset({"active", "alumni"}),
    "active": frozenset({"alumni"}),
    "alumni": frozenset({"invited"}),
    "declined": frozenset({"invited"}),
}
CURRENT = ("invited", "accepted", "active")
#: The system event recorded when an ambassador enters each status.
EVENT_OF = {
    "invited": "ambassador_invited",
    "accepted": "ambassador_accepted",
    "active": "ambassador_activated",
    "alumni": "ambassador_alumni",
    "declined": "ambassador_declined",
}

TASK_KINDS = ("review", "product_monitor", "event_speaker", "custom")
TASK_STATUSES = ("open", "completed", "cancelled")
MAX_TASK_POINTS = 1_000_000


def engagement(acts: int) -> float:
    return 1.0 - 2.0 ** (-max(acts, 0) / ENGAGEMENT_HALF)


def candidate_score(promoter: bool, acts: int, clv_rank: float | None) -> float:
    """The documented ranking score in [0, 1]."""
    return (
        WEIGHTS["promoter"] * (1.0 if promoter else 0.0)
        + WEIGHTS["engagement"] * engagement(acts)
        + WEIGHTS["clv"] * min(max(clv_rank or 0.0, 0.0), 1.0)
    )


def can_move(current: str | None, to: str) -> bool:
    if current is None:
        return to == "invited"
    return to in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class Candidate:
    customer_id: int
    member_id: str
    nps: int | None
    reviews: int
    ugc: int
    referrals: int
    attended: int
    clv: int
    clv_rank: float | None

    @property
    def acts(self) -> int:
        return self.reviews + self.ugc + self.referrals + self.attended

    @property
    def promoter(self) -> bool:
        return self.nps is not None and self.nps >= 9

    @property
    def score(self) -> float:
        return candidate_score(self.promoter, self.acts, self.clv_rank)
