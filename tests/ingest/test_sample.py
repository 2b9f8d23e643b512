"""The sample generator: files the importer accepts, and a truth that holds.

Most tests share one 30,000-customer sample (a few seconds to make). The
recovery tests fit the BG/NBD and Gamma-Gamma models on what was *written*
(orders.csv), not on the simulator's internals, so they prove that the files
carry the process the truth file claims.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from kizuna.bootstrap import Context
from kizuna.domain import vocabulary
from kizuna.errors import ValidationError
from kizuna.ingest import kinds
from kizuna.ingest.sample import SampleSummary, columns_of, generate
from kizuna.ingest.sample_format import ids
from kizuna.ingest.sample_model import ModelParameters
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths

CUSTOMERS = 30_000
PARAMS = ModelParameters()
WEEK = 7 * 86_400
ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+09:00$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("sample"), CUSTOMERS, seed=11)


@pytest.fixture(scope="module")
def files(sample: SampleSummary) -> dict[str, pd.DataFrame]:
    """Every CSV as text, empty cells as empty strings (what an importer sees)."""
    return {
        path.stem: pd.read_csv(path, dtype=str, keep_default_na=False)
        for path in sorted(sample.out_dir.glob("*.csv"))
    }


@pytest.fixture(scope="module")
def truth(files: dict[str, pd.DataFrame]) -> pd.DataFrame:
    t = files["ground_truth"].copy()
    for col in ("lambda", "p", "nu", "attachment", "mean_spend"):
        t[col] = t[col].astype(float)
    t["n_purchases"] = t["n_purchases"].astype(int)
    return t.set_index("customer_id")


@pytest.fixture(scope="module")
def completed(files: dict[str, pd.DataFrame]) -> pd.DataFrame:
    o = files["orders"]
    o = o[o["status"] == "completed"].copy()
    o["at"] = _epoch(o["ordered_at"])
    o["total"] = o["total_amount"].astype(int)
    return o


def _epoch(text: pd.Series) -> pd.Series:
    """Epoch seconds of ISO 8601 strings, whatever resolution pandas picks."""
    moments = pd.to_datetime(text, format="ISO8601", utc=True)
    return (moments - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --- reproducibility -------------------------------------------------------------------


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", 2_000, seed=5)
    generate(tmp_path / "b", 2_000, seed=5)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_different_seed_writes_different_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", 2_000, seed=5)
    generate(tmp_path / "b", 2_000, seed=6)
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a["orders.csv"] != b["orders.csv"]
    assert a["customers.csv"] != b["customers.csv"]


def test_chunk_size_changes_memory_not_data(tmp_path: Path) -> None:
    calls: list[int] = []
    generate(tmp_path / "a", 12_000, seed=3, chunk_size=10_000, progress=calls.append)
    generate(tmp_path / "b", 12_000, seed=3, chunk_size=100_000)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert calls == [10_000, 2_000]


def test_another_model_gives_another_truth(tmp_path: Path) -> None:
    model = ModelParameters(r=2.0, alpha=10.0, gg_q=3.0, gg_gamma=1000.0)
    generate(tmp_path, 5_000, seed=1, model=model)
    truth = pd.read_csv(tmp_path / "ground_truth.csv")
    assert truth["lambda"].mean() == pytest.approx(0.2, rel=0.05)
    assert truth["nu"].mean() == pytest.approx(0.003, rel=0.05)
    doc = json.loads((tmp_path / "ground_truth.json").read_text(encoding="utf-8"))
    assert doc["bg_nbd"]["r"] == 2.0 and doc["gamma_gamma"]["q"] == 3.0
    with pytest.raises(ValidationError, match="gg_q"):
        ModelParameters(gg_q=1.0)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="customers"):
        generate(tmp_path, 0)
    with pytest.raises(ValidationError, match="window"):
        generate(tmp_path, 10, start=date(2026, 1, 1), end=date(2025, 1, 1))
    with pytest.raises(ValidationError, match="seed"):
        generate(tmp_path, 10, seed=-1)
    with pytest.raises(ValidationError, match="timezone"):
        generate(tmp_path, 10, timezone="Asia/Nowhere")


def test_ids_keep_their_form_whatever_else_is_formatted_with_them() -> None:
    alone = ids("C", np.array([9_999_999]), 7).to_pylist()
    mixed = ids("C", np.array([9_999_999, 10_000_000]), 7).to_pylist()
    assert alone == mixed[:1] == ["C9999999"] and mixed[1] == "C10000000"


def test_summer_time_zones_get_the_offset_in_force(tmp_path: Path) -> None:
    generate(tmp_path, 500, seed=1, timezone="Europe/London")
    stamps = pd.read_csv(tmp_path / "orders.csv", dtype=str)["ordered_at"]
    assert set(stamps.str[-6:]) == {"+00:00", "+01:00"}
    zone = ZoneInfo("Europe/London")
    for text in stamps.head(300):
        moment = datetime.fromisoformat(text)
        assert moment.astimezone(zone).utcoffset() == moment.utcoffset()


# --- the files obey kinds.py -----------------------------------------------------------


def test_the_importer_accepts_every_file(workspace: Context, tmp_path: Path) -> None:
    folder = tmp_path / "sample"
    summary = generate(folder, 300, seed=2)
    report = import_paths(workspace, ImportFiles(files_in_folder(folder)))
    assert report.committed and not report.problems
    assert {k: s.inserted for k, s in report.stats.items()} == summary.rows


def test_every_kind_has_a_file_with_its_columns(sample: SampleSummary) -> None:
    for name, kind in kinds.KINDS.items():
        path = sample.out_dir / f"{name}.csv"
        header = pd.read_csv(path, nrows=0).columns.tolist()
        fields = {f.name for f in kind.fields}
        assert set(kind.required) <= set(header), name
        extra = [c for c in header if c not in fields]
        assert all(c.startswith("attr.") for c in extra) and (not extra or kind.attributes_column)
        assert tuple(header) == columns_of(name)
        assert sample.rows[name] > 0, f"{name}.csv is empty"


def test_values_obey_types_enums_and_ranges(files: dict[str, pd.DataFrame]) -> None:
    for name, kind in kinds.KINDS.items():
        df = files[name]
        for f in kind.fields:
            if f.name not in df:
                continue
            col = df[f.name]
            if f.required:
                assert (col != "").all(), f"{name}.{f.name} has empty required values"
            values = col[col != ""]
            if f.type == "enum":
                assert set(values) <= set(f.choices), (
                    f"{name}.{f.name}: {set(values) - set(f.choices)}"
                )
            elif f.type in ("int", "money"):
                numbers = values.astype(np.int64)
                assert f.min_value is None or (numbers >= f.min_value).all(), f"{name}.{f.name}"
                assert f.max_value is None or (numbers <= f.max_value).all(), f"{name}.{f.name}"
            elif f.type == "datetime":
                assert values.str.match(ISO_INSTANT).all(), f"{name}.{f.name}"
            elif f.type == "date":
                assert values.str.match(ISO_DATE).all(), f"{name}.{f.name}"
            elif f.type == "bool":
                assert set(values) <= {"true", "false"}, f"{name}.{f.name}"
            elif f.type == "json":
                assert all(isinstance(json.loads(v), dict) for v in values.head(5000))
            if f.max_chars is not None and f.type == "text":
                assert (values.str.len() <= f.max_chars).all(), f"{name}.{f.name} too long"
        for key in kind.key:
            if key in df and not kind.derive_key:
                assert df.duplicated(list(kind.key)).sum() == 0, f"{name}: duplicate keys"


def test_survey_scores_fit_their_scales(files: dict[str, pd.DataFrame]) -> None:
    answers = files["survey_answers"]
    for kind, (lo, hi) in vocabulary.SURVEY_SCALES.items():
        scores = answers.loc[answers["kind"] == kind, "score"].astype(int)
        assert len(scores) > 100 and scores.between(lo, hi).all(), kind


def test_every_reference_resolves(files: dict[str, pd.DataFrame]) -> None:
    for name, kind in kinds.KINDS.items():
        for f in kind.fields:
            if f.ref is None or f.name not in files[name]:
                continue
            target = kinds.KINDS[f.ref]
            known = set(files[f.ref][target.key[0]])
            used = set(files[name][f.name]) - {""}
            assert used <= known, f"{name}.{f.name}: {sorted(used - known)[:5]}"


def test_returns_point_at_lines_they_could_come_from(files: dict[str, pd.DataFrame]) -> None:
    lines = files["order_lines"].set_index(["order_id", "line_no"])
    returns = files["returns"]
    assert not returns.empty
    matched = lines.loc[list(zip(returns["order_id"], returns["line_no"], strict=True))]
    assert (
        returns["quantity"].astype(int).to_numpy() <= matched["quantity"].astype(int).to_numpy()
    ).all()
    assert (
        returns["refund_amount"].astype(int).to_numpy() <= matched["amount"].astype(int).to_numpy()
    ).all()
    orders = files["orders"].set_index("order_id")
    status = orders.loc[returns["order_id"], "status"]
    assert (status == "completed").all()
    ordered = orders.loc[returns["order_id"], "ordered_at"].to_numpy()
    assert (returns["returned_at"].to_numpy() > ordered).all()


def test_order_lines_add_up_to_the_order_total(files: dict[str, pd.DataFrame]) -> None:
    lines = files["order_lines"].astype({"quantity": int, "unit_price": int, "amount": int})
    orders = files["orders"].astype({"total_amount": int, "discount_amount": int})
    gross = lines.groupby("order_id")["amount"].sum()
    orders = orders.set_index("order_id")
    assert set(gross.index) == set(orders.index)
    paid = gross.loc[orders.index] - orders["discount_amount"]
    assert (paid == orders["total_amount"]).all()
    assert (lines["amount"] <= lines["quantity"] * lines["unit_price"]).all()
    assert 2.5 < len(lines) / len(orders) < 4.0
    coupons = orders["coupon_code"] != ""
    assert ((orders["discount_amount"] > 0) == coupons).all()
    assert 0.01 < (orders["status"] == "cancelled").mean() < 0.05


def test_nothing_happens_before_signup_or_after_the_window(files: dict[str, pd.DataFrame]) -> None:
    # Every instant has the same width and offset, so text order is time order.
    signup = files["customers"].set_index("customer_id")["signup_at"]
    end = "2026-11-01T00:00:00+09:00"
    for name, column in (("orders", "ordered_at"), ("events", "occurred_at"),
                         ("survey_answers", "answered_at"), ("contacts", "opened_at"),
                         ("reviews", "posted_at"), ("community_activity", "occurred_at"),
                         ("trainings", "enrolled_at"), ("consents", "changed_at")):  # fmt: skip
        df = files[name]
        at = df[column].to_numpy()
        assert (at >= signup.loc[df["customer_id"]].to_numpy()).all(), name
        assert (at < end).all(), name
    referrals = files["referrals"]
    referee = referrals[referrals["referee_id"] != ""]
    assert (referee["referred_at"].to_numpy() <= signup.loc[referee["referee_id"]].to_numpy()).all()


# --- the ground truth holds ------------------------------------------------------------


def test_latent_rates_follow_their_distributions(truth: pd.DataFrame) -> None:
    lam, p, nu = truth["lambda"], truth["p"], truth["nu"]
    assert lam.mean() == pytest.approx(PARAMS.r / PARAMS.alpha, rel=0.03)
    assert p.mean() == pytest.approx(PARAMS.a / (PARAMS.a + PARAMS.b), rel=0.03)
    assert nu.mean() == pytest.approx(PARAMS.gg_q / PARAMS.gg_gamma, rel=0.03)
    assert stats.kstest(lam, stats.gamma(PARAMS.r, scale=1 / PARAMS.alpha).cdf).pvalue > 1e-3
    assert stats.kstest(p, stats.beta(PARAMS.a, PARAMS.b).cdf).pvalue > 1e-3
    assert stats.kstest(nu, stats.gamma(PARAMS.gg_q, scale=1 / PARAMS.gg_gamma).cdf).pvalue > 1e-3


def _summaries(completed: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """BG/NBD (x, t_x, T) in weeks from the written orders, window end 2026-11-01 JST."""
    end = int(pd.Timestamp("2026-11-01T00:00:00+09:00").timestamp())
    g = completed.groupby("customer_id")["at"]
    s = pd.DataFrame({"first": g.min(), "last": g.max(), "n": g.size()})
    s["x"] = s["n"] - 1
    s["t_x"] = (s["last"] - s["first"]) / WEEK
    s["T"] = (end - s["first"]) / WEEK
    assert (s["n"] == truth.loc[s.index, "n_purchases"]).all()
    return s


def _bgnbd_nll(theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> float:
    """Negative BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = np.exp(theta)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(
        x > 0,
        np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + tx),
        -np.inf,
    )
    return float(-(a1 + a2 + np.logaddexp(a3, a4)).sum())


def test_bgnbd_fit_on_written_orders_recovers_the_parameters(
    completed: pd.DataFrame, truth: pd.DataFrame
) -> None:
    s = _summaries(completed, truth)
    fit = optimize.minimize(
        _bgnbd_nll, np.zeros(4), args=(s["x"].to_numpy(), s["t_x"].to_numpy(), s["T"].to_numpy()),
        method="L-BFGS-B",
    )  # fmt: skip
    r, alpha, a, b = np.exp(fit.x)
    assert fit.success
    assert r == pytest.approx(PARAMS.r, rel=0.10)
    assert alpha == pytest.approx(PARAMS.alpha, rel=0.10)
    assert a == pytest.approx(PARAMS.a, rel=0.25)
    assert b == pytest.approx(PARAMS.b, rel=0.25)
    assert a / (a + b) == pytest.approx(PARAMS.a / (PARAMS.a + PARAMS.b), rel=0.10)


def test_dropout_after_a_repeat_purchase_happens_with_mean_p(
    completed: pd.DataFrame, truth: pd.DataFrame
) -> None:
    # p is independent of λ, so among customers with a repeat purchase the share
    # who left right after the first one is E[p] = a / (a + b).
    s = _summaries(completed, truth)
    alive = truth.loc[s.index, "alive_at_end"] == "true"
    repeaters = s["x"] >= 1
    left_after_first = (s["x"] == 1) & ~alive
    share = left_after_first[repeaters].mean()
    assert share == pytest.approx(PARAMS.a / (PARAMS.a + PARAMS.b), abs=0.012)
    gone = truth.loc[s.index][~alive]
    dropped = _epoch(gone["dropout_at"])
    assert (dropped == s.loc[gone.index, "last"]).all()


def _gg_nll(theta: np.ndarray, x: np.ndarray, mean: np.ndarray) -> float:
    """Negative Gamma-Gamma log-likelihood of mean order values (Fader & Hardie 2013)."""
    p, q, g = np.exp(theta)
    px = p * x
    return float(-(
        special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
        + (px - 1) * np.log(mean) + px * np.log(x) - (px + q) * np.log(g + x * mean)
    ).sum())  # fmt: skip


def test_gamma_gamma_fit_on_order_totals_recovers_spend(completed: pd.DataFrame) -> None:
    # Every order, the first included, is a Gamma-Gamma draw, so all buyers count.
    g = completed.groupby("customer_id")["total"]
    s = pd.DataFrame({"n": g.size(), "mean": g.mean()})
    start = np.log([1.0, 1.0, float(s["mean"].mean())])
    fit = optimize.minimize(
        _gg_nll, start, args=(s["n"].to_numpy(float), s["mean"].to_numpy()), method="L-BFGS-B"
    )
    p, q, gamma = np.exp(fit.x)
    assert fit.success
    assert p == pytest.approx(PARAMS.gg_p, rel=0.15)
    assert q == pytest.approx(PARAMS.gg_q, rel=0.10)
    assert q / gamma == pytest.approx(PARAMS.gg_q / PARAMS.gg_gamma, rel=0.15)  # E[ν]
    mean_order = PARAMS.gg_p * PARAMS.gg_gamma / (PARAMS.gg_q - 1)
    assert p * gamma / (q - 1) == pytest.approx(mean_order, rel=0.03)


def test_nps_follows_attachment_not_spend(
    files: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    answers = files["survey_answers"]
    nps = answers[answers["kind"] == "nps"].copy()
    nps["score"] = nps["score"].astype(int)
    nps["cls"] = truth.loc[nps["customer_id"], "loyalty_class"].to_numpy()
    mean = nps.groupby("cls")["score"].mean()
    assert min(mean["true"], mean["latent"]) > max(mean["spurious"], mean["none"]) + 1.5

    def net(scores: pd.Series) -> float:
        return float((scores >= 9).mean() - (scores <= 6).mean())

    assert (
        net(nps.loc[nps["cls"] == "true", "score"])
        > 0
        > net(nps.loc[nps["cls"] == "spurious", "score"])
    )
    ratings = files["reviews"].assign(rating=lambda r: r["rating"].astype(int))
    att = truth.loc[ratings["customer_id"], "attachment"].to_numpy()
    assert np.corrcoef(att, ratings["rating"])[0, 1] > 0.5


def test_spurious_loyals_spend_more_than_latent_ones(
    completed: pd.DataFrame, truth: pd.DataFrame
) -> None:
    spend = completed.groupby("customer_id")["total"].sum().reindex(truth.index, fill_value=0)
    by_class = spend.groupby(truth["loyalty_class"]).mean()
    assert by_class["spurious"] > 3 * by_class["latent"]
    assert by_class["true"] > 3 * by_class["none"]
    shares = truth["loyalty_class"].value_counts(normalize=True)
    assert all(shares[c] > 0.05 for c in ("true", "latent", "spurious", "none"))


def test_sale_hunters_buy_with_coupons(completed: pd.DataFrame, truth: pd.DataFrame) -> None:
    persona = truth.loc[completed["customer_id"], "persona"].to_numpy()
    coupon = (completed["coupon_code"] != "").to_numpy()
    assert coupon[persona == "sale_hunter"].mean() > 0.6
    assert coupon[persona == "fan"].mean() < 0.2


def test_comments_are_mostly_japanese_and_themed_by_sentiment(
    files: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    customers = files["customers"]
    assert (customers["language"] == "ja").mean() == pytest.approx(0.8, abs=0.02)
    answers = files["survey_answers"].set_index("answer_id")
    fb = files["ground_truth_feedback"]
    survey_fb = fb[fb["file"] == "survey_answers"].set_index("record_id")
    commented = answers.loc[survey_fb.index]
    assert (commented["comment"] != "").all()
    japanese = commented["language"] == "ja"
    assert commented.loc[japanese, "comment"].str.contains(r"[ぁ-んァ-ン一-龥]").all()
    assert not commented.loc[~japanese, "comment"].str.contains(r"[ぁ-ん]").any()
    nps = commented["kind"] == "nps"
    detractor = nps & (commented["score"].astype(int) <= 6)
    promoter = nps & (commented["score"].astype(int) >= 9)
    assert (survey_fb.loc[detractor, "sentiment"] == "negative").all()
    assert (survey_fb.loc[promoter, "sentiment"] == "positive").all()
    praise = survey_fb.loc[promoter, "theme"].value_counts(normalize=True)
    complaint = survey_fb.loc[detractor, "theme"].value_counts(normalize=True)
    assert praise.index[0] == "quality" and complaint["price"] > praise.get("price", 0)


def test_unresolved_contacts_go_with_low_attachment(truth: pd.DataFrame) -> None:
    unresolved = truth["unresolved_contact"] == "true"
    assert truth.loc[unresolved, "attachment"].mean() < truth.loc[~unresolved, "attachment"].mean()


def test_community_and_referrals_come_from_the_attached(
    files: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    attending = files["community_activity"]
    attending = attending[attending["kind"] == "event_attendance"]
    assert truth.loc[attending["customer_id"], "attachment"].mean() > 0.75
    referrers = files["referrals"]["referrer_id"]
    assert truth.loc[referrers, "attachment"].mean() > 0.75


def test_in_market_accounts_research_their_topic(files: dict[str, pd.DataFrame]) -> None:
    accounts = files["ground_truth_accounts"]
    in_market = accounts[accounts["in_market_topic"] != ""].set_index("account_id")
    members = files["customers"][["customer_id", "account_id"]]
    events = files["events"].merge(members, on="customer_id")
    events = events[
        events["account_id"].isin(in_market.index) & events["page"].str.startswith("/business/")
    ]
    since = pd.to_datetime(in_market.loc[events["account_id"], "in_market_since"], format="ISO8601")
    recent = events[
        pd.to_datetime(events["occurred_at"], format="ISO8601").to_numpy() >= since.to_numpy()
    ]
    on_topic = (
        recent["topic"].to_numpy()
        == in_market.loc[recent["account_id"], "in_market_topic"].to_numpy()
    )
    assert len(recent) > 100 and on_topic.mean() > 0.6
    b2b = (files["customers"]["account_id"] != "").mean()
    assert 0.02 < b2b < 0.05


def test_model_and_parameters_are_written_beside_the_data(sample: SampleSummary) -> None:
    doc = json.loads((sample.out_dir / "ground_truth.json").read_text(encoding="utf-8"))
    assert doc["bg_nbd"] == {"r": PARAMS.r, "alpha": PARAMS.alpha, "a": PARAMS.a, "b": PARAMS.b}
    assert doc["customers"] == CUSTOMERS and doc["seed"] == 11
    assert sum(doc["loyalty_classes"].values()) == CUSTOMERS
    model = (sample.out_dir / "MODEL.md").read_text(encoding="utf-8")
    assert "BG/NBD" in model and "Gamma-Gamma" in model and f"{CUSTOMERS:,}" in model
    assert sample.rows["customers"] == CUSTOMERS
