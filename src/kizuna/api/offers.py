"""/v1/customers/{id}/next-best-offer: the offer with the highest expected value, and why."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from kizuna.api.deps import CtxDep, allow
from kizuna.services import offers

router = APIRouter(tags=["offers"])


@router.get(
    "/customers/{customer_id}/next-best-offer",
    dependencies=[allow("read")],
    summary="Next best offer (propensity x margin within caps and budgets), with reasons",
)
def next_best_offer(
    customer_id: str,
    ctx: CtxDep,
    alternatives: bool = Query(False, description="Also list the other offers, eligible or not."),
) -> JSONResponse:
    with ctx.engine.connect() as conn:
        ranked = offers.ranked_for(conn, offers.customer_id_of(conn, customer_id))
    best = ranked[0] if ranked and ranked[0].eligible else None
    doc: dict[str, object] = {
        "customer_id": customer_id,
        "offer": None if best is None else best.to_dict(),
    }
    if best is None:
        doc["why_none"] = (
            "no active offer" if not ranked else "no offer is eligible; see alternatives"
        )
    if alternatives or best is None:
        doc["alternatives"] = [c.to_dict() for c in ranked if c is not best]
    return JSONResponse(doc)
