"""End-to-end runs on the public data sets (skipped when ../shared/data is absent)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import PROJECT_ROOT, shared_path


def _run(config: str, run_id: str, reports, *only: str) -> dict:
    cmd = [sys.executable, "-m", "analysis", "run", "--config", str(PROJECT_ROOT / "config" / config), "--run-id", run_id,
           "--reports-dir", str(reports)]
    if only:
        cmd += ["--only", *only]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((reports / run_id / "manifest.json").read_text())


@pytest.mark.slow
def test_cdnow_value_page_reproduces_the_paper(tmp_path):
    """BG/NBD calibration on weeks 1-39 and the weeks 40-78 holdout, through the real notebook."""
    shared_path("cdnow", "CDNOW_sample.txt")
    manifest = _run("cdnow.yaml", "cdnow", tmp_path, "00_data_prep", "14_value")
    value = manifest["models"]["value"]  # the page compares the families; BG/NBD's calibration fit is the paper's
    bg = value["calibration_fits"]["bgnbd"]
    for name, paper in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert bg["params"][name] == pytest.approx(paper, rel=0.01), name
    assert bg["log_likelihood"] == pytest.approx(-9582.4, rel=0.001)
    hold = bg["holdout"]
    assert hold["actual_total"] == 1882
    assert hold["predicted_total"] == pytest.approx(1653, rel=0.02)
    assert hold["mae_model"] == pytest.approx(0.785, rel=0.03) and hold["mae_naive"] == pytest.approx(1.024, rel=0.03)
    assert hold["mae_model"] < hold["mae_naive"]
    gg = value["calibration_fits"]["gamma_gamma"]
    assert gg["customers"] == 946
    for name, paper in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert gg["params"][name] == pytest.approx(paper, rel=0.01), name
    html = (tmp_path / "cdnow" / "14_value.html").read_text()
    assert "1,882" in html and "1,653" in html  # the figures are shown on the page


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_full_run(online_retail_run):
    """All 541,909 lines: the ledger adds up and the behavioral and value pages render.

    Reads the session's full Online Retail run (every page), which the page scan reads too."""
    proc, reports = online_retail_run
    manifest_path = reports / "retail" / "manifest.json"
    assert manifest_path.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads(manifest_path.read_text())
    totals = {t["table"]: t for t in manifest["ledger"]["totals"]}
    assert totals["transactions"]["read"] == 541_909 == totals["transactions"]["kept"] + totals["transactions"]["set_aside"]
    reasons = {r["reason"]: r["rows"] for r in manifest["ledger"]["rows"] if r["outcome"] == "set aside"}
    assert reasons["missing_customer_id"] == 135_080 and reasons["cancellation"] > 8_000
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert {name: status.get(name) for name in ("00_data_prep", "13_behavioral", "14_value")} == \
        {"00_data_prep": "ok", "13_behavioral": "ok", "14_value": "ok"}, proc.stdout[-3000:] + proc.stderr[-3000:]
    value = manifest["models"]["value"]
    assert set(value["full_period_fits"][value["chosen_model"]]["params"]) in ({"r", "alpha", "a", "b"}, {"r", "alpha", "s", "beta"})
    assert manifest["exports"]["customers.csv"] == 4_338
