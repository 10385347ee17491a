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
    second = run("2025-01-01", "start-2025")
    assert {n["name"]: n["status"] for n in second["notebooks"]}["40_monitoring"] == "ok"
    facts = second["facts"]["monitoring"]
    assert facts["new_customers"] > 0 and 0 < facts["stayed_pct"] < 100
    assert 0 <= second["facts"]["monitoring_model_agreement"]["ari"] <= 1
    page = (reports / "start-2025" / "40_monitoring.html").read_text()
    assert "kept their RFM segment" in page and "adjusted Rand index" in page
