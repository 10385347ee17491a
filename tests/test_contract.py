from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from analysis import contract, io, workspace
from analysis.config import ConfigError, load_config

from .conftest import PROJECT_ROOT, shared_path


def test_normalize_ids_handles_float_ids_and_blanks():
    ids = contract.normalize_ids(pd.Series(["17850.0", " 17850 ", "", None, "C00012", "12.5", "nan"]))
    assert ids.tolist() == ["17850", "17850", None, None, "C00012", "12.5", None]


def test_parse_numbers_currency_and_parentheses():
    got = contract.parse_numbers(pd.Series(["$1,234.50", "£3", "(12.00)", "abc", "", "7"]))
    np.testing.assert_allclose(got.to_numpy(), [1234.5, 3.0, -12.0, np.nan, np.nan, 7.0])
    eu = contract.parse_numbers(pd.Series(["1.234,50", "3,5"]), decimal=",")
    np.testing.assert_allclose(eu.to_numpy(), [1234.5, 3.5])


def test_parse_datetimes_iso_mixed_and_format():
    got = contract.parse_datetimes(pd.Series(["2024-01-02 10:00:00", "03/15/2024", "not a date", None]))
    assert got.iloc[0] == pd.Timestamp("2024-01-02 10:00")
    assert got.iloc[1] == pd.Timestamp("2024-03-15")
    assert got.iloc[2:].isna().all()
    fixed = contract.parse_datetimes(pd.Series(["19970101", "1997-01-01"]), date_format="%Y%m%d")
    assert fixed.iloc[0] == pd.Timestamp("1997-01-01") and pd.isna(fixed.iloc[1])


def _tx_config(write_config, tmp_path, csv_text: str, **source):
    (tmp_path / "tx.csv").write_text(csv_text, encoding="utf-8")
    return load_config(write_config({
        "name": "t", "as_of": "2024-06-30",
        "sources": {"transactions": {"path": "tx.csv", **source}},
    }))


def test_transaction_ledger_reasons_add_up(write_config, tmp_path):
    csv_text = (
        "customer_id,order_id,timestamp,product_id,quantity,amount\n"
        "1,A1,2024-01-01,p1,1,10\n"          # kept
        "1,A1,2024-01-01,p1,1,10\n"          # duplicate line
        ",A2,2024-01-02,p1,1,10\n"           # missing customer
        "2,,2024-01-02,p1,1,10\n"            # missing order
        "2,A3,yesterday,p1,1,10\n"           # unparseable date
        "2,A4,2024-02-01,p1,1,$1x\n"         # unparseable amount
        "2,A5,2030-01-01,p1,1,10\n"          # after as_of
        "2,CA6,2024-02-01,p1,-1,-10\n"       # cancellation
        "2,A7,2024-02-01,p1,-1,-10\n"        # return
        "2,A8,2024-02-01,p1,1,0\n"           # zero amount
        "3.0,A9,2024-03-01,p2,2,\"$1,234.50\"\n"  # kept: float id, currency
        "3,A10,1900-01-01,p2,1,5\n"          # before min_date
    )
    cfg = _tx_config(write_config, tmp_path, csv_text, cancellation_prefix="C")
    prepared = contract.prepare(workspace.read_raw(cfg), cfg)
    ledger = prepared.ledger.frame().set_index("reason")["rows"]
    assert ledger[""] == 2
    for reason in ("duplicate_line", "missing_customer_id", "missing_order_id", "unparseable_timestamp",
                   "unparseable_amount", "after_as_of", "cancellation", "return", "non_positive_amount", "before_min_date"):
        assert ledger[reason] == 1, reason
    totals = prepared.ledger.totals().set_index("table").loc["transactions"]
    assert totals["read"] == 12 == totals["kept"] + totals["set_aside"]
    tx = prepared.tables["transactions"]
    assert sorted(tx["customer_id"]) == ["1", "3"]
    assert tx.loc[tx.customer_id == "3", "amount"].item() == pytest.approx(1234.5)
    aside = prepared.set_aside["transactions"]
    assert len(aside) == 10 and set(aside.columns) >= {"source_row", "reason", "customer_id", "amount"}
    assert aside.set_index("source_row").loc[2, "reason"] == "duplicate_line"
    # customers are derived from the kept transactions
    assert sorted(prepared.tables["customers"]["customer_id"]) == ["1", "3"]


def test_misspelt_mapping_names_key_and_lists_columns(write_config, tmp_path):
    (tmp_path / "tx.csv").write_text("CustomerID,InvoiceNo,InvoiceDate,Amount\n1,A,2024-01-01,3\n")
    cfg = load_config(write_config({
        "name": "t", "as_of": "2024-06-30", "sources": {"transactions": {"path": "tx.csv"}},
        "columns": {"transactions": {"customer_id": "CustomerID", "order_id": "InvoiceNo", "timestamp": "InvoiceDat", "amount": "Amount"}},
    }))
    with pytest.raises(ConfigError) as err:
        io.read_source(cfg, "transactions")
    msg = str(err.value)
    assert "column 'InvoiceDat' not found" in msg and "Did you mean 'InvoiceDate'" in msg
    assert "columns.transactions.timestamp" in msg and "['CustomerID', 'InvoiceNo', 'InvoiceDate', 'Amount']" in msg


def test_cli_misspelt_mapping_fails_fast(write_config, tmp_path):
    """On the full Online Retail files: header-only check, so < 5 s including interpreter start."""
    data = shared_path("online_retail")
    path = write_config(
        (PROJECT_ROOT / "config" / "online_retail.yaml").read_text().replace("timestamp: InvoiceDate", "timestamp: InvoiceDat")
        .replace("{data_root}", str(data.parent))
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "analysis", "run", "--config", str(path), "--reports-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2
    assert "columns.transactions.timestamp" in proc.stderr and "InvoiceDate" in proc.stderr
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_wrong_encoding_suggests_fix(write_config, tmp_path):
    (tmp_path / "tx.csv").write_bytes("customer_id,order_id,timestamp,amount,product_name\n1,A,2024-01-01,3,caf\xe9\n".encode("cp1252"))
    cfg = load_config(write_config({"name": "t", "as_of": "2024-06-30", "sources": {"transactions": {"path": "tx.csv"}}}))
    with pytest.raises(ConfigError, match=r"cannot decode the file as utf-8.*sources\.transactions\.encoding"):
        io.read_source(cfg, "transactions")


def test_survey_out_of_range_blanked_and_reverse_flipped(write_config, tmp_path):
    (tmp_path / "c.csv").write_text("customer_id\n1\n2\n3\n")
    (tmp_path / "s.csv").write_text("customer_id,a,b\n1,5,1\n2,9,2\n3,,\n,1,1\n1,2,2\n")
    cfg = load_config(write_config({
        "name": "t", "as_of": "2024-06-30",
        "sources": {"customers": {"path": "c.csv"}, "survey": {"path": "s.csv"}},
        "survey": {"items": ["a", "b"], "reverse": ["b"]},
    }))
    prepared = contract.prepare(workspace.read_raw(cfg), cfg)
    survey = prepared.tables["survey"].set_index("customer_id")
    assert survey.loc["1", "b"] == 5 and pd.isna(survey.loc["2", "a"]) and survey.loc["2", "b"] == 4
    reasons = prepared.ledger.frame().query("table == 'survey'").set_index("reason")["rows"]
    assert reasons.to_dict() == {"": 2, "missing_customer_id": 1, "no_answers": 1, "duplicate_response": 1}


@pytest.mark.slow  # reads and validates the whole 541,909-line file
def test_online_retail_ledger_adds_up_to_every_line():
    """Full UCI Online Retail: 541,909 lines, cancellations and guest rows set aside by reason."""
    shared_path("online_retail")
    cfg = load_config(PROJECT_ROOT / "config" / "online_retail.yaml")
    prepared = contract.prepare(workspace.read_raw(cfg), cfg)
    totals = prepared.ledger.totals().set_index("table").loc["transactions"]
    assert totals["read"] == 541_909
    assert totals["kept"] + totals["set_aside"] == 541_909
    reasons = prepared.ledger.frame().set_index("reason")["rows"]
    assert reasons["missing_customer_id"] == 135_080  # SOURCE.md: 135,080 rows have no CustomerID
    assert reasons["cancellation"] > 8_000
    tx = prepared.tables["transactions"]
    assert tx["customer_id"].str.match(r"^\d+$").all()  # '17850.0' -> '17850'
    assert tx["customer_id"].nunique() == len(prepared.tables["customers"])
    assert len(prepared.set_aside["transactions"]) == totals["set_aside"]


def test_superstore_cp1252_and_cdnow_fixed_width():
    shared_path("superstore")
    shared_path("cdnow")
    ss = load_config(PROJECT_ROOT / "config" / "superstore.yaml")
    prepared = contract.prepare(workspace.read_raw(ss), ss)
    assert len(prepared.tables["transactions"]) == 9_994 and len(prepared.tables["customers"]) == 793
    assert prepared.tables["transactions"]["state"].nunique() == 49
    assert prepared.tables["customers"]["state"].notna().all()  # each customer's most frequent state
    cd = load_config(PROJECT_ROOT / "config" / "cdnow.yaml")
    prepared = contract.prepare(workspace.read_raw(cd), cd)
    assert prepared.ledger.totals().set_index("table").loc["transactions", "kept"] == 6_919
    assert prepared.tables["customers"]["customer_id"].nunique() == 2_357


def test_customer_location_is_one_consistent_address():
    tx = pd.DataFrame({
        "customer_id": ["a"] * 4,
        "order_id": ["1", "2", "3", "4"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
        "state": ["Texas", "Texas", "Ohio", "Ohio"],
        "city": ["Austin", "Austin", "Akron", "Dayton"],
        "customer_segment": ["Consumer", "Corporate", "Consumer", "Consumer"],
    })
    # column by column, Ohio (tie, alphabetical) and Austin would give an address that does not exist
    row = contract.customers_from_transactions(tx).iloc[0]
    assert (row["state"], row["city"]) == ("Texas", "Austin") and row["customer_segment"] == "Consumer"
    tie = tx.iloc[2:]
    assert contract.customers_from_transactions(tie).iloc[0]["city"] == "Dayton"  # tie -> most recent order


def test_pages_other_than_data_preparation_do_not_import_pandera():
    """Every page imports the contract (through workspace) in its own kernel; only data preparation
    validates, so only it pays for pandera (and for pyspark.pandas, which pandera imports when the
    spark extra is installed)."""
    probe = "import sys; from analysis import contract, workspace; print(sorted({m.split('.')[0] for m in sys.modules} & {'pandera', 'pyspark'}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
    assert sorted(contract.schemas()) == ["customers", "events", "survey", "transactions"]
    assert contract.schemas()["transactions"].columns["amount"].checks, "the validated amount keeps its check"
