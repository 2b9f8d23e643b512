"""/v1/customers/{id}/recommendations: the customer's recommended products from the latest run."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from kizuna.api.deps import CtxDep, allow
from kizuna.services import recommendations

router = APIRouter(tags=["recommendations"])


@router.get(
    "/customers/{customer_id}/recommendations",
    dependencies=[allow("read")],
    summary="Recommended products (best first), with the run they come from",
)
def customer_recommendations(
    customer_id: str, ctx: CtxDep, n: int = Query(10, ge=1, le=50)
) -> JSONResponse:
    with ctx.engine.connect() as conn:
        run = recommendations.require_latest_run(conn)
        items = recommendations.recommendations_for(
            conn, recommendations.customer_id_of(conn, customer_id), n
        )
    return JSONResponse(
        {
            "customer_id": customer_id,
            "run": {
                "id": run.id,
                "model": run.model,
                "created_at": run.created_at.isoformat(),
                "scoring_run_id": run.scoring_run_id,
            },  # fmt: skip
            "items": [i.to_dict() for i in items],
        }
    )
