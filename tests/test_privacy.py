"""Personal data stay out of the run folder; CSV cells cannot run as formulas; data render as text.

Fast tests on the helpers and the data contract. The whole-run checks (every file of a run
folder grepped for planted names, e-mail addresses and phone numbers) are in
``test_report_safety.py``.
"""

from __future__ import annotations

import csv
import re

import nbformat
import pandas as pd
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbformat.v4 import new_code_cell, new_notebook, new_output

from analysis import clienteling, contract, io, privacy, runner, text, workspace
from analysis.config import load_config
from analysis.personas.summary import summary_html

EVIL_MARKDOWN = "[Urgent](https://evil.example/login) ![t](https://evil.example/t.png)"
EVIL_HTML = '<img src="https://evil.example/i.png" onerror="alert(1)"><a href="https://evil.example/a">a</a>'
HYPERLINK = '=HYPERLINK("https://evil.example/x","Click me")'
LIVE_EVIL = re.compile(r"<a[^>]+href=\"?https?://evil|<img[^>]+src=\"?https?://evil", re.IGNORECASE)

# ------------------------------------------------------------------------------------------
# Recognising personal data
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column, kind", [
    ("email", "e-mail"), ("Email Address", "e-mail"), ("E-mail", "e-mail"), ("buyer_email", "e-mail"),
    ("mobile", "phone"), ("Phone Number", "phone"), ("Telephone", "phone"), ("cell", "phone"),
    ("street", "address"), ("Address Line 1", "address"), ("name", "name"), ("Customer Name", "name"),
    ("first_name", "name"), ("LastName", "name"), ("Surname", "name"), ("date_of_birth", "identity"),
])
def test_personal_data_is_recognised_by_column_name(column, kind):
    assert privacy.column_name_kind(column) == kind


@pytest.mark.parametrize("column", [
    "product_name", "ProductName", "brand name", "category_name", "customer_id", "Country", "city", "PostalCode",
    "email_open_rate", "phone_opt_in", "mobile_app_sessions", "InvoiceNo", "Description",
])
def test_analysis_columns_are_not_mistaken_for_personal_data(column):
    assert privacy.column_name_kind(column) is None


def test_personal_data_is_recognised_by_value():
    values = pd.Series(["+44 20 7946 0958", "555-0101", "(555) 123-4567", "ann@example.com", "note: mail bo@x.org",
                        "2024-03-05", "05/03/2024", "1234567.89", "17850", "C001", "12345678", None])
    assert privacy.phone_mask(values).tolist() == [True, True, True] + [False] * 9
    assert privacy.email_mask(values).tolist() == [False] * 3 + [True, True] + [False] * 7
    assert privacy.column_value_kind(pd.Series(["x", "y", "z@example.com"])) == "e-mail"
    assert privacy.column_value_kind(pd.Series(["+1 555 0100 11", "+1 555 0100 12", "n/a"])) == "phone"
    assert privacy.column_value_kind(pd.Series(["2024-01-02", "17850", "Paris"])) is None


def test_pseudonyms_are_stable_keyed_and_only_for_personal_ids():
    ids = pd.Series(["ann@example.com", "17850", "+44 20 7946 0958", None, "ann@example.com"], dtype=object)
    pseudo, n = privacy.pseudonymise(ids, "sample")
    assert n == 3
    assert pseudo[1] == "17850" and pseudo[3] is None
    assert re.fullmatch(r"c_[0-9a-f]{16}", pseudo[0]) and pseudo[0] == pseudo[4] != pseudo[2]
    again, _ = privacy.pseudonymise(ids, "sample")
    other, _ = privacy.pseudonymise(ids, "another-config")
    assert again.tolist() == pseudo.tolist() and other[0] != pseudo[0]


# ------------------------------------------------------------------------------------------
# The data contract keeps personal data out of tables and set-aside rows
# ------------------------------------------------------------------------------------------

NAMES = ["Ann Leeworth", "Bob Rayburn", "Cleo Parkinson", "Dan Colefield", "Eve Mossgrove", "Finn Ashcombe"]
EMAILS = [f"{n.split()[0].lower()}.{i}@example.com" for i, n in enumerate(NAMES)]
ALT_EMAILS = [f"private.{i}@example.org" for i in range(len(NAMES))]
PHONES = [f"+44 20 7946 01{i:02d}" for i in range(len(NAMES))]
MOBILES = [f"(555) 201-33{i:02d}" for i in range(len(NAMES))]
STREETS = [f"{i + 10} Quillfeather Lane" for i in range(len(NAMES))]
BUYER_EMAILS = [f"buyer.{i}@shop.example" for i in range(len(NAMES))]


def _pii_sources(tmp_path, *, email_ids: bool = False):
    """Customers with mapped and unmapped personal data, one duplicate and one missing id;
    transactions with an unmapped ``buyer_email``; ids optionally e-mail addresses."""
    ids = EMAILS if email_ids else [f"C{i:03d}" for i in range(len(NAMES))]
    customers = pd.DataFrame({
        "customer_id": ids, "name": NAMES, "email": EMAILS, "phone": PHONES, "Email Address": ALT_EMAILS,
        "mobile": MOBILES, "Phone Number": PHONES, "street": STREETS, "age": [34, 51, 27, 45, 62, 38],
        "country": ["France", "France", "Spain", "Spain", "Italy", "Italy"],
    })
    duplicate = customers.iloc[[1]].assign(age=99)
    missing = customers.iloc[[2]].assign(customer_id="", age=77)
    pd.concat([customers, duplicate, missing]).to_csv(tmp_path / "customers.csv", index=False)
    tx = pd.DataFrame({
        "customer_id": ids + [""], "order_id": [f"O{i}" for i in range(len(NAMES))] + ["O99"],
        "timestamp": [f"2024-0{i + 1}-05 10:00:00" for i in range(len(NAMES))] + ["2024-07-01 10:00:00"],
        "product_id": ["P1", "P2", "P1", "P3", "P2", "P1", "P1"], "product_name": [HYPERLINK, "Bag", HYPERLINK, "Shoe", "Bag", HYPERLINK, "Bag"],
        "category": "Apparel", "quantity": 1, "amount": [45.0, 30.0, 25.0, 120.0, 15.0, 89.9, 10.0],
        "buyer_email": BUYER_EMAILS + ["lost.buyer@shop.example"],
    })
    tx.to_csv(tmp_path / "transactions.csv", index=False)
    return {"name": "privacy", "as_of": "2024-12-31",
            "sources": {"customers": {"path": "customers.csv"}, "transactions": {"path": "transactions.csv"}}}


def _planted(email_ids: bool = False) -> list[str]:
    return NAMES + EMAILS + ALT_EMAILS + PHONES + MOBILES + STREETS + BUYER_EMAILS + ["lost.buyer@shop.example"]


def _everything_as_text(prepared: contract.Prepared) -> str:
    frames = list(prepared.tables.values()) + list(prepared.set_aside.values())
    return "\n".join(f.to_csv(index=False) + " ".join(map(str, f.columns)) for f in frames)


@pytest.mark.parametrize("email_ids", [False, True], ids=["plain-ids", "email-ids"])
def test_prepared_tables_and_set_aside_rows_hold_no_personal_data(write_config, tmp_path, email_ids):
    cfg = load_config(write_config(_pii_sources(tmp_path, email_ids=email_ids)))
    folder = io.RunFolder(tmp_path / "run")
    prepared = workspace.prepare_run(cfg, folder)
    written = _everything_as_text(prepared) + "".join(p.read_text(encoding="utf-8") for p in folder.path.rglob("*.csv"))
    written += "".join(pd.read_parquet(p).to_csv() for p in folder.path.rglob("*.parquet"))
    written += "".join(p.read_text(encoding="utf-8") for p in folder.path.rglob("*.json"))
    leaks = [v for v in _planted() if v in written]
    assert not leaks, f"personal data written: {leaks}"
    assert "@" not in "".join(prepared.tables["customers"]["customer_id"])
    # the ledger still balances, and set-aside rows keep row number, reason and what is not personal
    totals = prepared.ledger.totals().set_index("table")
    assert totals.loc["customers", "read"] == 8 and totals.loc["customers", "set_aside"] == 2
    aside = prepared.set_aside["customers"]
    assert list(aside.columns) == ["source_row", "reason", "customer_id", "age", "country"]
    assert aside[["source_row", "reason"]].values.tolist() == [[7, "duplicate_customer_id"], [8, "missing_customer_id"]]
    assert aside["age"].tolist() == ["99", "77"]
    assert list(prepared.set_aside["transactions"].columns) == ["source_row", "reason", "customer_id", "order_id", "timestamp",
                                                                "product_id", "product_name", "category", "quantity", "amount"]
    # what was left out is named (columns, never values) in the ledger and on Prepared
    assert set(prepared.pii["customers"]) == {"name", "email", "phone", "Email Address", "mobile", "Phone Number", "street"}
    assert set(prepared.pii["transactions"]) == {"buyer_email"}
    notes = " ".join(n["note"] for n in prepared.ledger.notes)
    assert "'Email Address'" in notes and "'buyer_email'" in notes
    assert ("pseudonyms" in notes) == email_ids


def test_email_ids_get_one_pseudonym_across_tables_and_the_set_aside_rows(write_config, tmp_path):
    cfg = load_config(write_config(_pii_sources(tmp_path, email_ids=True)))
    prepared = contract.prepare(workspace.read_raw(cfg), cfg)
    customers = set(prepared.tables["customers"]["customer_id"])
    assert customers == set(prepared.tables["transactions"]["customer_id"])
    assert customers == {privacy.pseudonym(e, "privacy") for e in EMAILS}
    duplicate = prepared.set_aside["customers"].query("reason == 'duplicate_customer_id'")["customer_id"].iloc[0]
    assert duplicate == privacy.pseudonym(EMAILS[1], "privacy")


def test_ids_that_are_not_personal_are_kept_as_they_are(write_config, tmp_path):
    cfg = load_config(write_config(_pii_sources(tmp_path)))
    prepared = contract.prepare(workspace.read_raw(cfg), cfg)
    assert sorted(prepared.tables["customers"]["customer_id"]) == [f"C{i:03d}" for i in range(len(NAMES))]
    assert "pseudonyms" not in " ".join(n["note"] for n in prepared.ledger.notes)


def test_email_addresses_inside_analysed_text_are_cut_out(write_config, tmp_path):
    cfg = load_config(write_config(_pii_sources(tmp_path)))
    tx = pd.read_csv(tmp_path / "transactions.csv", dtype=str)
    tx.loc[1, "product_name"] = "Gift for bob@example.net"
    tx.to_csv(tmp_path / "transactions.csv", index=False)
    prepared = contract.prepare(workspace.read_raw(cfg), cfg)
    names = set(prepared.tables["transactions"]["product_name"])
    assert f"Gift for {privacy.EMAIL_REMOVED}" in names and not any("bob@" in n for n in names)


# ------------------------------------------------------------------------------------------
# CSV cells a spreadsheet would run
# ------------------------------------------------------------------------------------------


def test_spreadsheet_cells_that_start_a_formula_are_neutralised():
    cells = [HYPERLINK, "+1+1", "-1+1", "@SUM(A1:A2)", "\tx", "\rx", "a=b", "-5", "+1.5e3", "", None, 3, -5.0]
    assert [text.spreadsheet_cell(c) for c in cells] == [
        "'" + HYPERLINK, "'+1+1", "'-1+1", "'@SUM(A1:A2)", "'\tx", "'\rx", "a=b", "-5", "+1.5e3", "", None, 3, -5.0]


def test_exports_and_set_aside_files_are_written_spreadsheet_safe(tmp_path):
    folder = io.RunFolder(tmp_path)
    frame = pd.DataFrame({"customer_id": ["c1", "=cmd|' /C calc'!A0"], "recommended_1": [HYPERLINK, "Bag"],
                          "delta": [-5, 3], "delta_text": ["-5", "-x"], "segment": pd.Categorical(["@risk", "ok"])})
    for path in (folder.write_export("contact_list.csv", frame), folder.write_set_aside("transactions", frame)):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows[0]["recommended_1"] == "'" + HYPERLINK
        assert rows[1]["customer_id"] == "'=cmd|' /C calc'!A0"
        assert [r["delta"] for r in rows] == ["-5", "3"], "numbers stay numbers"
        assert [r["delta_text"] for r in rows] == ["-5", "'-x"]
        assert rows[0]["segment"] == "'@risk"
    assert frame.loc[0, "recommended_1"] == HYPERLINK, "the caller's frame is not changed"


# ------------------------------------------------------------------------------------------
# Data values render as text: Markdown sentences, rendered Markdown outputs, HTML templates
# ------------------------------------------------------------------------------------------


def test_literal_values_render_as_their_text_in_markdown():
    for value in (EVIL_MARKDOWN, EVIL_HTML, "a * b _c_ `d` | e # f", "https://evil.example/bare"):
        html = markdown2html_mistune(text.sentence("Top region: **{region}** ({n:,} customers)", region=value, n=1234))
        assert not LIVE_EVIL.search(html) and "<a " not in html and "<img" not in html, html
        assert "<strong>" in html and "1,234 customers" in html
    html = markdown2html_mistune(text.sentence("{v}", v=EVIL_MARKDOWN))
    assert "[Urgent](https://evil.example/login) ![t](https://evil.example/t.png)" in html


def test_disarmed_markdown_has_no_links_or_images_and_keeps_emphasis():
    for value in (EVIL_MARKDOWN, EVIL_HTML, "<https://evil.example/auto>", "[r]\n\n[r]: https://evil.example/ref",
                  "\\\\[x\\\\](https://evil.example/b)", "https://evil.example/bare"):
        html = markdown2html_mistune(runner.markdown_as_text(f"- **Region**: {value}"))
        assert not LIVE_EVIL.search(html) and "<a " not in html and "<img" not in html, html
        assert "<strong>Region</strong>" in html
    assert runner.markdown_as_text(text.sentence("x {v}", v=EVIL_MARKDOWN)) == text.sentence("x {v}", v=EVIL_MARKDOWN)


def test_page_from_hostile_markdown_outputs_shows_them_as_text(tmp_path):
    """A region and a survey-scale name holding Markdown links, images and HTML on a rendered page."""
    nb = new_notebook(cells=[new_code_cell("x", outputs=[
        new_output("display_data", data={"text/markdown": f"**12 customers**; levels in the data: region.\n- Top region: {EVIL_MARKDOWN}"}),
        new_output("display_data", data={"text/markdown": f"Factors: **{EVIL_MARKDOWN}**, **{EVIL_HTML}**."}),
    ])])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "11_geographic.ipynb")
    runner.render_html(tmp_path / "11_geographic.ipynb", tmp_path / "11_geographic.html")
    html = (tmp_path / "11_geographic.html").read_text(encoding="utf-8")
    assert not LIVE_EVIL.search(html), LIVE_EVIL.search(html).group(0)
    assert "[Urgent](https://evil.example/login)" in html and "<strong>12 customers</strong>" in html


def test_client_cards_and_summary_are_templated_and_escaped():
    contacts = pd.DataFrame({"priority_rank": [1, 2], "clv": [5.0, float("nan")], "p_alive": [0.5, None], "churn_risk": ["low", None],
                             "frequency": [2, 1], "total_spend": [10.0, 3.0], "recency_days": [3.0, 40.0],
                             "geographic_segment": [EVIL_MARKDOWN, EVIL_HTML], "next_action": ["Nurture", "Retain"],
                             "action_message": ["hi & bye", "x"], "recommended_1": [HYPERLINK, "<b>x</b>"],
                             "name": NAMES[:2]}, index=["ann@example.com", "c_0123456789abcdef"])
    html = clienteling.client_cards_html(contacts, ["geographic_segment"])
    assert not LIVE_EVIL.search(html) and "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "ann@example.com" not in html and "(id withheld)" in html and "client c_0123456789abcdef" in html
    assert not any(n in html for n in NAMES)
    assert html.count('class="card"') == 2 and "\u2013" in html, "missing values show as a dash"
    callout = summary_html({"title": "Personas", "lines": [f"Value concentrates in \u201c{EVIL_HTML}\u201d."]})
    assert callout.startswith('<div class="callout">') and not LIVE_EVIL.search(callout) and "&lt;img" in callout
