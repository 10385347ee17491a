"""The worked example of "Monitoring segments over time": Online Retail fitted on the first half of
2011 (``config/online_retail_2011h1.yaml``), scored on the whole year (``config/online_retail_2011.yaml``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import PROJECT_ROOT, shared_path


def _cli(*args: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], check=False, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_two_period_example_runs_end_to_end(tmp_path):
    shared_path("online_retail")
    reports = tmp_path / "reports"
    fit = _cli("run", "--config", str(PROJECT_ROOT / "config" / "online_retail_2011h1.yaml"), "--run-id", "or-h1",
               "--reports-dir", str(reports), timeout=3600)
    assert fit.returncode == 0, fit.stdout[-3000:] + fit.stderr[-3000:]
    scored = _cli("score", "--model-run", "or-h1", "--config", str(PROJECT_ROOT / "config" / "online_retail_2011.yaml"),
                  "--run-id", "or-2011", "--reports-dir", str(reports), timeout=3600)
    assert scored.returncode == 0, scored.stdout[-3000:] + scored.stderr[-3000:]
    manifest = json.loads((reports / "or-2011" / "manifest.json").read_text())
    assert manifest["scored_from"]["run_id"] == "or-h1" and "behavioral" in manifest["scored_from"]["bases"]
    monitoring = manifest["facts"]["monitoring"]
    rows = {r["segmentation"]: r for r in monitoring["segmentations"]}
    # half a year later: customers moved between RFM segments, new ones arrived, and value moved both ways
    assert rows["rfm_segment"]["new_customers"] > 500 and 0 < rows["rfm_segment"]["stayed_pct"] < 90
    assert rows["rfm_segment"]["moved_up"] > 0 and rows["rfm_segment"]["moved_down"] > 0
    assert manifest["facts"]["summary_40_monitoring"]["lines"]
    migration = pd.read_csv(reports / "or-2011" / "exports" / "migration.csv")
    assert {"segmentation", "from", "to", "customers", "share_of_from_pct", "direction"} <= set(migration.columns)
