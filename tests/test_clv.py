"""Tests for analysis.clv: summaries, closed-form BG/NBD / Gamma-Gamma, fits against CDNOW.

Published references (Fader, Hardie & Lee 2005, "Counting your customers the easy way";
Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") on the 2,357-customer
CDNOW sample, calibration = 39 weeks from 1997-01-01, holdout = the next 39 weeks:

* BG/NBD MLE r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4
* E[X(78)] for a new customer = 1.858; E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226
* Gamma-Gamma p=6.25, q=3.74, gamma=15.44 on the 946 repeat buyers
* holdout: 1,882 actual repeat purchases

Tests reading the data skip when ``../shared/data/cdnow`` is absent (override the
root with ``CLIENTELE_DATA_ROOT``).  Tests that fit models are marked ``slow``: the
first fit in a process imports PyMC and compiles (about 10-15 s), later fits take
under a second.
"""

from __future__ import annotations

import dataclasses

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from analysis import clv
from analysis.clv.models.basic import purchases_given_latent

PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_LL = -9582.4
PAPER_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}
CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"


def _data_root() -> Path:
    override = os.environ.get("CLIENTELE_DATA_ROOT")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def cdnow_dir() -> Path:
    path = _data_root() / "cdnow"
    if not path.is_dir():
        pytest.skip(f"CDNOW data not found at {path} (set CLIENTELE_DATA_ROOT to the shared data root)")
    return path


@pytest.fixture(scope="module")
def cdnow_summary(cdnow_dir: Path) -> pd.DataFrame:
    """The published calibration summary, renamed to the module's column names."""
    raw = pd.read_csv(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")
    return raw.rename(
        columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"}
    )


@pytest.fixture(scope="module")
def cdnow_transactions(cdnow_dir: Path) -> pd.DataFrame:
    raw = pd.read_csv(
        cdnow_dir / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "number_of_cds", "amount"],
    )
    return raw.assign(timestamp=pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"))


@pytest.fixture(scope="module")
def cdnow_holdout_summary(cdnow_transactions: pd.DataFrame) -> pd.DataFrame:
    return clv.rfm_summary(
        cdnow_transactions,
        observation_period_end=OBSERVATION_END,
        calibration_period_end=CALIBRATION_END,
        time_unit="W",
    )


@pytest.fixture(scope="module")
def bgnbd_fit(cdnow_summary: pd.DataFrame) -> clv.PurchaseModelFit:
    return clv.fit_bgnbd(cdnow_summary, random_state=0)


@pytest.fixture(scope="module")
def gamma_gamma_fit(cdnow_summary: pd.DataFrame) -> clv.SpendModelFit:
    return clv.fit_gamma_gamma(cdnow_summary, random_state=0)


@pytest.fixture(scope="module")
def holdout_bgnbd_fit(cdnow_holdout_summary: pd.DataFrame) -> clv.PurchaseModelFit:
    return clv.fit_bgnbd(cdnow_holdout_summary, random_state=0)


def _relative_error(found: float, expected: float) -> float:
    return abs(found - expected) / abs(expected)


# --------------------------------------------------------------------------------------
# rfm_summary on hand-made transactions
# --------------------------------------------------------------------------------------


@pytest.fixture
def toy_transactions() -> pd.DataFrame:
    rows = [
        # customer 1: two purchases on its first day (one occasion), a repeat a week
        # later (two baskets same day), one in the holdout, one after the observation end
        ("c1", "2024-01-01 09:00", 10.0),
        ("c1", "2024-01-01 17:30", 5.0),
        ("c1", "2024-01-08 10:00", 20.0),
        ("c1", "2024-01-08 11:00", 4.0),
        ("c1", "2024-02-05 12:00", 30.0),
        ("c1", "2024-03-01 12:00", 99.0),
        # customer 2: a single purchase on the calibration end day
        ("c2", "2024-01-29 23:59", 7.0),
        # customer 3: first purchase in the holdout -> not part of the calibration cohort
        ("c3", "2024-02-01 08:00", 3.0),
        # customer 4: repeat purchases only in the holdout, on two days
        ("c4", "2024-01-15 08:00", 8.0),
        ("c4", "2024-02-02 08:00", 2.0),
        ("c4", "2024-02-12 08:00", 6.0),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"]))


def test_rfm_summary_aggregates_purchases_per_customer_day(toy_transactions: pd.DataFrame) -> None:
    summary = clv.rfm_summary(toy_transactions, observation_period_end="2024-01-29", time_unit="D")
    assert list(summary.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    by_id = summary.set_index("customer_id")
    # c3 first bought after the end; c1's two same-day baskets are one occasion each day
    assert list(by_id.index) == ["c1", "c2", "c4"]
    assert by_id.loc["c1", "frequency"] == 1
    assert by_id.loc["c1", "recency"] == 7.0
    assert by_id.loc["c1", "T"] == 28.0
    assert by_id.loc["c1", "monetary_value"] == 24.0  # the repeat day's two baskets summed
    assert by_id.loc["c2"].to_dict() == {"frequency": 0, "recency": 0.0, "T": 0.0, "monetary_value": 0.0}
    assert by_id.loc["c4", "T"] == 14.0


def test_rfm_summary_weeks_and_holdout_columns(toy_transactions: pd.DataFrame) -> None:
    summary = clv.rfm_summary(
        toy_transactions,
        observation_period_end="2024-02-26",
        calibration_period_end="2024-01-29",
        time_unit="W",
    ).set_index("customer_id")
    assert list(summary.index) == ["c1", "c2", "c4"]
    assert summary.loc["c1", "recency"] == pytest.approx(1.0)
    assert summary.loc["c1", "T"] == pytest.approx(4.0)
    assert summary["frequency_holdout"].to_dict() == {"c1": 1, "c2": 0, "c4": 2}
    assert summary["monetary_value_holdout"].to_dict() == {"c1": 30.0, "c2": 0.0, "c4": 4.0}
    # 2024-03-01 is after the observation end and must not count anywhere
    assert (summary["duration_holdout"] == 4.0).all()
    # calibration columns do not see holdout purchases
    assert summary.loc["c4", "frequency"] == 0


@pytest.mark.parametrize("aggregate_by", ["D", None])
@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_summary_and_split_in_one_pass_equal_the_two_summaries(
    toy_transactions: pd.DataFrame, aggregate_by: str | None, zone: str | None
) -> None:
    """The value page's two summaries come from one query; they are the frames of the two calls."""
    tx = toy_transactions if zone is None else toy_transactions.assign(timestamp=toy_transactions["timestamp"].dt.tz_localize(zone))
    ends = {"observation_period_end": "2024-02-26", "time_unit": "W", "aggregate_by": aggregate_by}
    full, split = clv.rfm_summary_and_split(tx, calibration_period_end="2024-01-29", **ends)
    pd.testing.assert_frame_equal(full, clv.rfm_summary(tx, **ends))
    pd.testing.assert_frame_equal(split, clv.rfm_summary(tx, calibration_period_end="2024-01-29", **ends))
    assert "c3" in set(full["customer_id"]) and "c3" not in set(split["customer_id"])  # c3 started in the holdout


@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_summary_of_a_parquet_file_equals_that_of_the_dataframe(toy_transactions: pd.DataFrame, tmp_path: Path,
                                                                 zone: str | None) -> None:
    """A Parquet path is summarised by DuckDB in place (naive times) or read into pandas first (zoned times)."""
    tx = toy_transactions if zone is None else toy_transactions.assign(timestamp=toy_transactions["timestamp"].dt.tz_localize(zone))
    path = tmp_path / "transactions.parquet"
    tx.to_parquet(path)
    for aggregate_by in ("D", None):
        ends = {"observation_period_end": "2024-02-26", "calibration_period_end": "2024-01-29", "aggregate_by": aggregate_by}
        for ours, theirs in zip(clv.rfm_summary_and_split(path, **ends), clv.rfm_summary_and_split(tx, **ends), strict=True):
            pd.testing.assert_frame_equal(ours, theirs)
    with pytest.raises(ValueError, match=r"column\(s\) \['value'\] not found"):
        clv.rfm_summary(path, observation_period_end="2024-02-26", monetary_value_col="value")
    with pytest.raises(ValueError, match="no purchase on or before 2023-01-01"):
        clv.rfm_summary(path, observation_period_end="2023-01-01")
    # missing values as pandas counts them: NULL, or a NaN stored as a value (as writers other than pandas do)
    import duckdb

    nan_path = tmp_path / "with_nan.parquet"
    duckdb.sql(f"COPY (SELECT 'c9' AS customer_id, TIMESTAMP '2024-01-02' AS timestamp, 'nan'::DOUBLE AS amount "
               f"UNION ALL SELECT 'c8', TIMESTAMP '2024-01-03', 2.0) TO '{nan_path}' (FORMAT parquet)")
    with pytest.raises(ValueError, match=r"1 row\(s\) have a missing"):
        clv.rfm_summary(nan_path, observation_period_end="2024-02-26")


def test_rfm_summary_without_daily_aggregation_counts_each_transaction(
    toy_transactions: pd.DataFrame,
) -> None:
    summary = clv.rfm_summary(
        toy_transactions, observation_period_end="2024-01-30", time_unit="D", aggregate_by=None
    ).set_index("customer_id")
    assert summary.loc["c1", "frequency"] == 3
    assert summary.loc["c1", "monetary_value"] == pytest.approx((5.0 + 20.0 + 4.0) / 3)


def test_rfm_summary_without_monetary_column(toy_transactions: pd.DataFrame) -> None:
    summary = clv.rfm_summary(
        toy_transactions.drop(columns="amount"), monetary_value_col=None, observation_period_end="2024-01-29"
    )
    assert "monetary_value" not in summary.columns
    assert summary["frequency"].tolist() == [1, 0, 0]


def test_rfm_summary_reports_missing_columns_and_unparsed_dates(toy_transactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"\['InvoiceDate'\] not found.*Found: \['customer_id'"):
        clv.rfm_summary(toy_transactions, datetime_col="InvoiceDate", observation_period_end="2024-01-29")
    as_text = toy_transactions.assign(timestamp=toy_transactions["timestamp"].dt.strftime("%Y%m%d"))
    with pytest.raises(TypeError, match="expected datetime64"):
        clv.rfm_summary(as_text, observation_period_end="2024-01-29")
    with pytest.raises(ValueError, match="must be before"):
        clv.rfm_summary(
            toy_transactions, observation_period_end="2024-01-29", calibration_period_end="2024-02-01"
        )


# --------------------------------------------------------------------------------------
# Closed-form BG/NBD and Gamma-Gamma (no PyMC needed)
# --------------------------------------------------------------------------------------


def test_expected_purchases_new_customer_matches_paper() -> None:
    assert _relative_error(float(clv.expected_purchases_new_customer(PAPER_BGNBD, 78.0)), 1.858) < 0.01


def test_conditional_expected_purchases_matches_paper() -> None:
    found = float(clv.conditional_expected_purchases(PAPER_BGNBD, 2, 30.43, 38.86, 39))
    assert _relative_error(found, 1.226) < 0.01


def test_conditional_expectation_reduces_to_new_customer_at_birth() -> None:
    horizons = np.array([1.0, 10.0, 39.0, 78.0])
    at_birth = clv.conditional_expected_purchases(PAPER_BGNBD, 0, 0.0, 0.0, horizons)
    np.testing.assert_allclose(
        at_birth, clv.expected_purchases_new_customer(PAPER_BGNBD, horizons), rtol=1e-12
    )


def test_expected_purchases_new_customer_matches_simulation() -> None:
    """Simulate the BG/NBD story with the paper's parameters and compare means."""
    rng = np.random.default_rng(20050401)
    n_customers, horizon = 200_000, 78.0
    rate = rng.gamma(PAPER_BGNBD["r"], 1.0 / PAPER_BGNBD["alpha"], n_customers)
    dropout = rng.beta(PAPER_BGNBD["a"], PAPER_BGNBD["b"], n_customers)
    clock = np.zeros(n_customers)
    purchases = np.zeros(n_customers)
    active = np.ones(n_customers, dtype=bool)
    while active.any():  # one iteration per purchase event, vectorised over customers
        clock[active] += rng.exponential(1.0 / rate[active])
        bought = active & (clock <= horizon)
        purchases[bought] += 1
        active = bought & (rng.random(n_customers) >= dropout)
    expected = float(clv.expected_purchases_new_customer(PAPER_BGNBD, horizon))
    standard_error = purchases.std() / np.sqrt(n_customers)
    assert abs(purchases.mean() - expected) < 4 * standard_error


def test_p_alive_properties() -> None:
    assert clv.p_alive(PAPER_BGNBD, 0, 0.0, 38.86) == pytest.approx(1.0)
    alive = clv.p_alive(PAPER_BGNBD, 3, np.array([5.0, 20.0, 38.0]), 38.86)
    assert np.all(np.diff(alive) > 0)  # a more recent last purchase means more likely alive
    assert np.all((alive > 0) & (alive < 1))
    # closed form written out for one customer
    r, alpha, a, b = PAPER_BGNBD.values()
    by_hand = 1 / (1 + a / (b + 3 - 1) * ((alpha + 38.86) / (alpha + 20.0)) ** (r + 3))
    assert alive[1] == pytest.approx(by_hand, rel=1e-12)


def test_bgnbd_log_likelihood_matches_unlogged_formula() -> None:
    from scipy.special import beta as beta_fn
    from scipy.special import gamma as gamma_fn

    x = np.array([0, 1, 2, 5])
    t_x = np.array([0.0, 3.5, 30.43, 20.0])
    T = np.array([38.86, 38.86, 38.86, 32.0])
    r, alpha, a, b = PAPER_BGNBD.values()
    common = gamma_fn(r + x) * alpha**r / gamma_fn(r) / beta_fn(a, b)
    likelihood = common * (
        beta_fn(a, b + x) / (alpha + T) ** (r + x)
        + (x > 0) * beta_fn(a + 1, np.maximum(b + x - 1, 1e-12)) / (alpha + t_x) ** (r + x)
    )
    assert clv.bgnbd_log_likelihood(PAPER_BGNBD, x, t_x, T) == pytest.approx(
        np.log(likelihood).sum(), rel=1e-10
    )


def test_conditional_expected_spend_shrinks_towards_population_mean() -> None:
    p, q, v = PAPER_GAMMA_GAMMA.values()
    population_mean = p * v / (q - 1)
    spend = clv.conditional_expected_spend(PAPER_GAMMA_GAMMA, [0, 1, 1000], [0.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(population_mean)
    assert population_mean < spend[1] < spend[2] < 100.0
    assert spend[2] == pytest.approx(100.0, rel=0.01)


def test_customer_lifetime_value_identities() -> None:
    bgnbd = clv.PurchaseModelFit(model="bgnbd", params_=PAPER_BGNBD)
    spend = clv.SpendModelFit(params_=PAPER_GAMMA_GAMMA)
    summary = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "frequency": [0, 2, 10],
            "recency": [0.0, 30.43, 37.0],
            "T": [38.86, 38.86, 38.86],
            "monetary_value": [0.0, 22.35, 60.0],
        }
    )
    undiscounted = clv.customer_lifetime_value(
        bgnbd, spend, summary, horizon_months=12, discount_rate_annual=0.0
    )
    horizon = 12 * clv.PERIODS_PER_MONTH["W"]
    expected_purchases = clv.conditional_expected_purchases(
        PAPER_BGNBD, summary["frequency"], summary["recency"], summary["T"], horizon
    )
    np.testing.assert_allclose(undiscounted["expected_purchases"], expected_purchases, rtol=1e-12)
    np.testing.assert_allclose(
        undiscounted["clv"], undiscounted["expected_spend"] * expected_purchases, rtol=1e-12
    )
    discounted = clv.customer_lifetime_value(bgnbd, spend, summary, discount_rate_annual=0.1, margin=0.3)
    assert np.all(discounted["clv"] < 0.3 * undiscounted["clv"])
    assert np.all(discounted["clv"] > 0.3 * undiscounted["clv"] / 1.1)  # at most a year of discounting
    assert list(discounted.columns) == [
        "customer_id",
        "expected_purchases",
        "p_alive",
        "expected_spend",
        "clv",
    ]


def test_holdout_metrics_and_comparison_on_hand_made_summary() -> None:
    bgnbd = clv.PurchaseModelFit(model="bgnbd", params_=PAPER_BGNBD)
    summary = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "frequency": [0, 1, 9, 0],
            "recency": [0.0, 10.0, 30.0, 0.0],
            "T": [20.0, 20.0, 39.0, 0.0],
            "frequency_holdout": [0, 2, 8, 1],
            "duration_holdout": [39.0] * 4,
        }
    )
    metrics = clv.holdout_metrics(bgnbd, summary)
    predicted = clv.conditional_expected_purchases(
        PAPER_BGNBD, summary["frequency"], summary["recency"], summary["T"], 39.0
    )
    naive = np.array([0.0, 39.0 / 20.0, 9 * 39.0 / 39.0, 0.0])  # T = 0 -> no rate, not a division error
    actual = summary["frequency_holdout"].to_numpy()
    assert metrics["actual_total"] == 11
    assert metrics["predicted_total"] == pytest.approx(predicted.sum())
    assert metrics["mae_model"] == pytest.approx(np.abs(predicted - actual).mean())
    assert metrics["mae_naive"] == pytest.approx(np.abs(naive - actual).mean())
    table = clv.holdout_comparison(bgnbd, summary, max_frequency=2)
    assert list(table.index) == ["0", "1", "2+"]
    assert table["customers"].tolist() == [2, 1, 1]
    assert table.loc["0", "actual_mean"] == 0.5


def test_p_alive_matrix_grid() -> None:
    matrix = clv.p_alive_matrix(PAPER_BGNBD, T=10.0, max_frequency=4)
    assert matrix.shape == (5, 11)
    assert matrix.index.name == "frequency" and matrix.columns.name == "recency"
    assert matrix.loc[0, 0] == 1.0 and matrix.loc[0, 1:].isna().all()
    assert clv.p_alive_matrix(PAPER_BGNBD, T=10.0, max_frequency=2, max_recency=12).loc[1, 11:].isna().all()
    assert (matrix.loc[1:].diff(axis=1).iloc[:, 1:] > 0).all().all()
    assert matrix.loc[3, 7] == pytest.approx(float(clv.p_alive(PAPER_BGNBD, 3, 7.0, 10.0)))


def test_purchase_model_fit_validates_parameters() -> None:
    with pytest.raises(ValueError, match="missing \\['s', 'beta'\\]"):
        clv.PurchaseModelFit(model="pareto_nbd", params_=PAPER_BGNBD)
    with pytest.raises(ValueError, match="expected one of .*params.14_value.model"):
        clv.PurchaseModelFit(model="bg", params_=PAPER_BGNBD)
    with pytest.raises(ValueError, match="MBG/NBD params: missing"):
        clv.p_alive({"r": 1.0, "alpha": 1.0}, 1, 1.0, 2.0, model="mbgnbd")


# Parameters of the three families on CDNOW (the published / reference MLEs), for scoring from parameters.
FAMILY_PARAMS = {
    "bgnbd": PAPER_BGNBD,
    "mbgnbd": {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614},
    "pareto_nbd": {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67},
}
HISTORIES = pd.DataFrame(
    {
        "customer_id": ["new", "one-off", "steady", "lapsed", "young"],
        "frequency": [0, 0, 6, 6, 1],
        "recency": [0.0, 0.0, 37.0, 8.0, 3.0],
        "T": [0.0, 38.0, 38.0, 38.0, 3.9],
        "monetary_value": [0.0, 0.0, 30.0, 30.0, 60.0],
    }
)


@pytest.mark.parametrize("model", sorted(FAMILY_PARAMS))
def test_every_scoring_path_works_for_every_family(model: str) -> None:
    """P(alive), expected purchases, both grids, CLV and intervals from parameters alone, any family."""
    fit = clv.PurchaseModelFit(model=model, params_=FAMILY_PARAMS[model])
    x, t_x, T = HISTORIES["frequency"], HISTORIES["recency"], HISTORIES["T"]
    alive = fit.p_alive(x, t_x, T)
    np.testing.assert_allclose(alive, clv.p_alive(FAMILY_PARAMS[model], x, t_x, T, model=model), rtol=1e-12)
    assert np.all((alive > 0) & (alive <= 1))
    assert alive[2] > alive[3]  # same purchases, the one who bought recently is likelier alive
    if model == "bgnbd":
        assert alive[1] == 1.0  # the BG/NBD keeps every one-time buyer alive
    else:
        assert alive[1] < alive[0] <= 1.0  # the others let a silent one-time buyer go
    purchases = fit.expected_purchases(x, t_x, T, 39.0)
    assert np.all(purchases >= 0) and purchases[2] > purchases[3]
    # the conditional expectation of a customer "born" now is the new-customer expectation
    np.testing.assert_allclose(fit.expected_purchases(0, 0.0, 0.0, [10.0, 39.0]),
                               fit.expected_purchases_new_customer([10.0, 39.0]), rtol=1e-9)
    grid = clv.p_alive_matrix(fit, T=20.0, max_frequency=4)
    assert grid.shape == (5, 21) and grid.loc[0, 1:].isna().all() and grid.loc[2, 7] == pytest.approx(
        float(fit.p_alive(2, 7.0, 20.0)))
    expected_grid = clv.expected_purchases_matrix(FAMILY_PARAMS[model], T=20.0, t=10.0, max_frequency=3, model=model)
    assert expected_grid.loc[3, 20.0] == pytest.approx(float(fit.expected_purchases(3, 20.0, 20.0, 10.0)))
    spend = clv.SpendModelFit(params_=PAPER_GAMMA_GAMMA)
    value = clv.customer_lifetime_value(fit, spend, HISTORIES, discount_rate_annual=0.0)
    horizon = 12 * clv.PERIODS_PER_MONTH["W"]
    np.testing.assert_allclose(value["expected_purchases"], fit.expected_purchases(x, t_x, T, horizon), rtol=1e-9)
    intervals = clv.clv_intervals(fit, spend, HISTORIES, n_draws=400, random_state=1)
    assert (intervals["clv_low"] <= intervals["clv_high"]).all()
    # parameters known exactly: P(alive) has no parameter uncertainty
    np.testing.assert_allclose(intervals["p_alive_low"], alive, rtol=1e-9)
    np.testing.assert_allclose(intervals["p_alive_high"], alive, rtol=1e-9)


@pytest.mark.parametrize("model", sorted(FAMILY_PARAMS))
def test_posterior_draws_average_to_the_closed_form(model: str) -> None:
    """The latent-state draws behind the intervals are the posterior the closed forms integrate."""
    params = FAMILY_PARAMS[model]
    formulas = clv.family(model).formulas
    rng = np.random.default_rng(7)
    x, t_x, T = (HISTORIES[c].to_numpy(float)[1:] for c in ("frequency", "recency", "T"))
    n_draws = 200_000
    draw_params = {k: np.full((n_draws, 1), v) for k, v in params.items()}
    alive, rate, dropout = formulas.latent_draws(draw_params, x, t_x, T, rng)
    draws = np.where(alive, purchases_given_latent(rate, dropout, 39.0), 0.0)
    standard_error = draws.std(axis=0) / np.sqrt(n_draws)
    closed = formulas.conditional_expected_purchases(params, x, t_x, T, 39.0)
    assert np.all(np.abs(draws.mean(axis=0) - closed) < 4 * standard_error + 1e-9)
    spend = clv.models.gamma_gamma.spend_draws({k: np.full((n_draws, 1), v) for k, v in PAPER_GAMMA_GAMMA.items()},
                                               np.array([0.0, 6.0]), np.array([0.0, 30.0]), rng)
    np.testing.assert_allclose(spend.mean(axis=0), clv.conditional_expected_spend(PAPER_GAMMA_GAMMA, [0, 6], [0.0, 30.0]),
                               rtol=0.01)


def test_fit_pickles_without_the_pymc_model() -> None:
    import pickle

    fit = clv.PurchaseModelFit(model="pareto_nbd", params_=FAMILY_PARAMS["pareto_nbd"], model_=object(),
                               log_params_cov_=np.eye(4) * 0.01)
    restored = pickle.loads(pickle.dumps(fit))
    assert restored.model_ is None and restored.params_ == fit.params_
    np.testing.assert_array_equal(restored.log_params_cov_, fit.log_params_cov_)
    np.testing.assert_allclose(restored.p_alive(3, 20.0, 38.0), fit.p_alive(3, 20.0, 38.0), rtol=0)


def test_maximum_likelihood_recovers_simulated_parameters_within_their_standard_errors() -> None:
    """Simulate BG/NBD customers with known parameters; the estimate is within 3 standard errors of them."""
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 3.0}
    rng = np.random.default_rng(20240601)
    n_customers = 4000
    T = rng.uniform(20.0, 52.0, n_customers)
    rate = rng.gamma(truth["r"], 1.0 / truth["alpha"], n_customers)
    dropout = rng.beta(truth["a"], truth["b"], n_customers)
    clock, last = np.zeros(n_customers), np.zeros(n_customers)
    frequency = np.zeros(n_customers)
    active = np.ones(n_customers, dtype=bool)
    while active.any():  # one iteration per purchase event, vectorised over customers
        clock[active] += rng.exponential(1.0 / rate[active])
        bought = active & (clock <= T)
        frequency[bought] += 1
        last[bought] = clock[bought]
        active = bought & (rng.random(n_customers) >= dropout)
    summary = pd.DataFrame({"customer_id": np.arange(n_customers), "frequency": frequency, "recency": last, "T": T})
    fit = clv.fit_bgnbd(summary)
    assert fit.log_params_cov_ is not None
    standard_errors = np.sqrt(np.diag(fit.log_params_cov_))
    for i, name in enumerate(("r", "alpha", "a", "b")):
        z = (np.log(fit.params_[name]) - np.log(truth[name])) / standard_errors[i]
        assert abs(z) < 3, (name, fit.params_[name], standard_errors[i])
    assert 0.01 < standard_errors.min() and standard_errors.max() < 1.0


# --------------------------------------------------------------------------------------
# CDNOW data, no fitting
# --------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_log_likelihood_at_published_parameters(cdnow_summary: pd.DataFrame) -> None:
    found = clv.bgnbd_log_likelihood(
        PAPER_BGNBD, cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]
    )
    assert _relative_error(found, PAPER_LL) < 0.001


@pytest.mark.shared_data
def test_rfm_summary_reproduces_published_calibration_summary(
    cdnow_holdout_summary: pd.DataFrame, cdnow_summary: pd.DataFrame
) -> None:
    ours = cdnow_holdout_summary
    assert len(ours) == 2357
    assert ours["frequency"].sum() == 2457
    assert ours["frequency_holdout"].sum() == 1882
    assert (ours["duration_holdout"] == 39.0).all()
    first_day_buyers = ours.loc[ours["recency"].eq(0) & ours["T"].gt(38.8), "T"]
    assert first_day_buyers.round(2).eq(38.86).all() and len(first_day_buyers) > 0
    joined = ours.merge(cdnow_summary, on="customer_id", suffixes=("", "_published"), validate="one_to_one")
    assert (joined["frequency"] == joined["frequency_published"]).all()
    for column in ("recency", "T", "monetary_value"):  # the published file is rounded to 2 decimals
        assert (joined[column] - joined[f"{column}_published"]).abs().max() <= 0.005 + 1e-9


# --------------------------------------------------------------------------------------
# Fits with pymc-marketing (slow: PyMC import and compilation)
# --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.shared_data
def test_bgnbd_flat_priors_reproduce_published_mle(bgnbd_fit: clv.PurchaseModelFit) -> None:
    for name, published in PAPER_BGNBD.items():
        assert _relative_error(bgnbd_fit.params_[name], published) < 0.01, name
    assert _relative_error(bgnbd_fit.log_likelihood_, PAPER_LL) < 0.001
    assert bgnbd_fit.n_customers_ == 2357 and bgnbd_fit.priors == "flat"


@pytest.mark.slow
@pytest.mark.shared_data
def test_gamma_gamma_reproduces_published_estimates(gamma_gamma_fit: clv.SpendModelFit) -> None:
    assert gamma_gamma_fit.n_customers_ == 946 and gamma_gamma_fit.n_set_aside_ == 0
    for name, published in PAPER_GAMMA_GAMMA.items():
        assert _relative_error(gamma_gamma_fit.params_[name], published) < 0.01, name


@pytest.mark.slow
@pytest.mark.shared_data
def test_default_priors_shift_dropout_parameters(
    cdnow_summary: pd.DataFrame, bgnbd_fit: clv.PurchaseModelFit
) -> None:
    default = clv.fit_bgnbd(cdnow_summary, priors="default", random_state=0)
    assert default.priors == "default"
    # pymc-marketing's default priors shrink a by ~11 %: why "flat" is our default
    assert _relative_error(default.params_["a"], bgnbd_fit.params_["a"]) > 0.05
    assert default.log_likelihood_ < bgnbd_fit.log_likelihood_  # flat MAP is the MLE


@pytest.mark.slow
@pytest.mark.shared_data
def test_log_likelihood_matches_pymc_marketing_distribution(
    cdnow_summary: pd.DataFrame, bgnbd_fit: clv.PurchaseModelFit
) -> None:
    import pymc as pm
    from pymc_marketing.clv.distributions import BetaGeoNBD

    observed = cdnow_summary[["recency", "frequency"]].to_numpy(dtype=float)
    dist = BetaGeoNBD.dist(T=cdnow_summary["T"].to_numpy(dtype=float), **bgnbd_fit.params_)
    pymc_ll = float(pm.logp(dist, observed).sum().eval())
    assert bgnbd_fit.log_likelihood_ == pytest.approx(pymc_ll, rel=1e-6)


@pytest.fixture(scope="module")
def library_fits(cdnow_summary: pd.DataFrame) -> dict[str, clv.PurchaseModelFit]:
    """pymc-marketing's own MAP fits (engine="pymc"), each keeping the library model in ``model_``."""
    return {model: clv.fit_purchase_model(cdnow_summary, model=model, engine="pymc", random_state=0)
            for model in ("bgnbd", "mbgnbd", "pareto_nbd")}


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_closed_forms_match_the_library_model_methods(
    cdnow_summary: pd.DataFrame, library_fits: dict[str, clv.PurchaseModelFit], model: str
) -> None:
    """Every closed form against the fitted pymc-marketing model's own methods, at its parameters."""
    fit = library_fits[model]
    library = fit.model_
    x, t_x, T = cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]
    np.testing.assert_allclose(fit.expected_purchases(x, t_x, T, 39), library.expected_purchases(future_t=39).values.reshape(-1),
                               rtol=1e-6)
    np.testing.assert_allclose(fit.p_alive(x, t_x, T), library.expected_probability_alive().values.reshape(-1), rtol=1e-6)
    theirs_new = library.expected_purchases_new_customer(t=78).values.reshape(-1)[0]
    assert float(fit.expected_purchases_new_customer(78)) == pytest.approx(float(theirs_new), rel=1e-6)
    # out-of-sample customers through the library's data argument
    np.testing.assert_allclose(fit.p_alive(HISTORIES["frequency"], HISTORIES["recency"], HISTORIES["T"]),
                               library.expected_probability_alive(data=HISTORIES).values.reshape(-1), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["mbgnbd", "pareto_nbd"])
def test_log_likelihood_matches_library_distribution_for_every_family(
    cdnow_summary: pd.DataFrame, library_fits: dict[str, clv.PurchaseModelFit], model: str
) -> None:
    import pymc as pm
    from pymc_marketing.clv import distributions

    fit = library_fits[model]
    observed = cdnow_summary[["recency", "frequency"]].to_numpy(dtype=float)
    T = cdnow_summary["T"].to_numpy(dtype=float)
    dist_cls = distributions.ParetoNBD if model == "pareto_nbd" else distributions.ModifiedBetaGeoNBD
    theirs = float(pm.logp(dist_cls.dist(T=T, **fit.params_), observed).sum().eval())
    assert fit.log_likelihood_ == pytest.approx(theirs, rel=1e-8)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_closed_form_fit_agrees_with_pymc_marketing_map(
    cdnow_summary: pd.DataFrame, library_fits: dict[str, clv.PurchaseModelFit], model: str
) -> None:
    ours = clv.fit_purchase_model(cdnow_summary, model=model)
    assert ours.model_ is None and ours.priors == "flat"
    for name, value in library_fits[model].params_.items():
        assert ours.params_[name] == pytest.approx(value, rel=2e-3), name
    assert ours.log_likelihood_ >= library_fits[model].log_likelihood_ - 1e-3  # at least as high: both are the MLE


@pytest.mark.slow
@pytest.mark.shared_data
def test_clv_matches_pymc_marketing(cdnow_summary: pd.DataFrame, library_fits: dict[str, clv.PurchaseModelFit]) -> None:
    from pymc_marketing.clv import customer_lifetime_value as pymc_clv

    spend_fit = clv.fit_gamma_gamma(cdnow_summary, engine="pymc", random_state=0)
    theirs_spend = spend_fit.model_.expected_customer_spend(data=cdnow_summary).values.reshape(-1)
    monthly_rate = 1.1 ** (1 / 12) - 1
    for model, fit in library_fits.items():  # the three families
        ours = clv.customer_lifetime_value(fit, spend_fit, cdnow_summary, discount_rate_annual=0.1)
        np.testing.assert_allclose(ours["expected_spend"], theirs_spend, rtol=1e-6)
        theirs = pymc_clv(
            transaction_model=fit.model_,
            data=cdnow_summary.assign(future_spend=theirs_spend),
            future_t=12,
            discount_rate=monthly_rate,
            time_unit="W",
        ).values.reshape(-1)
        np.testing.assert_allclose(ours["clv"], theirs, rtol=1e-6, err_msg=model)
        assert ours["clv"].sum() > 0


@pytest.mark.slow
@pytest.mark.shared_data
def test_holdout_validation_from_raw_transactions(
    cdnow_holdout_summary: pd.DataFrame, holdout_bgnbd_fit: clv.PurchaseModelFit
) -> None:
    for name, published in PAPER_BGNBD.items():
        assert _relative_error(holdout_bgnbd_fit.params_[name], published) < 0.01, name
    metrics = clv.holdout_metrics(holdout_bgnbd_fit, cdnow_holdout_summary)
    assert metrics["actual_total"] == 1882
    assert _relative_error(metrics["predicted_total"], 1653) < 0.02
    assert metrics["mae_model"] < metrics["mae_naive"]
    assert _relative_error(metrics["mae_model"], 0.785) < 0.03
    assert _relative_error(metrics["mae_naive"], 1.024) < 0.03
    table = clv.holdout_comparison(holdout_bgnbd_fit, cdnow_holdout_summary)
    assert table["customers"].sum() == 2357 and table.loc["0", "customers"] == 1411
    # conditional expectations rise with calibration frequency, as the actuals do
    assert table["predicted_mean"].is_monotonic_increasing and table["actual_mean"].is_monotonic_increasing


@pytest.mark.slow
@pytest.mark.shared_data
def test_rfm_summary_agrees_with_pymc_marketing_in_days(cdnow_transactions: pd.DataFrame) -> None:
    """With time_unit="D" both count purchase-days (pymc-marketing's "W" buckets calendar weeks)."""
    from pymc_marketing.clv.utils import rfm_summary as pymc_rfm_summary

    calibration = cdnow_transactions.loc[cdnow_transactions["timestamp"] <= CALIBRATION_END]
    ours = clv.rfm_summary(cdnow_transactions, observation_period_end=CALIBRATION_END, time_unit="D")
    theirs = pymc_rfm_summary(
        calibration,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end=CALIBRATION_END,
        time_unit="D",
    )
    theirs = theirs.sort_values("customer_id").reset_index(drop=True)
    assert ours["customer_id"].tolist() == theirs["customer_id"].tolist()
    for column in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-12, err_msg=column)


@pytest.mark.slow
@pytest.mark.shared_data
def test_pareto_nbd_and_mbgnbd_reproduce_reference_estimates(cdnow_summary: pd.DataFrame) -> None:
    # Pareto/NBD: Fader, Hardie & Lee (2005) report r=0.55, alpha=10.58, s=0.61, beta=11.67, LL=-9595.0.
    pareto = clv.fit_bgnbd(cdnow_summary, model="pareto_nbd", random_state=0)
    for name, published in {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}.items():
        assert _relative_error(pareto.params_[name], published) < 0.01, name
    assert _relative_error(pareto.log_likelihood_, -9595.0) < 0.001
    # MBG/NBD: the lifetimes test-suite reference on the same data.
    mbg = clv.fit_bgnbd(cdnow_summary, model="mbgnbd", random_state=0)
    for name, reference in {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}.items():
        assert _relative_error(mbg.params_[name], reference) < 0.01, name
    alive = mbg.p_alive(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    assert alive.shape == (2357,) and np.all((alive > 0) & (alive <= 1))


@pytest.mark.slow
@pytest.mark.shared_data
def test_fitting_in_a_fresh_process_prints_nothing(cdnow_dir: Path, tmp_path: Path) -> None:
    """ArviZ's import warning, PyTensor's BLAS warning and progress bars stay hidden.

    A fresh ``XDG_CACHE_HOME`` re-arms ArviZ's once-a-day FutureWarning, and the
    default-prior BG/NBD graph is the one that makes PyTensor look for BLAS (and warn).
    """
    script = (
        "import pandas as pd\n"
        "from analysis import clv\n"
        f"raw = pd.read_csv({str(cdnow_dir / 'cdnow_customers_summary_with_transactions.csv')!r})\n"
        "summary = raw.rename(columns={'ID': 'customer_id', 'x': 'frequency', 't_x': 'recency', 'zbar': 'monetary_value'})\n"
        "clv.fit_bgnbd(summary, priors='default', random_state=0)\n"
        "clv.fit_gamma_gamma(summary, random_state=0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "always::UserWarning", "-W", "always::FutureWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        # matplotlib keeps its font cache where it already is: rebuilding it under a fresh cache
        # folder can print "building the font cache" on a busy machine, which is not ours to hide
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "MPLCONFIGDIR": matplotlib.get_cachedir()},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


# --------------------------------------------------------------------------------------
# Holdout plan, degenerate fits, Gamma-Gamma check, churn bands, intervals (no PyMC)
# --------------------------------------------------------------------------------------


def _simulate_bgnbd(params: dict[str, float], n_customers: int, seed: int) -> pd.DataFrame:
    """Customers from the BG/NBD story (``a = None``: nobody ever drops out), vectorised over customers."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(20.0, 52.0, n_customers)
    rate = rng.gamma(params["r"], 1.0 / params["alpha"], n_customers)
    dropout = np.zeros(n_customers) if params.get("a") is None else rng.beta(params["a"], params["b"], n_customers)
    clock, last, frequency = np.zeros(n_customers), np.zeros(n_customers), np.zeros(n_customers)
    active = np.ones(n_customers, dtype=bool)
    while active.any():  # one iteration per purchase event, vectorised over customers
        clock[active] += rng.exponential(1.0 / rate[active])
        bought = active & (clock <= T)
        frequency[bought] += 1
        last[bought] = clock[bought]
        active = bought & (rng.random(n_customers) >= dropout)
    return pd.DataFrame({"customer_id": np.arange(n_customers), "frequency": frequency, "recency": last, "T": T})


def test_plan_holdout_defaults_to_the_last_quarter_and_honours_the_config() -> None:
    plan = clv.plan_holdout(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-30"))
    assert plan.available and plan.source == "default" and plan.periods == 13.0
    assert plan.calibration_end == pd.Timestamp("2024-09-30")
    days = clv.plan_holdout(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-21"), time_unit="D", fraction=0.5)
    assert days.periods == 10.0
    configured = clv.plan_holdout(pd.Timestamp("1997-01-01"), pd.Timestamp("1998-06-30"), calibration_end="1997-09-30")
    assert configured.source == "config" and configured.periods == 39.0
    short = clv.plan_holdout(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-10"))
    assert not short.available and "too short" in short.reason
    assert clv.plan_holdout(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-15")).periods == 1.0  # 2 weeks: 1 held out
    with pytest.raises(ValueError, match="params.14_value.calibration_end"):
        clv.plan_holdout(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-30"), calibration_end="2025-02-01")


def test_share_lost_matches_simulation_for_every_family() -> None:
    rng = np.random.default_rng(3)
    n, t = 400_000, 50.0
    rate = rng.gamma(0.8, 1 / 6.0, n)
    p = rng.beta(0.9, 3.0, n)
    # BG/NBD: alive at t when no dropout happened at any purchase: exp(-rate p t) given rate, p
    assert clv.share_lost({"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 3.0}, t) == pytest.approx(
        1 - np.exp(-rate * p * t).mean(), abs=3e-3)
    # MBG/NBD: also a dropout chance at the first purchase
    assert clv.share_lost({"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 3.0}, t, model="mbgnbd") == pytest.approx(
        1 - ((1 - p) * np.exp(-rate * p * t)).mean(), abs=3e-3)
    mu = rng.gamma(0.6, 1 / 11.0, n)
    assert clv.share_lost({"r": 0.55, "alpha": 10.0, "s": 0.6, "beta": 11.0}, t) == pytest.approx(
        1 - np.exp(-mu * t).mean(), abs=3e-3)


def test_dropout_diagnostic_flags_a_population_where_nobody_leaves() -> None:
    """A generator setting with no dropout: the fit degenerates and the diagnostic says why in words."""
    nobody_leaves = _simulate_bgnbd({"r": 0.8, "alpha": 6.0}, 3000, seed=11)
    for model in ("bgnbd", "mbgnbd", "pareto_nbd"):
        fit = clv.fit_purchase_model(nobody_leaves, model=model)
        found = clv.dropout_diagnostic(fit, nobody_leaves, span=52.0)
        assert found.degenerate, (model, fit.params_)
        assert any("ever leave" in reason or "expects only" in reason for reason in found.reasons)
        assert "has degenerated" in found.sentence()
    leaving = _simulate_bgnbd({"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 3.0}, 3000, seed=12)
    sound = clv.dropout_diagnostic(clv.fit_bgnbd(leaving), leaving, span=52.0)
    assert not sound.degenerate and sound.evidence["share_lost_pct"] > 20
    worse_than_naive = clv.dropout_diagnostic(clv.fit_bgnbd(leaving), leaving, span=52.0,
                                              metrics={"mae_model": 1.1, "mae_naive": 1.0})
    assert worse_than_naive.degenerate and "no better than" in worse_than_naive.reasons[0]


def test_gamma_gamma_check_warns_on_dependent_spend() -> None:
    rng = np.random.default_rng(5)
    frequency = rng.integers(1, 30, 500)
    dependent = pd.DataFrame({"frequency": frequency, "monetary_value": 200.0 / frequency * rng.lognormal(0, 0.2, 500)})
    warned = clv.gamma_gamma_check(dependent)
    assert warned["warn"] and warned["pearson"] < -0.3 and warned["sentence"].startswith("Warning")
    assert "overstated" in warned["sentence"] and warned["repeat_buyers"] == 500
    independent = dependent.assign(monetary_value=rng.lognormal(3, 0.5, 500))
    assert not clv.gamma_gamma_check(independent)["warn"]
    assert clv.gamma_gamma_check(dependent, max_abs_correlation=0.99)["warn"] is False


def test_empirical_rule_sets_silence_against_each_customers_rhythm() -> None:
    summary = pd.DataFrame({"frequency": [0, 0, 10, 10, 1], "recency": [0.0, 0.0, 40.0, 20.0, 2.0],
                            "T": [2.0, 40.0, 41.0, 41.0, 40.0]})
    rule = clv.EmpiricalChurnRule().fit(summary)
    assert rule.population_gap_ == pytest.approx(np.median([4.0, 2.0, 2.0]))
    scored = rule.score(summary)
    activity = scored["activity"].to_numpy()
    assert activity[0] > activity[1]  # a one-order customer silent for long is less active than a new one
    assert activity[2] > activity[3]  # same rhythm, the one who bought recently is more active
    assert activity[1] < 0.2 and activity[2] > 0.7
    assert (scored["activity_low"] <= scored["activity"]).all() and (scored["activity"] <= scored["activity_high"]).all()


def test_churn_bands_are_cut_where_observed_repurchase_falls() -> None:
    rng = np.random.default_rng(9)
    score = rng.uniform(0, 1, 5000)
    bought = rng.random(5000) < score  # chance of buying again = score
    bands = clv.ChurnBands().fit(score, bought, window=13.0)
    base = bought.mean()
    assert bands.high_below_ == pytest.approx(base / 2, abs=0.05) and bands.low_from_ == pytest.approx(base, abs=0.05)
    table = bands.table_
    assert table.loc["high", "repurchase_rate"] < table.loc["medium", "repurchase_rate"] < table.loc["low", "repurchase_rate"]
    assert list(bands.assign(np.array([0.01, 0.4, 0.99, np.nan]))) == ["high", "medium", "low", np.nan]
    assert "13 weeks" in bands.sentences("P(alive)")[0]
    assert "fixed cut-offs" in clv.ChurnBands.fixed().sentences("P(alive)")[0]


@pytest.mark.parametrize("model", sorted(FAMILY_PARAMS))
def test_clv_interval_draws_average_to_the_point_clv(model: str) -> None:
    fit = clv.PurchaseModelFit(model=model, params_=FAMILY_PARAMS[model])
    spend = clv.SpendModelFit(params_=PAPER_GAMMA_GAMMA)
    point = clv.customer_lifetime_value(fit, spend, HISTORIES, discount_rate_annual=0.1)
    intervals, draws = clv.clv_intervals(fit, spend, HISTORIES, discount_rate_annual=0.1, n_draws=40_000,
                                         random_state=2, return_draws=True)
    standard_error = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - point["clv"].to_numpy()) < 4 * standard_error + 1e-9)
    likely_alive = point["p_alive"] > 0.9  # for the lapsed, the value is mostly a point mass at 0 (mean above the interval)
    inside = (intervals["clv_low"] <= point["clv"]) & (point["clv"] <= intervals["clv_high"])
    assert inside[likely_alive].all()
    width = intervals["clv_high"] - intervals["clv_low"]
    # relative width: the four-week customer with one repeat purchase is far less certain than the steady one
    assert width[4] / point["clv"][4] > 1.5 * width[2] / point["clv"][2]


@pytest.fixture(scope="module")
def cdnow_pareto_fit(cdnow_summary: pd.DataFrame) -> clv.PurchaseModelFit:
    return clv.fit_purchase_model(cdnow_summary, model="pareto_nbd")


def test_linear_p_alive_draws_agree_with_exact_draws_on_cdnow(
    cdnow_summary: pd.DataFrame, cdnow_pareto_fit: clv.PurchaseModelFit, gamma_gamma_fit: clv.SpendModelFit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first-order P(alive) used for large data gives the intervals the exact draws give.

    It is used when the parameters are as certain as a fit on 10,000+ customers makes them: CDNOW's
    Pareto/NBD fit with the covariance of 20,000 customers (its own, scaled by 2,357 / 20,000).
    With CDNOW's own, much wider, uncertainty ``auto`` keeps the exact draws.
    """
    summary = cdnow_summary.assign(monetary_value=cdnow_summary["monetary_value"].where(cdnow_summary["frequency"] > 0, 0.0))
    as_if_20k = dataclasses.replace(cdnow_pareto_fit, log_params_cov_=cdnow_pareto_fit.log_params_cov_ * len(summary) / 20_000)
    exact = clv.clv_intervals(as_if_20k, gamma_gamma_fit, summary, random_state=5, p_alive_draws="exact")
    linear = clv.clv_intervals(as_if_20k, gamma_gamma_fit, summary, random_state=5, p_alive_draws="linear")
    for column in ("p_alive_low", "p_alive_high"):
        assert np.abs(exact[column] - linear[column]).max() < 0.005, column
    scale = exact["clv_high"].mean()
    for column in ("clv_low", "clv_high"):
        assert np.abs(exact[column] - linear[column]).mean() < 0.01 * scale, column
    # the parameter uncertainty is real: the intervals have width, and the expansion keeps it
    assert (linear["p_alive_high"] - linear["p_alive_low"]).mean() > 0.02
    # "auto": linear above the size limit (lowered here to keep the test fast) when a probe of customers shows the
    # expansion within 0.01 of the exact values (the 20,000-customer covariance), exact otherwise (CDNOW's own)
    monkeypatch.setattr(clv.scoring, "LINEAR_P_ALIVE_ABOVE", 1_000)
    head = summary.head(300)
    for fit, expected in ((as_if_20k, "linear"), (cdnow_pareto_fit, "exact")):
        auto = clv.clv_intervals(fit, gamma_gamma_fit, head, random_state=5)
        assert auto.attrs["p_alive_draws"]["method"] == expected
        assert (auto.attrs["p_alive_draws"]["probe_deviation"] <= 0.01) == (expected == "linear")
        pd.testing.assert_frame_equal(auto, clv.clv_intervals(fit, gamma_gamma_fit, head, random_state=5, p_alive_draws=expected))


def test_group_totals_are_the_sums_of_the_customer_draws(
    cdnow_summary: pd.DataFrame, bgnbd_fit: clv.PurchaseModelFit, gamma_gamma_fit: clv.SpendModelFit
) -> None:
    summary = cdnow_summary.assign(monetary_value=cdnow_summary["monetary_value"].where(cdnow_summary["frequency"] > 0, 0.0))
    groups = np.where(summary["frequency"] > 2, "frequent", "rare")
    kept, draws = clv.clv_intervals(bgnbd_fit, gamma_gamma_fit, summary, random_state=3, chunk_size=500, return_draws=True)
    summed, totals = clv.clv_intervals(bgnbd_fit, gamma_gamma_fit, summary, random_state=3, chunk_size=500, groups=groups)
    pd.testing.assert_frame_equal(kept, summed)
    assert list(totals.columns) == ["rare", "frequent"] or list(totals.columns) == ["frequent", "rare"]
    for name in totals.columns:
        np.testing.assert_allclose(totals[name].to_numpy(), draws[:, groups == name].sum(axis=1), rtol=1e-10)
    with pytest.raises(ValueError, match="one label per customer"):
        clv.clv_intervals(bgnbd_fit, gamma_gamma_fit, summary, groups=groups[:-1])


def test_a_fit_for_comparison_only_skips_the_covariance(cdnow_summary: pd.DataFrame) -> None:
    quick = clv.fit_purchase_model(cdnow_summary, covariance=False)
    full = clv.fit_purchase_model(cdnow_summary)
    assert quick.log_params_cov_ is None and full.log_params_cov_ is not None
    assert quick.params_ == full.params_



@pytest.mark.parametrize("model", sorted(FAMILY_PARAMS))
def test_alive_and_expected_together_equal_the_separate_formulas(model: str) -> None:
    """Scoring takes P(alive) and the monthly expectations from one call (Pareto/NBD: one likelihood)."""
    fit = clv.PurchaseModelFit(model=model, params_=FAMILY_PARAMS[model])
    x, t_x, T = (HISTORIES[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    horizons = np.array([4.345, 8.69, 52.14])
    alive, expected = fit.alive_and_expected(x, t_x, T, horizons)
    assert alive.shape == (5,) and expected.shape == (5, 3)
    np.testing.assert_array_equal(alive, fit.p_alive(x, t_x, T))
    np.testing.assert_array_equal(expected, fit.expected_purchases(x[:, None], t_x[:, None], T[:, None], horizons[None, :]))


def test_likelihood_split_over_threads_is_the_same_to_the_last_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of customers go to different cores; every element is computed as in one call."""
    from analysis.clv.models import basic, pareto_nbd

    rng = np.random.default_rng(3)
    n = 5_001  # not a multiple of the thread count
    T = rng.uniform(1, 80, n)
    x = rng.poisson(4, n).astype(float)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    # s and beta so large that scipy's hyp2f1 overflows for most customers: the quadrature fallback runs per block
    params = {"r": 2.15, "alpha": 7.25, "s": 300.0, "beta": 6e4}
    draws = {k: v * np.exp(rng.normal(0, 0.05, (3, 1))) for k, v in params.items()}
    r, alpha, s, beta = (np.asarray(params[k]) for k in ("r", "alpha", "s", "beta"))
    assert (~np.isfinite(pareto_nbd._log_likelihood(r, alpha, s, beta, x, t_x, T, quadrature_fallback=False))).sum() > 1_000
    monkeypatch.setattr(basic, "THREADED_ABOVE", 10**12)
    single = pareto_nbd.log_likelihood(params, x, t_x, T), pareto_nbd.log_likelihood(draws, x, t_x, T)
    monkeypatch.setattr(basic, "THREADED_ABOVE", 100)
    monkeypatch.setattr(basic, "worker_threads", lambda: 3)
    threaded = pareto_nbd.log_likelihood(params, x, t_x, T), pareto_nbd.log_likelihood(draws, x, t_x, T)
    for one, many in zip(single, threaded, strict=True):
        assert one.shape == many.shape and np.isfinite(one).all()
        np.testing.assert_array_equal(one, many)
    # the caller's floating-point error handling holds in the worker threads too
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        basic.elementwise_in_threads(np.log, np.zeros(1_000))


def test_discounted_exposure_sums_the_monthly_increments() -> None:
    """The month-by-month sum by powers of exp(-mu h) equals discounting each month's expected purchases."""
    from analysis.clv.models.basic import purchases_given_latent
    from analysis.clv.scoring import _discounted_exposure, discount_factors

    dropout = np.array([[0.0, 1e-14, 1e-6, 0.01, 0.3, 5.0]])
    ends, discount = discount_factors(12, 0.1, "W")
    rate = np.ones_like(dropout)
    by_month = sum(f * (purchases_given_latent(rate, dropout, e) - purchases_given_latent(rate, dropout, e - ends[0]))
                   for e, f in zip(ends, discount, strict=True))
    np.testing.assert_allclose(_discounted_exposure(dropout, ends, discount), by_month, rtol=1e-12)
    with pytest.raises(ValueError, match="equally spaced"):
        _discounted_exposure(dropout, np.array([1.0, 3.0]), discount[:2])


def test_intervals_reuse_the_point_p_alive(
    cdnow_summary: pd.DataFrame, cdnow_pareto_fit: clv.PurchaseModelFit, gamma_gamma_fit: clv.SpendModelFit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the point P(alive), the expansion is not evaluated at the estimate again; same intervals."""
    summary = cdnow_summary.assign(monetary_value=cdnow_summary["monetary_value"].where(cdnow_summary["frequency"] > 0, 0.0))
    point = clv.customer_lifetime_value(cdnow_pareto_fit, gamma_gamma_fit, summary)["p_alive"].to_numpy()
    own = clv.clv_intervals(cdnow_pareto_fit, gamma_gamma_fit, summary, random_state=5, p_alive_draws="linear")
    formulas = cdnow_pareto_fit.family.formulas
    calls = {"centre": 0}
    original = formulas.p_alive

    def counting(params, *args):
        calls["centre"] += params == cdnow_pareto_fit.params_
        return original(params, *args)

    monkeypatch.setattr(formulas, "p_alive", counting)
    given = clv.clv_intervals(cdnow_pareto_fit, gamma_gamma_fit, summary, random_state=5, p_alive_draws="linear", p_alive=point)
    assert calls["centre"] == 0  # the centre was taken from the point P(alive), not evaluated again
    clv.clv_intervals(cdnow_pareto_fit, gamma_gamma_fit, summary, random_state=5, p_alive_draws="linear")
    assert calls["centre"] == 1
    pd.testing.assert_frame_equal(own, given)
    with pytest.raises(ValueError, match="one value per customer"):
        clv.clv_intervals(cdnow_pareto_fit, gamma_gamma_fit, summary, p_alive_draws="linear", p_alive=point[:-1])


@pytest.mark.shared_data
def test_summary_and_split_in_one_pass_on_cdnow(cdnow_transactions: pd.DataFrame, cdnow_holdout_summary: pd.DataFrame) -> None:
    full, split = clv.rfm_summary_and_split(cdnow_transactions, observation_period_end=OBSERVATION_END,
                                            calibration_period_end=CALIBRATION_END, time_unit="W")
    pd.testing.assert_frame_equal(split, cdnow_holdout_summary)
    pd.testing.assert_frame_equal(full, clv.rfm_summary(cdnow_transactions, observation_period_end=OBSERVATION_END, time_unit="W"))
    assert len(split) == 2357 and len(full) == 2357  # CDNOW's cohort all started in the first quarter
