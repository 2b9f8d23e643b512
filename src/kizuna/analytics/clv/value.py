"""Customer lifetime value over a horizon, discounted: purchase model × spend model.

CLV = Σ_k (E[Y(t_k) | history] − E[Y(t_{k−1}) | history]) · E[Z | spend] / (1 + d)^k

over steps k = 1..K of the horizon (months by default), with d the
per-step discount rate derived from an annual rate. The purchase model
(BG/NBD or Pareto/NBD) gives the expected purchases in each step, the
Gamma-Gamma model the expected value of each purchase; the two are assumed
independent, as in Fader, Hardie & Lee (2005, "RFM and CLV").

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using
iso-value curves for customer base analysis. *Journal of Marketing Research*
42(4), 415-430.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kizuna.analytics.clv.mle import FloatArray
from kizuna.errors import ValidationError

#: E[Y(t) | history] for every customer, for one t.
ConditionalPurchases = Callable[[float], FloatArray]


def discounted_value(
    conditional_purchases: ConditionalPurchases,
    spend: FloatArray,
    *,
    horizon: float,
    steps: int,
    annual_discount: float,
    unit_per_year: float,
) -> FloatArray:
    """Discounted expected value over ``horizon`` (model time units) in ``steps`` steps.

    ``unit_per_year`` converts model time to years (52.18 for weeks) so that
    the annual discount rate becomes a per-step rate.
    """
    if horizon <= 0 or steps <= 0:
        raise ValidationError("the CLV horizon and its number of steps must be positive")
    if annual_discount <= -1:
        raise ValidationError("the annual discount rate must be above -100%")
    step = horizon / steps
    step_years = step / unit_per_year
    factor = (1.0 + annual_discount) ** step_years
    total = np.zeros_like(np.asarray(spend, dtype=float))
    previous = np.zeros_like(total)
    for k in range(1, steps + 1):
        current = conditional_purchases(k * step)
        total += (current - previous) / factor**k
        previous = current
    return np.asarray(total * spend)
