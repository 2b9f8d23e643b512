"""CLV models on the user's own files: ``kizuna clv fit`` and ``kizuna clv predict``.

Three shapes of input are recognised by their columns (case-insensitive):

* transactions: ``customer`` (or ``customer_id``), ``date``, ``amount``;
  summarised here as in :mod:`kizuna.analytics.summary`, in ``time_unit``;
* a per-customer summary: ``customer_id, frequency, recency, T`` and
  optionally ``monetary``, in any time unit;
* for the sBG model: ``period, active`` (customers still active at the
  start of each period).

Analysts use this to compare Kizuna with the literature on published data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kizuna.analytics.clv import bgnbd, gamma_gamma, pareto_nbd, sbg
from kizuna.analytics.clv.mle import Fit, distinct_rows
from kizuna.errors import ValidationError

MODELS = ("bgnbd", "pareto-nbd", "gamma-gamma", "sbg")
UNITS = {"days": 1.0, "weeks": 7.0}


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet file as Arrow, with lower-case column names."""
    if not path.exists():
        raise ValidationError(f"{path} does not exist")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(path)
    return table.rename_columns([c.strip().lower() for c in table.column_names])


@dataclass(frozen=True)
class Summary:
    """Per-customer (or per distinct history) inputs of the purchase and spend models."""

    customer_id: list[str] | None
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray | None
    unit: str


def summarise(table: pa.Table, time_unit: str = "weeks", as_of: str | None = None) -> Summary:
    """The summary in ``table``, or computed from its transactions."""
    cols = set(table.column_names)
    if {"frequency", "recency", "t"} <= cols:
        ids = table["customer_id"].cast(pa.string()).to_pylist() if "customer_id" in cols else None
        return Summary(
            ids,
            _num(table, "frequency"),
            _num(table, "recency"),
            _num(table, "t"),
            _num(table, "monetary") if "monetary" in cols else None,
            "file",
        )
    customer = "customer_id" if "customer_id" in cols else "customer"
    if not {customer, "date"} <= cols:
        raise ValidationError(
            "the file needs customer,date[,amount] (transactions), "
            "customer_id,frequency,recency,T[,monetary] (a summary) or period,active (sBG); "
            f"it has {', '.join(table.column_names)}"
        )
    if time_unit not in UNITS:
        raise ValidationError(f"time unit must be one of {', '.join(UNITS)}")
    return _from_transactions(table, customer, time_unit, as_of)


def _num(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table[name].cast(pa.float64()).to_numpy(), dtype=float)


def _from_transactions(table: pa.Table, customer: str, unit: str, as_of: str | None) -> Summary:
    from kizuna.analytics import engine, summary

    dates = table["date"]
    if not pa.types.is_date(dates.type):
        dates = pc.cast(pc.cast(dates, pa.timestamp("s")), pa.date32())
    day = pc.cast(pc.cast(dates, pa.date32()), pa.int32()).cast(pa.int64())
    amount = (
        table["amount"].cast(pa.float64())
        if "amount" in table.column_names
        else pa.array(np.zeros(table.num_rows))
    )
    orders = pa.table(
        {"customer_id": table[customer].cast(pa.string()), "day": day, "amount": amount}
    )
    if as_of:
        from datetime import date

        end_day = date.fromisoformat(as_of).toordinal() - date(1970, 1, 1).toordinal() + 1
    else:
        end_day = int(pc.max(day).as_py()) + 1
    data = engine.from_arrow({"orders": orders})
    summ = summary.transaction_summary(
        data["orders"], end_day=end_day, unit_days=UNITS[unit], day="day"
    ).order_by("customer_id")
    out = summ.to_pyarrow()
    return Summary(
        out["customer_id"].to_pylist(),
        _num(out, "frequency"),
        _num(out, "recency"),
        _num(out, "T"),
        _num(out, "monetary"),
        unit,
    )


def fit_file(model: str, path: Path, time_unit: str = "weeks", as_of: str | None = None) -> Fit:
    """Fit ``model`` on the file at ``path``."""
    if model not in MODELS:
        raise ValidationError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    table = read_table(path)
    if model == "sbg":
        if not {"period", "active"} <= set(table.column_names):
            raise ValidationError("sBG needs a file with columns period,active")
        ordered = table.sort_by("period")
        return sbg.fit(_num(ordered, "active"))
    s = summarise(table, time_unit, as_of)
    if model == "gamma-gamma":
        if s.monetary is None:
            raise ValidationError(
                "Gamma-Gamma needs a monetary column (or transactions with amount)"
            )
        keep = (s.frequency > 0) & (s.monetary > 0)
        (x, m), w = distinct_rows(s.frequency[keep], s.monetary[keep])
        return gamma_gamma.fit(x, m, weights=w)
    (x, t_x, T), w = distinct_rows(s.frequency, s.recency, s.T)
    module = bgnbd if model == "bgnbd" else pareto_nbd
    return module.fit(x, t_x, T, weights=w)


def save_model(fit: Fit, path: Path, time_unit: str | None = None) -> None:
    doc: dict[str, Any] = fit.to_dict()
    if time_unit:
        doc["time_unit"] = time_unit
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def load_model(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(
            f"{path} is not a model saved by `kizuna clv fit --save`: {exc}"
        ) from exc
    if doc.get("model") not in MODELS or not isinstance(doc.get("params"), dict):
        raise ValidationError(f"{path} is not a model saved by `kizuna clv fit --save`")
    return dict(doc)


def predict_file(
    model: dict[str, Any],
    path: Path,
    horizon: float,
    time_unit: str = "weeks",
    as_of: str | None = None,
) -> pa.Table:
    """Per-customer predictions (or, for sBG, survival per period) from a saved model."""
    params = list(model["params"].values())
    name = model["model"]
    if name == "sbg":
        periods = np.arange(0, int(horizon) + 1, dtype=float)
        return pa.table(
            {
                "period": pa.array(periods.astype(np.int64)),
                "survival": pa.array(sbg.survival(params, periods)),
                "retention_rate": pa.array(
                    np.where(
                        periods > 0, sbg.retention_rate(params, np.maximum(periods, 1)), np.nan
                    )
                ),
            }
        )
    s = summarise(read_table(path), model.get("time_unit", time_unit), as_of)
    ids = s.customer_id or [str(i) for i in range(s.frequency.size)]
    if name == "gamma-gamma":
        if s.monetary is None:
            raise ValidationError("Gamma-Gamma predictions need a monetary column")
        spend = gamma_gamma.conditional_expected_spend(params, s.frequency, s.monetary)
        return pa.table({"customer_id": ids, "expected_spend": spend})
    module = bgnbd if name == "bgnbd" else pareto_nbd
    return pa.table(
        {
            "customer_id": ids,
            "p_alive": module.probability_alive(params, s.frequency, s.recency, s.T),
            "expected_purchases": module.conditional_expected_purchases(
                params, horizon, s.frequency, s.recency, s.T
            ),
        }
    )
