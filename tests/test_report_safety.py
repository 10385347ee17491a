"""Safety of what a run publishes: no PII in pages or the customer export; small segments suppressed.

PII columns (config ``pii_columns``: name, email, phone) are used to recognise customers at the
source but never shown: not on any HTML page, not in ``exports/customers.csv``. Persona profiles
of segments below ``min_segment_size`` show size and worth only, never traits.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from .conftest import HOSTILE_NAME, PROJECT_ROOT

pytestmark = pytest.mark.slow

SAMPLE_CUSTOMERS = PROJECT_ROOT / "data" / "sample" / "customers.csv"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def _pii_values(customers_csv: Path, columns: list[str]) -> dict[str, set[str]]:
    customers = pd.read_csv(customers_csv, dtype=str, keep_default_na=False)
    return {c: {v for v in customers[c] if len(v) >= 6} for c in columns if c in customers.columns}


def _published_text(run: Path) -> dict[str, str]:
    """Every HTML page and the customer export, as text."""
    files = sorted(run.glob("*.html")) + [run / "exports" / "customers.csv"]
    return {p.relative_to(run).as_posix(): p.read_text(encoding="utf-8") for p in files if p.exists()}


def test_sample_pages_and_customer_export_carry_no_pii(sample_run):
    _, reports = sample_run
    run = reports / "ci-sample"
    manifest = json.loads((run / "manifest.json").read_text())
    pii = _pii_values(SAMPLE_CUSTOMERS, manifest["config"]["pii_columns"])
    assert pii.get("email") and pii.get("name"), "the sample has names and e-mail addresses to look for"
    published = _published_text(run)
    assert "exports/customers.csv" in published and len(published) >= 3
    leaks = []
    for where, text in published.items():
        for address in set(EMAIL.findall(text)) & pii["email"]:
            leaks.append(f"{where}: e-mail {address}")
        leaks += [f"{where}: {column} {value!r}" for column in ("name", "phone") for value in pii.get(column, ())
                  if value in text][:5]
    assert not leaks, "\n".join(leaks[:20])
    header = published["exports/customers.csv"].splitlines()[0].split(",")
    assert not set(manifest["config"]["pii_columns"]) & set(header)


def test_other_exports_carry_no_pii(sample_run):
    """CRM and persona exports identify customers by id only."""
    _, reports = sample_run
    run = reports / "ci-sample"
    pii = _pii_values(SAMPLE_CUSTOMERS, ["email", "name", "phone"])
    leaks = []
    for path in sorted((run / "exports").glob("*")):
        text = path.read_text(encoding="utf-8")
        leaks += [f"exports/{path.name}: e-mail {a}" for a in set(EMAIL.findall(text)) & pii["email"]][:3]
        leaks += [f"exports/{path.name}: name {n!r}" for n in pii["name"] if n in text][:3]
    assert not leaks, "\n".join(leaks)


def test_hostile_customer_name_never_reaches_a_page(hostile_runs):
    """The customer name is PII: not shown, whether escaped or not."""
    _, reports, _ = hostile_runs
    run = reports / "hostile-a"
    assert (run / "index.html").exists()
    for where, text in _published_text(run).items():
        assert "Zoë" not in text and HOSTILE_NAME not in text, f"{where} shows the customer's name"


def test_small_segments_are_suppressed_in_persona_profiles(hostile_runs):
    _, reports, _ = hostile_runs
    run = reports / "hostile-a"
    manifest = json.loads((run / "manifest.json").read_text())
    if not (run / "exports" / "personas.csv").exists():
        pytest.skip("this run has no persona export (20_personas not in the pipeline yet)")
    min_size = manifest["config"]["min_segment_size"]
    personas = pd.read_csv(run / "exports" / "personas.csv")
    profiles = pd.read_csv(run / "exports" / "persona_profiles.csv")
    small = personas[personas["customers"] < min_size]
    assert (personas["suppressed"] == (personas["customers"] < min_size)).all(), "suppressed iff below min_segment_size"
    if small.empty:
        pytest.skip(f"no segment below min_segment_size={min_size} in this run: nothing to suppress")
    key = ["segmentation", "segment"]
    small_profiles = profiles.merge(small[key].drop_duplicates(), on=key)
    assert set(small_profiles["kind"]) <= {"size", "worth"}, "only size and worth are reported for small segments"
    page = (run / "20_personas.html").read_text(encoding="utf-8")
    assert page.count("traits are not shown") >= len(small.drop_duplicates(key))
