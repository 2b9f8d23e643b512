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


def _transactions(table: pa.Table, customer: str) -> pa.Table:
    """``customer_id, day, amount`` (day = days since 1970-01-01) from a transactions file."""
    dates = table["date"]
    if not pa.types.is_date(dates.type):
        dates = pc.cast(pc.cast(dates, pa.timestamp("s")), pa.date32())
    day = pc.cast(pc.cast(dates, pa.date32()), pa.int32()).cast(pa.int64())
    amount = (
        table["amount"].cast(pa.float64())
        if "amount" in table.column_names
        else pa.array(np.zeros(table.num_rows))
    )
    return pa.table(
        {"customer_id": table[customer].cast(pa.string()), "day": day, "amount": amount}
    )


def _end_day(orders: pa.Table, as_of: str | None) -> int:
    """The exclusive last day: the day after ``as_of``, or after the last transaction."""
    if as_of:
        from datetime import date

        try:
            last = date.fromisoformat(as_of)
        except ValueError:
            raise ValidationError(f"as-of {as_of!r} is not a date; use YYYY-MM-DD") from None
        return last.toordinal() - date(1970, 1, 1).toordinal() + 1
    return int(pc.max(orders["day"]).as_py()) + 1


def _from_transactions(table: pa.Table, customer: str, unit: str, as_of: str | None) -> Summary:
    from kizuna.analytics import engine, summary

    orders = _transactions(table, customer)
    end_day = _end_day(orders, as_of)
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
    if model == "bgnbd":
        # BG/NBD groups one-row-per-customer input into distinct histories itself,
        # and only when that pays (see bgnbd._Objective).
        return bgnbd.fit(s.frequency, s.recency, s.T)
    (x, t_x, T), w = distinct_rows(s.frequency, s.recency, s.T)
    return pareto_nbd.fit(x, t_x, T, weights=w)


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


#: Periods per year of each time unit, to turn an annual discount rate into a per-step one.
PER_YEAR = {"days": 365.25, "weeks": 365.25 / 7.0}


def resolve_model(
    spec: str, input_path: Path | None, time_unit: str = "weeks", as_of: str | None = None
) -> dict[str, Any]:
    """A model document from ``spec``: a JSON file (``clv fit --save`` or ``--json``
    output), or a model name, fitted now on ``input_path``."""
    path = Path(spec)
    if path.exists():
        return load_model(path)
    if spec in MODELS:
        if input_path is None:
            raise ValidationError(f"to fit {spec} on the fly, give --input with the data")
        doc = fit_file(spec, input_path, time_unit, as_of).to_dict()
        doc["time_unit"] = time_unit
        return doc
    raise ValidationError(f"{spec} is neither a model file nor a model name ({', '.join(MODELS)})")


def predict_value(
    purchase_model: dict[str, Any],
    spend_model: dict[str, Any] | None,
    path: Path,
    horizon: float,
    *,
    annual_discount: float = 0.1,
    time_unit: str = "weeks",
    as_of: str | None = None,
) -> pa.Table:
    """Per customer: P(alive), expected purchases in ``horizon``, expected spend and CLV.

    The purchase model (BG/NBD or Pareto/NBD) and the spend model
    (Gamma-Gamma) are combined as in Fader, Hardie & Lee (2005, "RFM and
    CLV"): CLV is the expected spend per purchase times the expected
    purchases of each month of the horizon, discounted at ``annual_discount``.
    Without a spend model only the purchase columns are returned.
    """
    from kizuna.analytics.clv import value

    name = purchase_model["model"]
    if name not in ("bgnbd", "pareto-nbd"):
        raise ValidationError(f"--model must be a purchase model (bgnbd or pareto-nbd), not {name}")
    if spend_model is not None and spend_model["model"] != "gamma-gamma":
        raise ValidationError(f"--spend-model must be gamma-gamma, not {spend_model['model']}")
    if horizon <= 0:
        raise ValidationError("--horizon must be positive")
    unit = str(purchase_model.get("time_unit", time_unit))
    if unit not in PER_YEAR:
        raise ValidationError(f"time unit must be one of {', '.join(PER_YEAR)}")
    s = summarise(read_table(path), unit, as_of)
    ids = s.customer_id or [str(i) for i in range(s.frequency.size)]
    module = bgnbd if name == "bgnbd" else pareto_nbd
    params = _params(purchase_model)

    def purchases(t: float) -> np.ndarray:
        return np.asarray(
            module.conditional_expected_purchases(params, t, s.frequency, s.recency, s.T)
        )

    cols: dict[str, Any] = {
        "customer_id": ids,
        "p_alive": module.probability_alive(params, s.frequency, s.recency, s.T),
        "expected_purchases": purchases(horizon),
    }
    if spend_model is not None:
        if s.monetary is None:
            raise ValidationError(
                "CLV needs spend: a monetary column in the summary, or transactions with amount"
            )
        spend = gamma_gamma.conditional_expected_spend(
            _params(spend_model), s.frequency, s.monetary
        )
        per_year = PER_YEAR[unit]
        steps = max(1, round(horizon / (per_year / 12.0)))
        cols["expected_spend"] = spend
        cols["clv"] = value.discounted_value(
            purchases,
            spend,
            horizon=horizon,
            steps=steps,
            annual_discount=annual_discount,
            unit_per_year=per_year,
        )
    return pa.table(cols)


def _params(model: dict[str, Any]) -> list[float]:
    values = list(model["params"].values())
    if any(v is None or not np.isfinite(v) or v <= 0 for v in values):
        raise ValidationError(
            f"the {model['model']} model has invalid parameters: {model['params']}"
        )
    return [float(v) for v in values]


def diagnose_file(
    path: Path,
    *,
    model: str = "bgnbd",
    holdout_days: int | None = None,
    calibration_end: str | None = None,
    time_unit: str = "weeks",
    as_of: str | None = None,
) -> Any:
    """Fit ``model`` on a transactions file up to the calibration end, check it on the rest.

    Returns a :class:`kizuna.analytics.clv.diagnostics.HoldoutCheck`. The
    holdout is either the last ``holdout_days`` before the end (``as_of`` or
    the last transaction), or everything after ``calibration_end``.
    """
    from datetime import date

    from kizuna.analytics import engine
    from kizuna.analytics.clv import diagnostics

    if time_unit not in UNITS:
        raise ValidationError(f"time unit must be one of {', '.join(UNITS)}")
    table = read_table(path)
    cols = set(table.column_names)
    customer = "customer_id" if "customer_id" in cols else "customer"
    if not {customer, "date"} <= cols:
        raise ValidationError(
            "diagnostics need dated transactions: a file with customer,date[,amount]"
        )
    orders = _transactions(table, customer)
    end_day = _end_day(orders, as_of)
    if calibration_end is not None:
        try:
            cal = date.fromisoformat(calibration_end)
        except ValueError:
            raise ValidationError(f"{calibration_end!r} is not a date; use YYYY-MM-DD") from None
        cal_end = cal.toordinal() - date(1970, 1, 1).toordinal() + 1
    else:
        cal_end = end_day - (holdout_days if holdout_days is not None else 182)
    if not cal_end < end_day:
        raise ValidationError("the calibration period must end before the last day")
    data = engine.from_arrow({"orders": orders})
    return diagnostics.holdout_check(
        data["orders"],
        calibration_end_day=cal_end,
        observation_end_day=end_day,
        unit_days=UNITS[time_unit],
        model=model,
        day="day",
    )
