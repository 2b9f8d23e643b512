"""Key drivers of NPS: which experiences go with higher or lower scores.

For every NPS answer the customer's experiences up to that answer are
flags (an unresolved support contact, a contact about delivery, a resolved
contact, community participation, a coupon order, a written review, a
referral). Two effect sizes per flag, each with a 95% confidence interval:

* **difference in mean score** (0-10) between answers with and without the
  experience (Welch's standard error), and
* **adjusted effect**: the flag's coefficient in one least-squares
  regression of the score on all flags together (heteroscedasticity-robust
  HC1 standard errors), which separates drivers that come together, such as
  a delivery problem and the unresolved contact it caused.

These are associations in observational data, not causal effects: attached
customers both attend events and recommend the brand. The hold-out groups
of measures (a later issue) are how Kizuna proves causation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kizuna.analytics.kpi import Z95

if TYPE_CHECKING:
    import ibis.expr.types as ir

DRIVERS: dict[str, dict[str, str]] = {
    "unresolved_contact": {"en": "support contact left unresolved", "ja": "未解決の問い合わせ"},
    "delivery_contact": {"en": "contacted support about delivery", "ja": "配送に関する問い合わせ"},
    "resolved_contact": {"en": "support contact resolved", "ja": "解決した問い合わせ"},
    "community": {"en": "took part in the community", "ja": "コミュニティ参加"},
    "coupon_order": {"en": "ordered with a coupon", "ja": "クーポン利用"},
    "review": {"en": "wrote a review", "ja": "レビュー投稿"},
    "referral": {"en": "referred someone", "ja": "紹介"},
}


def _flag(
    answers: ir.Table,
    events: ir.Table | None,
    day: str,
    name: str,
    where: ir.BooleanValue | None = None,
) -> ir.Table | None:
    """``answer_id, <name>``: 1 if the customer had such an event on or before the answer day."""
    if events is None:
        return None
    e = events.filter(where) if where is not None else events
    e = e.select(customer_id=e.customer_id, eday=e[day])
    j = answers.join(e, [answers.customer_id == e.customer_id, e.eday <= answers.day])
    return j.group_by("answer_id").aggregate(**{name: j.count() * 0 + 1})


def driver_frame(
    answers: ir.Table,
    *,
    contacts: ir.Table | None = None,
    community: ir.Table | None = None,
    orders: ir.Table | None = None,
    reviews: ir.Table | None = None,
    referrals: ir.Table | None = None,
    start_day: int | None = None,
    end_day: int | None = None,
) -> pd.DataFrame:
    """One row per NPS answer: ``score`` and a 0/1 column per available driver."""
    import ibis

    a = answers.filter(answers.kind == "nps")
    if start_day is not None:
        a = a.filter(a.answered_at_day >= start_day)
    if end_day is not None:
        a = a.filter(a.answered_at_day < end_day)
    a = a.select(
        answer_id=ibis.row_number().over(order_by=[a.customer_id, a.answered_at_day, a.score]),
        customer_id=a.customer_id,
        day=a.answered_at_day,
        score=a.score,
    )
    flags = {
        "unresolved_contact": _flag(
            a, contacts, "opened_at_day", "unresolved_contact",
            None if contacts is None else ~contacts.resolved,
        ),
        "delivery_contact": _flag(
            a, contacts, "opened_at_day", "delivery_contact",
            None if contacts is None else contacts.topic == "delivery",
        ),
        "resolved_contact": _flag(
            a, contacts, "opened_at_day", "resolved_contact",
            None if contacts is None else contacts.resolved,
        ),
        "community": _flag(a, community, "occurred_at_day", "community"),
        "coupon_order": _flag(
            a, orders, "ordered_at_day", "coupon_order",
            None if orders is None or "coupon" not in orders.columns else orders.coupon,
        ),
        "review": _flag(a, reviews, "posted_at_day", "review"),
        "referral": _flag(a, referrals, "referred_at_day", "referral"),
    }  # fmt: skip
    out = a
    for name, table in flags.items():
        if table is None:
            continue
        out = out.left_join(table, "answer_id").drop("answer_id_right")
        out = out.mutate(**{name: out[name].fill_null(0)})
    frame = out.order_by("answer_id").to_pandas()
    return frame.drop(columns=["answer_id", "customer_id", "day"])


def key_drivers(frame: pd.DataFrame) -> pd.DataFrame:
    """Effect sizes with 95% CIs for every driver column of ``frame`` (see the module doc)."""
    score = frame["score"].to_numpy(dtype=float)
    names = [c for c in frame.columns if c != "score"]
    names = [n for n in names if 0 < frame[n].sum() < len(frame)]  # a constant flag says nothing
    rows = []
    X = np.column_stack([np.ones(len(frame))] + [frame[n].to_numpy(dtype=float) for n in names])
    beta, se = _ols_hc1(X, score) if len(frame) > X.shape[1] else (None, None)
    for i, name in enumerate(names):
        has = frame[name].to_numpy() > 0
        a, b = score[has], score[~has]
        diff = a.mean() - b.mean()
        diff_se = (
            float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
            if min(a.size, b.size) > 1
            else np.nan
        )
        row = {
            "driver": name,
            "en": DRIVERS.get(name, {}).get("en", name),
            "ja": DRIVERS.get(name, {}).get("ja", name),
            "answers_with": int(has.sum()),
            "mean_with": float(a.mean()),
            "mean_without": float(b.mean()),
            "difference": float(diff),
            "difference_low": float(diff - Z95 * diff_se),
            "difference_high": float(diff + Z95 * diff_se),
            "nps_with": float(100 * ((a >= 9).mean() - (a <= 6).mean())),
            "nps_without": float(100 * ((b >= 9).mean() - (b <= 6).mean())),
        }
        if beta is not None and se is not None:
            row |= {
                "adjusted": float(beta[i + 1]),
                "adjusted_low": float(beta[i + 1] - Z95 * se[i + 1]),
                "adjusted_high": float(beta[i + 1] + Z95 * se[i + 1]),
            }
        rows.append(row)
    result = pd.DataFrame(rows)
    if len(result):
        key = "adjusted" if "adjusted" in result else "difference"
        result = result.reindex(result[key].abs().sort_values(ascending=False).index)
    return result.reset_index(drop=True)


def _ols_hc1(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares with HC1 robust standard errors."""
    xtx_inv = np.linalg.pinv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    resid = y - X @ beta
    n, k = X.shape
    meat = (X * resid[:, None] ** 2).T @ X
    cov = xtx_inv @ meat @ xtx_inv * n / (n - k)
    return beta, np.sqrt(np.clip(np.diag(cov), 0, None))
