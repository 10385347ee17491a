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

from .conftest import HOSTILE_NAME, PROJECT_ROOT, analysis, background_run

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


# ------------------------------------------------------------------------------------------
# A run whose input carries personal data, e-mail ids, a formula and Markdown/HTML in values
# ------------------------------------------------------------------------------------------

EVIL_MARKDOWN = "[Urgent](https://evil.example/login) ![t](https://evil.example/t.png)"
EVIL_HTML = '<img src="https://evil.example/i.png"><a href="https://evil.example/a">Open</a>'
HYPERLINK = '=HYPERLINK("https://evil.example/x","Click me")'
LIVE_EVIL = re.compile(r"<a[^>]+href=\"?https?://evil|<img[^>]+src=\"?https?://evil", re.IGNORECASE)
PII_NOTEBOOKS = ("00_data_prep", "11_geographic", "12_psychographic", "30_clienteling")


def _pii_sample(folder: Path) -> tuple[Path, dict[str, set[str]]]:
    """A 400-customer generated sample whose customer ids are e-mail addresses, with names,
    e-mails and phones mapped (``name``, ``email``, ``phone``) and unmapped ("Email Address",
    "mobile", "Phone Number", "street"; ``buyer_email`` on transactions), one duplicate and one
    missing customer id, a product named as a spreadsheet formula, a region and a survey-scale
    name holding Markdown links, images and HTML. Returns the config and the planted values."""
    import yaml

    from analysis.sample import write_sample

    paths = write_sample(folder, n_customers=400, random_state=5)
    customers = pd.read_csv(paths["customers"], dtype=str, keep_default_na=False)
    n = len(customers)
    new_ids = {old: f"client.{i:04d}@example.net" for i, old in enumerate(customers["customer_id"])}
    planted = {
        "email": set(customers["email"]) | set(new_ids.values()),
        "name": set(customers["name"]),
        "phone": set(),
        "street": set(),
    }
    customers["customer_id"] = customers["customer_id"].map(new_ids)
    customers["phone"] = [f"+44 7700 9{i:05d}" for i in range(n)]
    customers["Email Address"] = [f"home.{i:04d}@example.org" for i in range(n)]
    customers["mobile"] = [f"(555) 01{i % 100:02d}-{i:04d}" for i in range(n)]
    customers["Phone Number"] = [f"+1 202 555 {i:04d}" for i in range(n)]
    customers["street"] = [f"{i + 1} Quillfeather Lane" for i in range(n)]
    planted["email"] |= set(customers["Email Address"])
    planted["phone"] |= set(customers["phone"]) | set(customers["mobile"]) | set(customers["Phone Number"])
    planted["street"] |= set(customers["street"])
    top_region = customers["region"].value_counts().index[0]
    customers.loc[customers["region"] == top_region, "region"] = f"{EVIL_MARKDOWN} {EVIL_HTML}"
    duplicate = customers.iloc[[1]].assign(age="99")
    missing = customers.iloc[[2]].assign(customer_id="", age="77")
    pd.concat([customers, duplicate, missing]).to_csv(paths["customers"], index=False)
    for table in ("transactions", "survey", "events"):
        frame = pd.read_csv(paths[table], dtype=str, keep_default_na=False)
        frame["customer_id"] = frame["customer_id"].map(new_ids)
        if table == "transactions":
            frame["buyer_email"] = [f"buyer.{i}@shop.example" for i in range(len(frame))]
            planted["email"] |= set(frame["buyer_email"])
            for product in frame["product_id"].value_counts().index[:3]:
                frame.loc[frame["product_id"] == product, "product_name"] = HYPERLINK
        frame.to_csv(paths[table], index=False, compression="gzip" if str(paths[table]).endswith(".gz") else None)
    cfg = yaml.safe_load((PROJECT_ROOT / "config" / "sample.yaml").read_text(encoding="utf-8"))
    cfg["name"] = "pii"
    for table, source in cfg["sources"].items():
        source["path"] = str(paths[table])
    scales = cfg["survey"]["scales"]
    cfg["survey"]["scales"] = {(EVIL_MARKDOWN if i == 0 else k): v for i, (k, v) in enumerate(scales.items())}
    config_path = folder / "pii.yaml"
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return config_path, planted


def _execute_pii_run(folder: Path, prepared: tuple[Path, dict[str, set[str]]]):
    config_path, planted = prepared
    reports = folder / "reports"
    proc = analysis("run", "--config", str(config_path), "--run-id", "pii", "--reports-dir", str(reports), "--only", *PII_NOTEBOOKS,
                    timeout=1800)
    run = reports / "pii"
    assert (run / "manifest.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return run, planted, proc


background_run("pii_run", _execute_pii_run, prepare=lambda folder: _pii_sample(folder / "data"))


@pytest.fixture(scope="module")
def pii_run(background_runs):
    """One run of the data prep, geographic, psychographic and clienteling pages on :func:`_pii_sample`, in the background."""
    return background_runs.result("pii_run")


_IMAGE_DATA = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s\\]+|\"image/png\": \"[^\"]*\"")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")
_PHONE_LIKE = re.compile(r"\+?\(?\d[\d ().\-]{5,}\d")


def _run_folder_text(run: Path) -> dict[str, str]:
    """Every file of a run folder as searchable text: Parquet read with pandas, HTML unescaped,
    embedded images dropped (figures are pixels); other binary files decoded byte for byte."""
    import html

    out = {}
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        rel = path.relative_to(run).as_posix()
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            out[rel] = " ".join(map(str, frame.columns)) + "\n" + frame.astype(str).to_csv(index=False)
        elif path.suffix == ".png":
            continue
        else:
            raw = path.read_bytes()
            try:
                content = raw.decode("utf-8")
            except UnicodeDecodeError:
                content = raw.decode("latin-1")
            out[rel] = html.unescape(_IMAGE_DATA.sub("", content))
    return out


def _leaks(texts: dict[str, str], planted: dict[str, set[str]]) -> list[str]:
    names: dict[str, set[tuple[str, ...]]] = {}  # first word -> full names (word tuples)
    for value in planted["name"] | planted["street"]:
        words = tuple(_WORD.findall(value))
        names.setdefault(words[0], set()).add(words)
    digits = {re.sub(r"\D", "", p) for p in planted["phone"]}
    leaks = []
    for where, content in texts.items():
        leaks += [f"{where}: e-mail {a}" for a in sorted(set(EMAIL.findall(content)) & planted["email"])][:3]
        leaks += [f"{where}: phone {p}" for p in sorted({re.sub(r"\D", "", m) for m in _PHONE_LIKE.findall(content)} & digits)][:3]
        words = _WORD.findall(content)
        found = {full for i, w in enumerate(words) if w in names for full in names[w] if tuple(words[i:i + len(full)]) == full}
        leaks += [f"{where}: name or street {' '.join(f)!r}" for f in sorted(found)][:3]
    return leaks


def test_no_personal_data_anywhere_in_the_run_folder(pii_run):
    run, planted, proc = pii_run
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete", proc.stdout[-3000:] + proc.stderr[-3000:]
    texts = _run_folder_text(run)
    assert {"data/customers.parquet", "data/transactions.parquet", "set_aside/customers.csv", "set_aside/transactions.csv",
            "exports/contact_list.csv", "exports/customers.csv", "30_clienteling.html", "30_clienteling.ipynb", "index.html"} <= set(texts)
    # the search can find what it looks for: the planted values are in the input files
    inputs = _run_folder_text(run.parents[1] / "data")
    assert len(_leaks({k: v for k, v in inputs.items() if k.startswith("customers")}, planted)) >= 9
    leaks = _leaks(texts, planted)
    assert not leaks, "\n".join(leaks[:30])


def test_set_aside_rows_keep_row_reason_and_what_is_not_personal(pii_run):
    run, _, _ = pii_run
    aside = pd.read_csv(run / "set_aside" / "customers.csv", dtype=str, keep_default_na=False)
    assert sorted(aside["reason"]) == ["duplicate_customer_id", "missing_customer_id"]
    assert sorted(aside["age"]) == ["77", "99"] and aside["source_row"].astype(int).min() > 400
    assert not {"name", "email", "phone", "Email Address", "mobile", "Phone Number", "street"} & set(aside.columns)
    dup = aside.loc[aside["reason"] == "duplicate_customer_id", "customer_id"].iloc[0]
    assert re.fullmatch(r"c_[0-9a-f]{16}", dup)
    assert "buyer_email" not in pd.read_csv(run / "set_aside" / "transactions.csv", nrows=0).columns


def test_email_ids_are_pseudonymised_with_a_note(pii_run):
    run, _, _ = pii_run
    ids = pd.read_csv(run / "exports" / "contact_list.csv", dtype=str)["customer_id"]
    assert len(ids) and ids.str.fullmatch(r"c_[0-9a-f]{16}").all()
    assert set(ids) <= set(pd.read_parquet(run / "data" / "customers.parquet")["customer_id"])
    ledger = json.loads((run / "manifest.json").read_text())["ledger"]
    notes = " ".join(n["note"] for n in ledger["notes"])
    assert "pseudonyms" in notes and "'Email Address'" in notes and "'buyer_email'" in notes
    assert "pseudonyms" in (run / "00_data_prep.html").read_text(encoding="utf-8")
    assert "pseudonyms" in (run / "index.html").read_text(encoding="utf-8")


def test_formula_in_a_product_name_is_neutralised_in_the_contact_list(pii_run):
    import csv

    run, _, _ = pii_run
    with open(run / "exports" / "contact_list.csv", newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert "'" + HYPERLINK in cells, "the product is recommended to someone and written as text"
    assert not [c for c in cells if c.startswith(("=", "@", "\t", "\r")) or (c.startswith(("+", "-")) and not re.fullmatch(r"[+-][\d.eE+-]+", c))]


def test_markdown_and_html_in_values_show_as_text_on_the_pages(pii_run):
    run, _, _ = pii_run
    pages = {p.name: p.read_text(encoding="utf-8") for p in sorted(run.glob("*.html"))}
    shown = [name for name, page in pages.items() if "[Urgent](https://evil.example/login)" in page]
    assert "11_geographic.html" in shown, "the hostile region is on the geographic page, as text"
    assert "12_psychographic.html" in shown, "the hostile scale name is on the psychographic page, as text"
    live = {name: LIVE_EVIL.search(page).group(0) for name, page in pages.items() if LIVE_EVIL.search(page)}
    assert not live, live
