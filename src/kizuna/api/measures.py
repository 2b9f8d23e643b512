"""/v1/measures: each journey's objective and KPI target, and its measured effect.

The effect is treated vs hold-out over the journey's goal window, with 95%
confidence intervals (:mod:`kizuna.automation.uplift`), computed by
:mod:`kizuna.services.measures` exactly as ``kizuna measures report`` does.
An estimate that cannot be computed yet (no hold-out runs) is ``null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow, finite, fresh_uow, write
from kizuna.api.pagination import CursorArg, Limit, Page, after_value, encode_cursor, paged

if TYPE_CHECKING:
    from kizuna.services.measures import EffectReport

router = APIRouter(tags=["measures"])
JourneyName = Annotated[str, Path(min_length=1, max_length=100, description="The journey name.")]


class IntervalOut(BaseModel):
    estimate: float | None
    low: float | None
    high: float | None


class GroupOut(BaseModel):
    customers: int
    conversion_rate: float | None
    revenue_per_customer: float | None


class MeasureOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "journey": "welcome-back",
                    "goal_days": 14,
                    "treated": {
                        "customers": 900,
                        "conversion_rate": 0.12,
                        "revenue_per_customer": 820.5,
                    },
                    "holdout": {
                        "customers": 100,
                        "conversion_rate": 0.08,
                        "revenue_per_customer": 540.0,
                    },
                    "conversion_uplift": {"estimate": 0.04, "low": -0.014, "high": 0.094},
                    "revenue_uplift": {"estimate": 280.5, "low": -40.2, "high": 601.2},
                    "objective": "bring lapsed Tokyo customers back",
                    "kpi": "conversion_uplift",
                    "target": 0.03,
                    "achieved": False,
                }
            ]
        }
    )
    journey: str
    goal_days: int
    treated: GroupOut
    holdout: GroupOut
    conversion_uplift: IntervalOut
    revenue_uplift: IntervalOut
    objective: str | None
    kpi: str | None
    target: float | None
    achieved: bool | None = Field(
        description="Whether the KPI target is met (uplifts only when their CI excludes 0)."
    )


class MeasureIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "objective": "bring lapsed Tokyo customers back",
                    "kpi": "conversion_uplift",
                    "target": 0.03,
                }
            ]
        }
    )
    objective: str = Field(min_length=1, max_length=2000)
    kpi: Literal["conversion_uplift", "revenue_uplift", "conversion_rate"]
    target: float = Field(allow_inf_nan=False, ge=-1e12, le=1e12)


def _out(rep: EffectReport) -> dict[str, Any]:
    from kizuna.services import measures as svc

    return dict(finite(svc.as_dict(rep)))


@router.get(
    "/measures",
    response_model=Page[MeasureOut],
    summary="Every journey's measure and effect, by journey name",
)
def list_measures(
    request: Request,
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    from kizuna.services import measures as svc  # SciPy: loaded on first use

    after = after_value(ctx, "measures", cursor)
    reports = [r for r in svc.report_all(fresh_uow(ctx)) if after is None or r.journey > str(after)]
    shown = reports[:limit]
    next_cursor = (
        encode_cursor(ctx, "measures", {"after": shown[-1].journey})
        if len(reports) > limit
        else None
    )
    return paged(request, [_out(r) for r in shown], next_cursor)


@router.get(
    "/measures/{journey}",
    response_model=MeasureOut,
    summary="One journey's objective, KPI target and measured effect",
)
def get_measure(
    journey: JourneyName, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]
) -> JSONResponse:
    from kizuna.services import measures as svc  # SciPy: loaded on first use

    return JSONResponse(_out(svc.report(journey, fresh_uow(ctx))))


@router.put(
    "/measures/{journey}",
    response_model=MeasureOut,
    summary="Set (or replace) a journey's objective and KPI target",
)
def set_measure(
    journey: JourneyName, body: MeasureIn, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]
) -> JSONResponse:
    from kizuna.services import measures as svc  # SciPy: loaded on first use

    command = svc.SetMeasure(journey, body.objective, body.kpi, body.target)
    write(ctx, lambda uow: svc.handle_set(command, uow))
    return JSONResponse(_out(svc.report(journey, fresh_uow(ctx))))
