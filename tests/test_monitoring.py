from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import monitoring

from .conftest import SAMPLE_CONFIG


def test_migration_matrix_and_summary():
    prev = pd.Series({"a": "Loyal", "b": "Loyal", "c": "New", "d": "Lost"})
    cur = pd.Series({"a": "Loyal", "b": "At risk", "c": "Loyal", "e": "New"})
    m = monitoring.migration_matrix(prev, cur)
    assert m.loc["Loyal", "Loyal"] == 1 and m.loc["Loyal", "At risk"] == 1 and m.loc["New", "Loyal"] == 1
    assert monitoring.migration_matrix(prev, cur, normalize=True).sum(axis=1).tolist() == pytest.approx([100.0, 100.0])
    s = monitoring.migration_summary(prev, cur)
    assert s == {"customers_in_both": 3, "stayed_pct": pytest.approx(100 / 3), "new_customers": 1, "gone_customers": 1}


def test_psi_detects_shift_not_noise():
    rng = np.random.default_rng(1)
    base = pd.Series(rng.lognormal(size=4000))
    assert monitoring.population_stability_index(base, pd.Series(rng.lognormal(size=4000))) < 0.1
    assert monitoring.population_stability_index(base, pd.Series(rng.lognormal(0.8, 1, size=4000))) > 0.25
    table = monitoring.drift_table(pd.DataFrame({"x": base, "y": base}), pd.DataFrame({"x": base, "y": base * 3}))
    assert table.set_index("feature").loc["x", "verdict"] == "stable"
    assert table.set_index("feature").loc["y", "verdict"] == "major shift"


def test_psi_by_hand():
    prev = pd.Series(np.arange(10.0))  # deciles put one value in each of 10 bins
    cur = pd.Series([0.0] * 5 + [9.0] * 5)  # half in the first bin, half in the last
    # two bins at 50% against 10%: 2 * 0.4 * ln(5); eight empty bins (floored at 0.01%): 8 * 0.0999 * ln(1000)
    expected = 2 * 0.4 * np.log(5) + 8 * (0.1 - 1e-4) * np.log(0.1 / 1e-4)
    assert monitoring.population_stability_index(prev, cur) == pytest.approx(expected)
    psi, n_bins = monitoring.psi_many(np.vstack([prev, prev]), np.vstack([cur, prev]))
    assert psi == pytest.approx([expected, 0.0]) and n_bins.tolist() == [10, 10]
    # ties: a variable with three values fills three bins, and the noise allowance uses them
    psi, n_bins = monitoring.psi_many(np.array([[1.0] * 50 + [2.0] * 30 + [3.0] * 20]), np.array([[1.0] * 50 + [2.0] * 30 + [3.0] * 20]))
    assert psi[0] == 0.0 and n_bins[0] == 3


def test_psi_noise_matches_resampling():
    # the mean PSI of two samples from one distribution is about (bins - 1)(1/n + 1/m)
    rng = np.random.default_rng(7)
    psi, n_bins = monitoring.psi_many(rng.lognormal(size=(2000, 100)), rng.lognormal(size=(2000, 100)))
    assert (n_bins == 10).all()
    assert psi.mean() == pytest.approx(9 * (2 / 100), rel=0.15)
    assert np.mean(psi > monitoring.psi_noise(100, 100)) == pytest.approx(0.05, abs=0.03)
    # with many customers the noise allowance is far below the usual bands, which then decide
    assert monitoring.psi_noise(50_000, 50_000) < 0.001


@pytest.mark.parametrize("draw", [lambda rng, size: rng.lognormal(size=size),
                                  lambda rng, size: rng.poisson(2.0, size=size).astype(float)], ids=["spend-like", "order-counts"])
def test_no_drift_alert_on_sampling_noise_at_100_customers(draw):
    # 2,000 seeded repeats as columns: each column is one "feature" of 100 customers drawn twice from one distribution
    rng = np.random.default_rng(11)
    previous = pd.DataFrame(draw(rng, (100, 2000))).add_prefix("f")
    current = pd.DataFrame(draw(rng, (100, 2000))).add_prefix("f")
    table = monitoring.drift_table(previous, current)
    alerts = table["verdict"].ne("stable").mean()
    assert alerts < 0.10, table["verdict"].value_counts()
    assert table["psi"].ge(0.1).mean() > 0.25  # the fixed 0.1 band alone would have alerted far more often


def test_real_shift_still_flagged_at_100_customers():
    rng = np.random.default_rng(12)
    previous = pd.DataFrame(rng.lognormal(size=(100, 1000))).add_prefix("f")
    current = pd.DataFrame(rng.lognormal(0.8, 1.0, size=(100, 1000))).add_prefix("f")  # spend up by a factor e^0.8
    table = monitoring.drift_table(previous, current)
    assert table["verdict"].ne("stable").mean() > 0.95
    assert (table["alert_at"] > 0.3).all()  # the allowance at 100 customers, not the 0.1 band
    big = monitoring.drift_table(pd.DataFrame({"x": rng.lognormal(size=20000)}), pd.DataFrame({"x": rng.lognormal(0.4, 1.0, size=20000)}))
    assert big.loc[0, "verdict"] != "stable" and big.loc[0, "alert_at"] == 0.1  # a small shift on many customers


def test_drift_sentence_explains_the_allowance():
    rng = np.random.default_rng(3)
    table = monitoring.drift_table(pd.DataFrame({"x": rng.lognormal(size=100)}), pd.DataFrame({"x": rng.lognormal(size=100)}))
    text = monitoring.drift_sentence(table)
    assert "sampling alone" in text and f"{table.loc[0, 'noise_psi']:.3f}" in text


@pytest.mark.slow
def test_second_run_reports_migration_and_scores_with_saved_model(tmp_path):
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text())
    for source in cfg["sources"].values():
        source["path"] = str((SAMPLE_CONFIG.parent / source["path"]).resolve())
    reports = tmp_path / "reports"

    def run(as_of: str, run_id: str) -> dict:
        path = tmp_path / f"{run_id}.yaml"
        path.write_text(yaml.safe_dump({**cfg, "as_of": as_of}))
        proc = subprocess.run([sys.executable, "-m", "analysis", "run", "--config", str(path), "--run-id", run_id, "--reports-dir", str(reports),
                               "--only", "00_data_prep", "13_behavioral", "40_monitoring"], check=False, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return json.loads((reports / run_id / "manifest.json").read_text())

    first = run("2024-07-01", "mid-2024")
    assert {n["name"]: n["status"] for n in first["notebooks"]}["40_monitoring"] == "not applicable"
    first_page = (reports / "mid-2024" / "40_monitoring.html").read_text()
    assert "analysis score --model-run mid-2024" in first_page and "next run will show" not in first_page
    second = run("2025-01-01", "start-2025")
    assert {n["name"]: n["status"] for n in second["notebooks"]}["40_monitoring"] == "ok"
    rows = {r["segmentation"]: r for r in second["facts"]["monitoring"]["segmentations"]}
    assert rows["rfm_segment"]["new_customers"] > 0 and 0 < rows["rfm_segment"]["stayed_pct"] < 100
    assert rows["rfm_segment"]["moved_up"] + rows["rfm_segment"]["moved_down"] > 0
    assert second["facts"]["summary_40_monitoring"]["lines"]
    # the comparison run is whichever came before: the transitions stay out of the exports (they depend on the inputs only)
    assert "migration.csv" not in second["exports_sha256"]
    from analysis import io

    assert io.RunFolder(reports / "start-2025").has("table", "migration")
    page = (reports / "start-2025" / "40_monitoring.html").read_text()
    assert "kept their segment" in page and "adjusted Rand index" in page and "Alerts" in page


# ------------------------------------------------------------------------------------------
# Migration, share drift and alerts
# ------------------------------------------------------------------------------------------


def test_migration_counts_shares_moves_up_and_down():
    prev = pd.Series({"a": "Top", "b": "Top", "c": "Rest", "d": "Rest", "f": "Rest"})
    cur = pd.Series({"a": "Top", "b": "Rest", "c": "Top", "e": "Rest", "f": "Rest"})
    value = pd.Series({"a": 10.0, "b": 8.0, "c": 1.0, "d": 2.0, "f": 1.0})
    m = monitoring.migration(prev, cur, value=value, name="value_tier")
    assert m.order == ["Top", "Rest"]
    assert m.counts.loc["Top", "Rest"] == 1 and m.counts.loc["Rest", "Top"] == 1 and m.counts.loc["Rest", "Rest"] == 1
    assert m.shares.loc["Rest"].tolist() == pytest.approx([50.0, 50.0])
    assert m.summary == {"customers_in_both": 4, "stayed_pct": 50.0, "new_customers": 1, "gone_customers": 1, "moved_up": 1, "moved_down": 1}
    moves = m.moves().set_index(["from", "to"])
    assert moves.loc[("Top", "Rest"), "direction"] == "down" and moves.loc[("Rest", "Top"), "direction"] == "up"
    assert "kept their segment" in m.sentence() and "1 moved up" in m.sentence()
    # without a value measure there is no up or down, only moves
    assert "moved_up" not in monitoring.migration(prev, cur).summary


def test_notable_movers_are_the_largest_changes_with_their_segments():
    prev = pd.DataFrame({"clv": [100.0, 50.0, 10.0, 5.0], "value_tier": ["Top", "Top", "Rest", "Rest"]}, index=list("abcd"))
    cur = pd.DataFrame({"clv": [10.0, 55.0, 90.0, 5.0], "value_tier": ["Rest", "Top", "Top", "Rest"]}, index=list("abcd"))
    movers = monitoring.notable_movers(prev, cur, "clv", top=2)
    assert movers["customer_id"].tolist() == ["a", "c"]
    assert movers["change"].tolist() == [-90.0, 80.0]
    assert movers["Value tier: previous -> now"].tolist() == ["Top -> Rest", "Rest -> Top"]


def test_compare_reads_both_runs_against_the_same_value_measure():
    ids = ["a", "b", "c", "d"]
    before = {"behavioral": pd.DataFrame({"customer_id": ids, "rfm_segment": ["Top", "Top", "Low", "Low"]}),
              "value": pd.DataFrame({"customer_id": ids, "clv": [9.0, 8.0, 1.0, 2.0], "value_tier": ["T", "T", "R", "R"]})}
    now = {"behavioral": pd.DataFrame({"customer_id": ids, "rfm_segment": ["Top", "Low", "Top", "Low"]})}
    spend = lambda values: pd.DataFrame({"customer_id": ids, "total_spend": values})
    comparison = monitoring.compare(before, now, spend([100.0, 90.0, 5.0, 6.0]), spend([110.0, 90.0, 60.0, 6.0]))
    assert comparison.value_column == "total_spend"  # this run has no CLV: past spend in both
    assert comparison.movers.set_index("customer_id")["change"].to_dict() == {"c": 55.0, "a": 10.0}
    assert comparison.migrations["rfm_segment"].summary["moved_up"] == 1
    with_clv = monitoring.compare(before, {**now, "value": before["value"]}, spend([1.0] * 4), spend([1.0] * 4))
    assert with_clv.value_column == "clv" and "value_tier" in with_clv.migrations


def test_share_drift_needs_both_the_set_change_and_more_than_sampling_noise():
    prev = pd.Series(["A"] * 50 + ["B"] * 50)
    now = pd.Series(["A"] * 42 + ["B"] * 58)  # 8 points on 100 customers: within sampling noise
    small = monitoring.share_drift(prev, now).set_index("segment")
    assert not small["alert"].any() and (small["noise_pp"] > 8).all()
    big_prev, big_now = pd.Series(["A"] * 5000 + ["B"] * 5000), pd.Series(["A"] * 4800 + ["B"] * 5200)
    assert not monitoring.share_drift(big_prev, big_now, min_change_pp=3.0)["alert"].any()  # 2 points: beyond noise, under the set change
    assert monitoring.share_drift(big_prev, big_now, min_change_pp=1.0)["alert"].all()
    alerts = monitoring.drift_alerts(None, {"rfm_segment": monitoring.share_drift(big_prev, big_now, min_change_pp=1.0)})
    assert alerts["kind"].tolist() == ["segment share"] * 2 and "52.0% of customers now, up from 50.0%" in " ".join(alerts["what"])


def test_no_comparison_message_says_how_to_get_one():
    text = monitoring.no_comparison_message("config/sample.yaml", "/x/reports/.staging/first-2024-123", has_transactions=False)
    assert "analysis score --model-run first-2024 --config" in text and "analysis run --config config/sample.yaml" in text
    assert "no transactions" in text and "next run will show" not in text


# ------------------------------------------------------------------------------------------
# Planted migration on the generator, scored with a saved model (no refit)
# ------------------------------------------------------------------------------------------

PLANTS = {
    # basis: (truth column, columns copied from a member of the target segment, source, target, fixed k)
    "demographic": ("true_demographic_segment", ["age", "gender", "income", "education", "occupation", "marital_status", "children"],
                    "Young urban singles", "Retirees", 4),
    "geographic": ("true_geographic_segment", ["country", "region", "city", "latitude", "longitude", "urban_rural", "climate_zone"],
                   "Bavaria", "Greater London", 5),
}


def _run(path, customers):
    from analysis import io, workspace
    from analysis.config import load_config

    folder = io.RunFolder(path)
    folder.write_table("customers", customers)
    folder.write_ledger({"rows": [], "notes": []})
    return workspace.Run(config=load_config(SAMPLE_CONFIG), folder=folder)


def _move(customers, truth, column, copied, source, target, share, seed):
    """A copy of ``customers`` where ``share`` of the true ``source`` segment take the attributes of
    random true ``target`` members (ids kept): the planted migration."""
    rng = np.random.default_rng(seed)
    true = truth.set_index("customer_id")[column].reindex(customers["customer_id"]).to_numpy()
    members, donors = np.flatnonzero(true == source), np.flatnonzero(true == target)
    moved = rng.choice(members, size=round(share * len(members)), replace=False)
    out = customers.copy()
    out.loc[out.index[moved], copied] = customers.iloc[rng.choice(donors, size=len(moved))][copied].to_numpy()
    return out


@pytest.fixture(scope="module", params=sorted(PLANTS))
def planted(request, tmp_path_factory):
    """A model fitted on a generated sample and saved through the run handle; (basis, run, saved model, sample)."""
    from analysis import io, scoring
    from analysis.sample import generate_sample
    from analysis.segment import demographic, geographic

    basis = request.param
    sample = generate_sample(2000, random_state=5)
    run = _run(tmp_path_factory.mktemp(f"fit-{basis}"), sample["customers"])
    k = PLANTS[basis][4]
    if basis == "demographic":
        result = demographic.segment_demographic(run.table("customers"), k=k, n_bootstrap=1, random_state=0)
    else:
        result = geographic.segment_geographic(run.table("customers"), as_of=run.as_of, lookup=io.read_yaml(None, "us_states.yaml"),
                                               k=k, n_bootstrap=1, random_state=0)
    run.save_result(result)
    return basis, run, scoring.load_model(run.folder, basis), sample


def _score(model, path, customers):
    from analysis import scoring

    return scoring.score_basis(model, _run(path, customers)).labels


def test_planted_move_of_20_percent_is_found_and_alerted(planted, tmp_path):
    basis, run, model, sample = planted
    column, copied, source, target, _ = PLANTS[basis]
    moved = _move(sample["customers"], sample["truth"], column, copied, source, target, 0.2, seed=1)
    before = run.folder.read_labels()
    after = {basis: _score(model, tmp_path / "moved", moved)}
    comparison = monitoring.compare(before, after, previous_run="fit")
    segment = f"{basis}_segment"
    fitted = before[basis].set_index("customer_id")[segment]
    true = sample["truth"].set_index("customer_id")[column].reindex(fitted.index)
    home, away = (fitted[true == s].mode().iat[0] for s in (source, target))  # the fitted segments holding each planted one
    shares = comparison.migrations[segment].shares
    assert shares.loc[home, away] == pytest.approx(20.0, abs=2.0)
    assert min(shares.loc[s, s] for s in shares.index if s != home) >= 98.0  # nobody else moved
    alerts = comparison.alerts
    assert (alerts["kind"] == "segment share").any() and alerts["where"].eq(segment).any()
    assert any(home in what for what in alerts["what"])


def test_no_planted_change_raises_no_alert(planted, tmp_path):
    basis, run, model, sample = planted
    column, copied, source, _, _ = PLANTS[basis]
    before = run.folder.read_labels()
    # the same customers, 20% of one segment redrawn from their own segment: attributes change, segments do not
    redrawn = _move(sample["customers"], sample["truth"], column, copied, source, source, 0.2, seed=2)
    same = monitoring.compare(before, {basis: _score(model, tmp_path / "redrawn", redrawn)})
    assert same.alerts.empty, same.alerts
    assert same.migrations[f"{basis}_segment"].summary["stayed_pct"] >= 98.0
    # a fresh draw of 2,000 other customers from the same generator: shares differ by sampling noise only
    from analysis.sample import generate_sample

    fresh = generate_sample(2000, random_state=6)["customers"]
    other = monitoring.compare(before, {basis: _score(model, tmp_path / "fresh", fresh)})
    assert other.alerts.empty, other.alerts
    assert other.shares[f"{basis}_segment"]["change_pp"].abs().max() > 0  # the shares did move, by noise
