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
                               "--only", "00_data_prep", "13_behavioral", "40_monitoring"], capture_output=True, text=True, timeout=900)
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
