"""CLI commands of loyalty analytics (score, kpi, rfm, matrix, cohorts, clv, ...).

``kizuna score`` computes everything and stores a versioned run; ``rfm`` and
``matrix`` print the latest run; ``kpi`` and ``cohorts`` compute from the data
directly; ``clv fit`` / ``clv predict`` work on the user's own files.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kizuna.bootstrap import Context

clv_app = typer.Typer(
    help="CLV models (BG/NBD, Pareto/NBD, Gamma-Gamma, sBG) on your own files.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
LangOpt = Annotated[str, typer.Option("--lang", help="Labels in en or ja.")]


def _parse_day(value: str | None, what: str) -> date | None:
    from kizuna.errors import ValidationError

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{what}={value!r} is not a date; use YYYY-MM-DD") from None


def _workspace(tctx: typer.Context) -> Context:
    """The workspace of the global ``--workspace`` option.

    Read from the root click context rather than module state, so it works
    however ``kizuna.cli`` was loaded (``python -m kizuna.cli`` or the script).
    """
    from kizuna.bootstrap import open_context

    return open_context(tctx.find_root().params.get("workspace"))


def _print_json(doc: Any) -> None:
    from kizuna.cli import console

    console.print_json(json.dumps(doc, default=str, ensure_ascii=False))


def score(
    tctx: typer.Context,
    as_of: Annotated[
        str | None, typer.Option(help="Score as of this local day (default: today).")
    ] = None,
    as_json: JsonOpt = False,
    dashboard: Annotated[
        bool,
        typer.Option(
            help="Also compute and store the dashboard's figures of the run, so its pages "
            "answer at once (minutes at a million customers; without it each page computes "
            "its figure on first view)."
        ),
    ] = True,
) -> None:
    """Compute every score (RFM, CLV, P(alive), loyalty matrix, KPIs) and store it as a new run."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kizuna.cli import console
    from kizuna.services import scoring

    ctx = _workspace(tctx)
    ctx.require_current_schema()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True, disable=as_json,
    ) as bar:  # fmt: skip
        task = bar.add_task("starting", total=None)

        def progress(step: str, what: str) -> None:
            bar.update(task, description=f"[bold]{step}[/bold] {what}")

        run, result = scoring.score(ctx, _parse_day(as_of, "as-of"), progress, dashboard=dashboard)
    if as_json:
        _print_json(
            {
                "run": run.id, "version": run.version, "as_of": run.as_of,
                "customers": run.customers, "models": run.models, "kpis": run.kpis,
                "timings": run.timings,
            }
        )  # fmt: skip
        return
    console.print(
        f"scoring run [bold]v{run.version}[/bold] as of {run.as_of}: {run.customers:,} customers"
    )
    models = Table("model", "parameters", "log-likelihood")
    for key in ("bgnbd", "gamma_gamma"):
        if key in run.models:
            m = run.models[key]
            params = ", ".join(
                f"{k}={v:.4g}" + _se(m["std_errors"].get(k)) for k, v in m["params"].items()
            )
            models.add_row(key, params, f"{m['log_likelihood']:,.1f}")
    console.print(models)
    _render_matrix(run.kpis, "en")
    timings = Table("step", "seconds")
    for k, v in run.timings.items():
        timings.add_row(k, f"{v:.2f}")
    console.print(timings)


def _se(value: float | None) -> str:
    return "" if value is None else f" (±{value:.2g})"


def _render_matrix(kpis: dict[str, Any], lang: str) -> None:
    from kizuna.analytics.loyalty import CLASSES, LABELS
    from kizuna.cli import console

    counts = kpis.get("loyalty_counts", {})
    total = sum(counts.values()) or 1
    table = Table("loyalty", "customers", "share")
    for c in CLASSES:
        n = counts.get(c, 0)
        table.add_row(LABELS[c][lang], f"{n:,}", f"{n / total:.1%}")
    console.print(table)
    share = kpis.get("loyal_revenue_share")
    if share is not None:
        console.print(f"revenue share of truly loyal customers: {share:.1%}")


def matrix(tctx: typer.Context, lang: LangOpt = "en", as_json: JsonOpt = False) -> None:
    """The loyalty matrix (true, latent, spurious, none, attitude unknown) of the latest run."""
    from kizuna.services.scoring import latest_run

    run = latest_run(_workspace(tctx))
    if as_json:
        _print_json(
            {
                "version": run.version,
                "as_of": run.as_of,
                "counts": run.kpis.get("loyalty_counts"),
                "loyal_revenue_share": run.kpis.get("loyal_revenue_share"),
            }
        )
        return
    _render_matrix(run.kpis, lang)


def rfm(tctx: typer.Context, lang: LangOpt = "en", as_json: JsonOpt = False) -> None:
    """RFM segments of the latest scoring run: customers, mean spend, mean CLV."""
    from kizuna.analytics import rfm as rfm_mod
    from kizuna.cli import console
    from kizuna.services.analytics_queries import segment_table

    rows = segment_table(_workspace(tctx))
    if as_json:
        _print_json(rows)
        return
    table = Table("segment", "customers", "mean spend", "mean CLV", "mean P(alive)")
    for r in rows:
        table.add_row(
            rfm_mod.label(r["segment"], lang),
            f"{r['customers']:,}",
            f"{r['mean_spend']:,.0f}",
            f"{r['mean_clv']:,.0f}",
            f"{r['mean_p_alive']:.2f}",
        )
    console.print(table)


def kpi(
    tctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="First local day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last local day, inclusive.")] = None,
    monthly: Annotated[bool, typer.Option(help="One row per month.")] = False,
    trend_months: Annotated[
        int,
        typer.Option(
            help="With --monthly: month ends (up to --until) of the loyalty trend "
            "(historical LTV, loyal revenue share, mean P(alive)).",
            min=1,
        ),
    ] = 12,
    as_json: JsonOpt = False,
) -> None:
    """NPS (± its 95% margin of error), CSAT, CES, repeat rate, retention and churn.

    With --monthly also the loyalty trend per month end: historical LTV, the
    revenue share of loyal customers, mean P(alive) and model-based active customers.
    """
    from kizuna.cli import console
    from kizuna.services.analytics_queries import kpi_frame, loyalty_trend_frame

    ctx = _workspace(tctx)
    ctx.require_current_schema()
    until_day = _parse_day(until, "until")
    frame = kpi_frame(ctx, _parse_day(since, "since"), until_day, monthly)
    trend = loyalty_trend_frame(ctx, trend_months, until_day) if monthly else None
    if as_json:
        records = frame.to_dict(orient="records")
        if trend is not None:
            by_month = {
                r["month"]: r for r in trend.drop(columns="bgnbd_source").to_dict("records")
            }
            for r in records:
                r.update({k: v for k, v in by_month.pop(r["month"], {}).items() if k != "month"})
            records += [{"month": m, **r} for m, r in by_month.items()]
        _print_json(records)
        return
    table = Table(*(["month"] if monthly else []), "NPS (±95%)", "answers", "CSAT", "CES",
                  "repeat rate", *(["retention", "churn"] if monthly else []))  # fmt: skip
    for row in frame.to_dict(orient="records"):
        cells = [row["month"]] if monthly else []
        nps = row.get("nps")
        cells.append("" if _missing(nps) else f"{nps:+.1f} ± {row['margin_of_error']:.1f}")
        cells.append(_fmt(row.get("nps_responses")))
        cells.append(_fmt(row.get("csat"), share=True))
        cells.append(_fmt(row.get("ces")))
        cells.append(_fmt(row.get("repeat_rate"), share=True))
        if monthly:
            cells += [
                _fmt(row.get("retention_rate"), share=True),
                _fmt(row.get("churn_rate"), share=True),
            ]
        table.add_row(*cells)
    console.print(table)
    if trend is not None:
        _render_trend(trend)


def _render_trend(trend: Any) -> None:
    from kizuna.cli import console

    table = Table(
        "month end", "buyers", "historical LTV", "month revenue", "loyal customers",
        "loyal revenue share", "mean P(alive)", "model-active customers",
        title="loyalty trend (loyal = lifecycle stage loyal or ambassador)",
    )  # fmt: skip
    for r in trend.to_dict(orient="records"):
        table.add_row(
            r["month"],
            _fmt(r["buyers"]),
            _fmt(r["historical_ltv"]),
            _fmt(r["month_revenue"]),
            _fmt(r["loyal_customers"]),
            _fmt(r["loyal_revenue_share"], share=True),
            _fmt(r["mean_p_alive"]),
            _fmt(r["model_active_customers"]),
        )
    console.print(table)
    if len(trend):
        console.print(f"P(alive) from BG/NBD: {trend['bgnbd_source'].iloc[0]}")


def _missing(value: Any) -> bool:
    import math

    return value is None or (isinstance(value, float) and math.isnan(value))


def cohorts(
    tctx: typer.Context,
    as_json: JsonOpt = False,
    counts: Annotated[bool, typer.Option(help="Show buyers instead of shares.")] = False,
    max_age: Annotated[int, typer.Option(help="Months since first purchase to show.")] = 12,
) -> None:
    """Cohort retention: % of each first-purchase month's customers buying N months later."""
    from kizuna.cli import console
    from kizuna.services.analytics_queries import cohort_frame

    ctx = _workspace(tctx)
    ctx.require_current_schema()
    frame = cohort_frame(ctx, "customers" if counts else "share")
    frame = frame[[c for c in frame.columns if c == "customers" or int(c) <= max_age]]
    if as_json:
        _print_json(json.loads(frame.to_json(orient="index")))
        return
    table = Table("cohort", *(str(c) for c in frame.columns))
    for idx, row in frame.iterrows():
        cells = [f"{int(row['customers']):,}"]
        cells += [_pct(v) if not counts else _fmt(v) for k, v in row.items() if k != "customers"]
        table.add_row(str(idx), *cells)
    console.print(table)


def lifecycle(
    tctx: typer.Context,
    months: Annotated[int, typer.Option(help="Months of trend to show.")] = 12,
    lang: LangOpt = "en",
) -> None:
    """Lifecycle stages at each month end (the loyal trend) and last month's transitions."""
    from kizuna.analytics.lifecycle import LABELS
    from kizuna.cli import console
    from kizuna.services.analytics_queries import lifecycle_frames

    ctx = _workspace(tctx)
    ctx.require_current_schema()
    trend, moves = lifecycle_frames(ctx, months)
    table = Table("month", *(LABELS[c][lang] for c in trend.columns))
    for month, row in trend.iterrows():
        table.add_row(str(month), *(f"{int(v):,}" for v in row))
    console.print(table)
    label = {**{k: v[lang] for k, v in LABELS.items()}, "(first purchase)": "(first purchase)"}
    moved = Table(
        "from \\ to", *(label[c] for c in moves.columns), title="moves into the last month"
    )
    for stage, row in moves.iterrows():
        moved.add_row(label.get(str(stage), str(stage)), *(f"{int(v):,}" for v in row))
    console.print(moved)


def drivers(
    tctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="First local day of NPS answers.")] = None,
    until: Annotated[str | None, typer.Option(help="Last local day, inclusive.")] = None,
    lang: LangOpt = "en",
    as_json: JsonOpt = False,
) -> None:
    """Key drivers of NPS: experiences that go with higher or lower scores, with 95% CIs."""
    from kizuna.cli import console
    from kizuna.services.analytics_queries import drivers_frame

    ctx = _workspace(tctx)
    ctx.require_current_schema()
    frame = drivers_frame(ctx, _parse_day(since, "since"), _parse_day(until, "until"))
    if as_json:
        _print_json(frame.to_dict(orient="records"))
        return
    table = Table("experience", "answers", "NPS with / without", "score difference (95% CI)",
                  "adjusted (95% CI)")  # fmt: skip
    for r in frame.to_dict(orient="records"):
        table.add_row(
            r[lang],
            f"{r['answers_with']:,}",
            f"{r['nps_with']:+.0f} / {r['nps_without']:+.0f}",
            f"{r['difference']:+.2f} ({r['difference_low']:+.2f}, {r['difference_high']:+.2f})",
            f"{r['adjusted']:+.2f} ({r['adjusted_low']:+.2f}, {r['adjusted_high']:+.2f})"
            if "adjusted" in r
            else "",
        )
    console.print(table)
    console.print("associations, not causes: prove causes with hold-out groups")


def personas(
    tctx: typer.Context,
    k: Annotated[int, typer.Option("-k", help="Number of personas.")] = 6,
    lang: LangOpt = "en",
    as_json: JsonOpt = False,
) -> None:
    """Personas: clusters of customers of the latest run, described in words."""
    from kizuna.analytics.personas import personas as cluster
    from kizuna.cli import console
    from kizuna.services.analytics_queries import scores_frame

    result = cluster(scores_frame(_workspace(tctx)), k=k)
    if as_json:
        _print_json(result.clusters.to_dict(orient="records"))
        return
    table = Table("persona", "customers", "share", "what sets it apart")
    for r in result.clusters.to_dict(orient="records"):
        table.add_row(str(r["persona"]), f"{r['customers']:,}", f"{r['share']:.1%}", r[lang])
    console.print(table)


def _pct(value: Any) -> str:
    return "" if _missing(value) else f"{100 * value:.0f}"


def _fmt(value: Any, share: bool = False) -> str:
    if _missing(value):
        return ""
    if isinstance(value, float) and value.is_integer() and not share:
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.1%}" if share and value <= 1 else f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@clv_app.command("fit")
def clv_fit(
    model: Annotated[str, typer.Option(help="bgnbd, pareto-nbd, gamma-gamma or sbg.")],
    input_file: Annotated[Path, typer.Option("--input", help="CSV or Parquet file.")],
    time_unit: Annotated[
        str, typer.Option(help="Unit of recency/T when summarising transactions (days, weeks).")
    ] = "weeks",
    as_of: Annotated[
        str | None, typer.Option(help="End of observation for transactions (default: last date).")
    ] = None,
    save: Annotated[Path | None, typer.Option(help="Save the fitted model as JSON.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit one model on your file: transactions, a per-customer summary, or period,active for sBG."""
    from kizuna.cli import console
    from kizuna.services import clv_files

    fit = clv_files.fit_file(model, input_file, time_unit, as_of)
    if save:
        clv_files.save_model(fit, save, time_unit)
    if as_json:
        _print_json(fit.to_dict())
        return
    table = Table("parameter", "estimate", "std. error")
    for k, v in fit.params.items():
        table.add_row(k, f"{v:.6g}", f"{fit.std_errors[k]:.3g}")
    console.print(table)
    console.print(
        f"log-likelihood {fit.log_likelihood:,.4f}  customers {fit.n_customers:,.0f}  "
        f"distinct rows {fit.n_rows:,}"
    )


@clv_app.command("predict")
def clv_predict(
    model_spec: Annotated[
        str,
        typer.Option(
            "--model",
            help="A model JSON (from `clv fit --save` or `--json`), or a model name "
            "(bgnbd, pareto-nbd, gamma-gamma) to fit now on --input.",
        ),
    ],
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Customers to predict for.")
    ] = None,
    spend_model: Annotated[
        str | None,
        typer.Option(
            help="Gamma-Gamma model JSON, or `gamma-gamma` to fit it now on --input: "
            "adds expected spend per purchase and the discounted CLV."
        ),
    ] = None,
    horizon: Annotated[
        float, typer.Option(help="Periods ahead (model time unit; sBG: periods).")
    ] = 52.0,
    discount_rate: Annotated[
        float, typer.Option(help="Annual discount rate of the CLV (0.1 = 10%).")
    ] = 0.1,
    time_unit: Annotated[
        str, typer.Option(help="Time unit when summarising transactions (days, weeks).")
    ] = "weeks",
    output: Annotated[
        Path | None, typer.Option(help="Write CSV (or JSON, for a .json name) here.")
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="End of observation for transactions.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply fitted models: P(alive), expected purchases, expected spend and discounted CLV.

    With a purchase model (BG/NBD or Pareto/NBD) and --spend-model, each
    customer gets P(alive), expected purchases in --horizon, expected spend per
    purchase and the CLV over the horizon discounted monthly at --discount-rate.
    """
    import pyarrow.csv as pacsv

    from kizuna.cli import console
    from kizuna.errors import ValidationError
    from kizuna.services import clv_files

    model = clv_files.resolve_model(model_spec, input_file, time_unit, as_of)
    if input_file is None and model["model"] != "sbg":
        raise ValidationError("give --input with the customers to predict for")
    if model["model"] in ("bgnbd", "pareto-nbd"):
        assert input_file is not None
        spend = (
            clv_files.resolve_model(spend_model, input_file, time_unit, as_of)
            if spend_model
            else None
        )
        out = clv_files.predict_value(
            model, spend, input_file, horizon, annual_discount=discount_rate,
            time_unit=time_unit, as_of=as_of,
        )  # fmt: skip
    else:
        if spend_model:
            raise ValidationError("--spend-model goes with a purchase model (bgnbd, pareto-nbd)")
        out = clv_files.predict_file(model, input_file or Path("."), horizon, time_unit, as_of)
    if output and output.suffix.lower() == ".json":
        output.write_text(
            json.dumps(out.to_pylist(), ensure_ascii=False, default=_json_number), encoding="utf-8"
        )
        console.print(f"{out.num_rows:,} rows written to {output}")
        return
    if output:
        pacsv.write_csv(out, output)
        console.print(f"{out.num_rows:,} rows written to {output}")
        return
    if as_json:
        _print_json(out.to_pylist())
        return
    table = Table(*out.column_names)
    for row in out.slice(0, 50).to_pylist():
        table.add_row(*(_fmt(v) for v in row.values()))
    console.print(table)
    if out.num_rows > 50:
        console.print(f"... {out.num_rows - 50:,} more rows; use --output FILE")


def _json_number(value: Any) -> Any:
    return float(value)


@clv_app.command("diagnose")
def clv_diagnose(
    input_file: Annotated[
        Path, typer.Option("--input", help="Transactions: customer,date[,amount].")
    ],
    model: Annotated[str, typer.Option(help="bgnbd or pareto-nbd.")] = "bgnbd",
    holdout_days: Annotated[
        int, typer.Option(help="Days at the end held out (unless --calibration-end).", min=1)
    ] = 182,
    calibration_end: Annotated[
        str | None, typer.Option(help="Last day of the calibration period (YYYY-MM-DD).")
    ] = None,
    time_unit: Annotated[str, typer.Option(help="Time unit of the model (days, weeks).")] = "weeks",
    as_of: Annotated[
        str | None, typer.Option(help="Last day of the holdout (default: last transaction).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Predicted vs actual repeat purchases in a holdout, by calibration frequency (FHL 2005).

    The model is fitted on the purchases before the holdout; each customer's
    purchases in the holdout are predicted from their calibration history and
    compared, bucket by bucket, with what they did.
    """
    from kizuna.cli import console
    from kizuna.services import clv_files

    check = clv_files.diagnose_file(
        input_file, model=model, holdout_days=holdout_days, calibration_end=calibration_end,
        time_unit=time_unit, as_of=as_of,
    )  # fmt: skip
    doc = check.to_dict()
    if as_json:
        _print_json(doc)
        return
    console.print(
        f"{model} fitted on purchases to {doc['calibration_end']}; holdout to "
        f"{doc['holdout_end']} ({doc['holdout_length']:.1f} {time_unit})"
    )
    table = Table("calibration repeat purchases", "customers", "actual (mean)",
                  "predicted (mean)", "predicted − actual")  # fmt: skip
    for r in doc["by_frequency"]:
        table.add_row(
            r["bucket"], f"{r['customers']:,}", f"{r['actual']:.3f}", f"{r['predicted']:.3f}",
            f"{r['predicted'] - r['actual']:+.3f}",
        )  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the analytics commands to the main ``kizuna`` app."""
    app.command("score")(score)
    app.command("kpi")(kpi)
    app.command("rfm")(rfm)
    app.command("matrix")(matrix)
    app.command("cohorts")(cohorts)
    app.command("lifecycle")(lifecycle)
    app.command("drivers")(drivers)
    app.command("personas")(personas)
    app.add_typer(clv_app, name="clv")
