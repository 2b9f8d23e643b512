"""Does the purchase model predict? Holdout purchases, predicted against actual.

The check of Fader, Hardie & Lee (2005, Figure 4): fit on a calibration
period, predict each customer's purchases in the holdout that follows from
their calibration history, and compare the mean predicted and actual
holdout purchases of customers grouped by their calibration frequency
(0, 1, ..., ``top``+). A model that fits the calibration data but misses
here is describing noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kizuna.analytics.clv.mle import Fit, FloatArray
from kizuna.errors import ValidationError

if TYPE_CHECKING:
    import ibis.expr.types as ir

#: E[Y(t) | x, t_x, T] of a fitted model, for one t.
Predictor = Callable[[float, FloatArray, FloatArray, FloatArray], FloatArray]


def holdout_by_frequency(
    predict: Predictor,
    frequency: FloatArray,
    recency: FloatArray,
    T: FloatArray,
    actual_holdout: FloatArray,
    holdout_length: float,
    top: int = 7,
) -> pd.DataFrame:
    """``bucket, customers, actual, predicted`` (mean holdout purchases) per calibration frequency.

    ``bucket`` is the calibration frequency as text, the last one ``"<top>+"``;
    a final ``"all"`` row gives the totals per customer.
    """
    x = np.asarray(frequency, dtype=float)
    predicted = predict(holdout_length, x, np.asarray(recency, float), np.asarray(T, float))
    actual = np.asarray(actual_holdout, dtype=float)
    bucket = np.minimum(x, top).astype(int)
    rows = []
    for b in range(top + 1):
        mask = bucket == b
        if mask.any():
            rows.append(
                {
                    "bucket": f"{b}+" if b == top else str(b),
                    "customers": int(mask.sum()),
                    "actual": float(actual[mask].mean()),
                    "predicted": float(predicted[mask].mean()),
                }
            )
    rows.append(
        {
            "bucket": "all",
            "customers": int(x.size),
            "actual": float(actual.mean()) if x.size else float("nan"),
            "predicted": float(predicted.mean()) if x.size else float("nan"),
        }
    )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class HoldoutCheck:
    """The model fitted on the calibration period and its holdout predictions by bucket."""

    fit: Fit
    table: pd.DataFrame
    calibration_end_day: int
    observation_end_day: int
    unit_days: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as stored with every scoring run (``models.bgnbd_holdout``)."""
        from kizuna.analytics.kpi import date_of

        return {
            "model": self.fit.model,
            "calibration_end": str(date_of(self.calibration_end_day - 1)),
            "holdout_end": str(date_of(self.observation_end_day - 1)),
            "holdout_length": (self.observation_end_day - self.calibration_end_day)
            / self.unit_days,
            "time_unit_days": self.unit_days,
            "calibration_fit": self.fit.to_dict(),
            "by_frequency": [
                {
                    k: (v if not isinstance(v, float) or np.isfinite(v) else None)
                    for k, v in r.items()
                }
                for r in self.table.to_dict(orient="records")
            ],
        }


def holdout_check(
    orders: ir.Table,
    *,
    calibration_end_day: int,
    observation_end_day: int,
    unit_days: float = 7.0,
    model: str = "bgnbd",
    top: int = 7,
    day: str = "ordered_at_day",
    amount: str = "amount",
) -> HoldoutCheck:
    """Fit ``model`` on the orders before ``calibration_end_day``, check it on the holdout.

    The holdout is ``[calibration_end_day, observation_end_day)``; only
    customers who bought in the calibration period take part, as in FHL (2005).
    """
    from kizuna.analytics import summary
    from kizuna.analytics.clv import bgnbd, pareto_nbd
    from kizuna.analytics.clv.mle import distinct_rows

    module = {"bgnbd": bgnbd, "pareto-nbd": pareto_nbd}.get(model)
    if module is None:
        raise ValidationError(f"diagnostics work for bgnbd or pareto-nbd, not {model!r}")
    cal = summary.calibration_holdout(
        orders,
        calibration_end_day=calibration_end_day,
        observation_end_day=observation_end_day,
        unit_days=unit_days,
        day=day,
        amount=amount,
    ).select("frequency", "recency", "T", "frequency_holdout")
    table = cal.to_pyarrow()
    if table.num_rows < 10:
        raise ValidationError(
            f"only {table.num_rows} customers bought before the holdout; "
            "choose an earlier calibration end"
        )
    x, t_x, T, actual = (table[c].to_numpy().astype(float) for c in table.column_names)
    (ux, ut, uT), w = distinct_rows(x, t_x, T)
    fitted = module.fit(ux, ut, uT, weights=w)
    params = fitted.vector()

    def predict(t: float, xx: FloatArray, tt: FloatArray, TT: FloatArray) -> FloatArray:
        return np.asarray(module.conditional_expected_purchases(params, t, xx, tt, TT))

    length = (observation_end_day - calibration_end_day) / unit_days
    frame = holdout_by_frequency(predict, x, t_x, T, actual, length, top=top)
    return HoldoutCheck(fitted, frame, calibration_end_day, observation_end_day, unit_days)
