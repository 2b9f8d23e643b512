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

import numpy as np
import pandas as pd

from kizuna.analytics.clv.mle import FloatArray

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
