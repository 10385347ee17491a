"""Bad-input battery: every case ends in a clear error or a completed data prep with a ledger.

Each case is a small data set (a valid base with one thing wrong) and an expected outcome:

* ``error``: the real CLI (``analysis check`` in process, or ``analysis run`` in a subprocess)
  exits 2 (check) or 1 (a run whose data prep stops), prints no traceback, and its message names
  the file, column or config key and says how to fix it; errors that only the data rows reveal
  are raised by the preparation itself (``via="prepare"``), where the CLI adds nothing. Nothing
  is left behind that looks like prepared data: no ledger, no run folder.
* ``kept``: ``analysis check`` passes (exit 0, nothing on stderr), then the data are prepared
  into a run folder; kept + set aside = rows in the input file
  for every table (counted without pandas, by each format's own reader), the set-aside rows are
  written to ``set_aside/<table>.csv`` with a reason, and the expected reasons are counted.

Inputs come as text, bytes, or a function that writes the file (Parquet, Excel, SPSS, Stata and R
files are made with their own libraries, so the battery tests the formats users bring).

A few cases also go through ``analysis run`` (data prep notebook, or the full pipeline for the
structural cases: one customer, identical customers, fewer customers than k).
"""

from __future__ import annotations

import copy
import csv
import gzip
import io as _io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from analysis import cli, contract, features, io, workspace
from analysis.config import ConfigError, load_config
from analysis.runner import discover_notebooks

from .conftest import PROJECT_ROOT, analysis_command, background_run, finish_process, start_process

# ------------------------------------------------------------------------------------------
# The valid base data set: 6 customers, 14 order lines in 2024, a 3-item survey.
# ------------------------------------------------------------------------------------------

CUSTOMERS = """customer_id,name,email,phone,age,gender,country,city
C001,Ann Lee,ann@example.com,555-0101,34,F,France,Paris
C002,Bob Ray,bob@example.com,555-0102,51,M,France,Lyon
C003,Cleo Park,cleo@example.com,555-0103,27,F,Spain,Madrid
C004,Dan Cole,dan@example.com,555-0104,45,M,Spain,Seville
C005,Eve Moss,eve@example.com,555-0105,62,F,Italy,Rome
C006,Finn Ash,finn@example.com,555-0106,38,M,Italy,Milan
"""

TRANSACTIONS = """customer_id,order_id,timestamp,product_id,product_name,category,quantity,amount
C001,O1,2024-01-05 10:00:00,P1,Linen shirt,Apparel,1,45.00
C001,O1,2024-01-05 10:00:00,P2,Canvas bag,Accessories,2,30.00
C001,O7,2024-06-10 12:30:00,P3,Wool scarf,Accessories,1,25.00
C002,O2,2024-02-11 09:15:00,P1,Linen shirt,Apparel,1,45.00
C002,O8,2024-07-01 16:45:00,P4,Trail shoes,Footwear,1,120.00
C003,O3,2024-03-02 14:00:00,P2,Canvas bag,Accessories,1,15.00
C003,O9,2024-08-19 11:20:00,P5,Rain jacket,Apparel,1,89.90
C004,O4,2024-03-20 18:05:00,P4,Trail shoes,Footwear,1,120.00
C004,O10,2024-09-03 10:10:00,P3,Wool scarf,Accessories,2,50.00
C005,O5,2024-04-14 13:30:00,P5,Rain jacket,Apparel,1,89.90
C005,O11,2024-10-22 15:00:00,P1,Linen shirt,Apparel,1,45.00
C006,O6,2024-05-08 17:40:00,P2,Canvas bag,Accessories,3,45.00
C006,O12,2024-11-30 19:00:00,P4,Trail shoes,Footwear,1,120.00
C006,O13,2024-12-15 08:00:00,P5,Rain jacket,Apparel,1,89.90
"""
TX_HEADER = TRANSACTIONS.splitlines()[0]

SURVEY = """customer_id,response_date,q1,q2,q3
C001,2024-11-01,4,2,5
C002,2024-11-02,3,3,3
C003,2024-11-02,5,1,4
"""

BASE_CONFIG: dict[str, Any] = {
    "name": "battery",
    "as_of": "2024-12-31",
    "seed": 7,
    "sources": {"customers": {"path": "customers.csv"}, "transactions": {"path": "transactions.csv"}},
}


def tx_lines(*lines: str) -> str:
    """Transactions file: the base header and the given lines."""
    return TX_HEADER + "\n" + "\n".join(lines) + "\n"


def with_lines(base: str, *lines: str) -> str:
    """A base file with extra data lines appended."""
    return base + "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input and its expected outcome.

    ``files`` replace base files (``None`` removes one); ``config`` is merged into the base config
    (``None`` deletes a key). ``outcome`` is ``"error"`` or ``"kept"``; ``via`` is ``"check"`` or
    ``"run"`` (the CLI) or ``"prepare"`` (in process). ``message``: regexes the error must match.
    ``ledger``: ``{(table, reason): rows}`` expected (``""`` = kept). ``extra``: further checks on
    the prepared tables.
    """

    id: str
    outcome: str
    files: dict[str, str | bytes | Callable[[Path], None] | None] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    via: str = "prepare"
    message: tuple[str, ...] = ()
    ledger: dict[tuple[str, str], int] = field(default_factory=dict)
    extra: Callable[[contract.Prepared, Path], None] | None = None
    #: YAML appended to the config as written (for what a dict cannot hold, e.g. a key given twice).
    config_suffix: str = ""
    #: For ``via="run"``: a pattern the failed data-prep page must show.
    page: str = ""
    #: For ``via="run"``: a run id the runner must refuse before it starts (exit 2, nothing written).
    run_id: str | None = None


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _float_ids(prepared: contract.Prepared, run_dir: Path) -> None:
    customers = prepared.tables["customers"]
    assert sorted(customers["customer_id"]) == ["17850", "17851"]
    assert customers.set_index("customer_id").loc["17850", "country"] == "France"  # joined across tables
    assert not any("seen only in transactions" in n["note"] for n in prepared.ledger.notes)


def _currency(prepared: contract.Prepared, run_dir: Path) -> None:
    amounts = prepared.tables["transactions"].set_index("order_id")["amount"]
    assert amounts["X1"] == pytest.approx(1234.50) and amounts["X2"] == pytest.approx(12.0)
    assert amounts["X3"] == pytest.approx(7.5)
    assert prepared.tables["returns"].set_index("order_id").loc["X4", "amount"] == pytest.approx(5.0)


def _mixed_dates(prepared: contract.Prepared, run_dir: Path) -> None:
    ts = prepared.tables["transactions"].set_index("order_id")["timestamp"]
    assert ts["M1"] == pd.Timestamp("2024-03-15") and ts["M2"] == pd.Timestamp("2024-03-16")
    assert ts["M3"] == pd.Timestamp("2024-03-17 14:30") and ts["M4"] == pd.Timestamp("2024-03-18")


def _returns(prepared: contract.Prepared, run_dir: Path) -> None:
    returns = prepared.tables["returns"]
    assert sorted(returns["reason"]) == ["cancellation", "cancellation", "return"]
    assert (returns["amount"] > 0).all() and (returns["quantity"] > 0).all()


def _one_customer(prepared: contract.Prepared, run_dir: Path) -> None:
    assert prepared.tables["customers"]["customer_id"].tolist() == ["C001"]


def _identical(prepared: contract.Prepared, run_dir: Path) -> None:
    tx = prepared.tables["transactions"]
    histories = [g.drop(columns=["customer_id", "order_id"]).reset_index(drop=True) for _, g in tx.groupby("customer_id")]
    assert len(histories) == 5 and all(h.equals(histories[0]) for h in histories)


def _all_nan_column(prepared: contract.Prepared, run_dir: Path) -> None:
    customers = prepared.tables["customers"]
    assert customers["gender"].isna().all() and len(customers) == 6
    cover = contract.coverage(customers).set_index("column")
    assert cover.loc["gender", "filled_pct"] == 0.0


LONG = "Ultra-" * 3000 + "long"


def _long_strings(prepared: contract.Prepared, run_dir: Path) -> None:
    tx = prepared.tables["transactions"]
    assert (tx["product_name"] == LONG).sum() == 1
    assert (prepared.tables["customers"]["city"] == LONG).sum() == 1


SCRIPT = "<script>alert(1)</script>"
HTML_NAME = 'Zoë <img src=x onerror="alert(2)"> & "Co"'


def _html_names(prepared: contract.Prepared, run_dir: Path) -> None:
    assert SCRIPT in set(prepared.tables["transactions"]["product_name"])
    assert "name" not in prepared.tables["customers"], "customer names are personal data: never kept (see analysis.privacy)"


def _likert(prepared: contract.Prepared, run_dir: Path) -> None:
    survey = prepared.tables["survey"].set_index("customer_id")
    assert survey.loc["C001"].tolist()[:3] == [4.0, 2.0, 5.0]
    assert survey.loc["C002", ["q1", "q2", "q3"]].isna().tolist() == [True, True, False]  # 0 and 6 blanked
    assert survey.loc["C003", ["q1", "q2"]].isna().all()  # 3.5 and "agree" blanked
    notes = {n["note"]: n["count"] for n in prepared.ledger.notes if n["table"] == "survey"}
    assert notes["answers outside 1..5, not whole numbers or not numbers blanked"] == 4


def _extra_columns(prepared: contract.Prepared, run_dir: Path) -> None:
    inputs = json.loads((run_dir / "facts" / "inputs.json").read_text())
    assert inputs["unmapped_columns"]["transactions"] == ["store_notes", "Unnamed: 9"] or \
        inputs["unmapped_columns"]["transactions"][0] == "store_notes"


def _bom(prepared: contract.Prepared, run_dir: Path) -> None:
    assert len(prepared.tables["customers"]) == 6
    assert prepared.mappings["transactions"]["customer_id"] == "CustomerID"


# ---- inputs in the formats users bring (made with each format's own library) ---------------


def _typed(text: str, sep: str = ",") -> pd.DataFrame:
    """A CSV text as a typed frame (numbers as numbers), as a binary format would store it."""
    return pd.read_csv(_io.StringIO(text), sep=sep)


def _bytes_of(write: Callable[[Any], None]) -> bytes:
    buffer = _io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def parquet_of(text: str) -> bytes:
    return _bytes_of(lambda buf: _typed(text).to_parquet(buf, index=False))


def xlsx_of(text: str, sheet: str = "Sheet1") -> bytes:
    return _bytes_of(lambda buf: _typed(text).to_excel(buf, index=False, sheet_name=sheet, engine="openpyxl"))


def gzip_of(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)


def zip_of(**members: str) -> bytes:
    def write(buf: Any) -> None:
        with zipfile.ZipFile(buf, "w") as archive:
            for name, text in members.items():
                archive.writestr(name, text)

    return _bytes_of(write)


def sav_writer(text: str, labels: dict[str, dict[float, str]]) -> Callable[[Path], None]:
    import pyreadstat

    return lambda path: pyreadstat.write_sav(_typed(text), str(path), variable_value_labels=labels)


def dta_writer(text: str) -> Callable[[Path], None]:
    import pyreadstat

    return lambda path: pyreadstat.write_dta(_typed(text).fillna(""), str(path))


def rds_writer(text: str) -> Callable[[Path], None]:
    import pyreadr

    return lambda path: pyreadr.write_rds(str(path), _typed(text), compress="gzip")


def rda_writer(text: str, name: str) -> Callable[[Path], None]:
    import pyreadr

    return lambda path: pyreadr.write_rdata(str(path), _typed(text), df_name=name, compress="gzip")


def folder_writer(path: Path) -> None:
    path.mkdir()
    (path / "transactions.csv").write_text(TRANSACTIONS, encoding="utf-8")


def _two_sheets(buffer: Any) -> None:
    with pd.ExcelWriter(buffer, engine="openpyxl") as workbook:
        _typed(CUSTOMERS).to_excel(workbook, sheet_name="Customers", index=False)
        pd.DataFrame({"note": ["exported 2024-12-31"]}).to_excel(workbook, sheet_name="Notes", index=False)


#: A bank's customer table (as in the UCI bank marketing data): no id column at all.
BANK = ("age,job,marital,poutcome,balance\n30,admin.,married,unknown,1787\n33,services,married,failure,4789\n"
        "35,management,single,failure,1350\n30,management,married,unknown,1476\n59,blue-collar,married,unknown,0\n"
        "35,management,single,success,747\n")
CUSTOMERS_NO_ID = re.sub(r"^[^,]*,", "", CUSTOMERS, flags=re.MULTILINE)
SURVEY_NO_ID = re.sub(r"^[^,]*,", "", SURVEY, flags=re.MULTILINE)
LIKERT = {1.0: "strongly disagree", 2.0: "disagree", 3.0: "neutral", 4.0: "agree", 5.0: "strongly agree"}
RESUME = "C001,R1,2024-02-01,P9,Résumé template,Stationery,1,12.00"


def _notes(prepared: contract.Prepared) -> dict[tuple[str, str], int]:
    return {(n["table"], n["note"]): n["count"] for n in prepared.ledger.notes}


def _has_note(prepared: contract.Prepared, table: str, pattern: str, count: int | None = None) -> None:
    hits = {note: n for (t, note), n in _notes(prepared).items() if t == table and re.search(pattern, note)}
    assert hits, f"no {table} note matching {pattern!r} in {_notes(prepared)}"
    if count is not None:
        assert sum(hits.values()) == count, hits


def _same_customers(prepared: contract.Prepared, run_dir: Path) -> None:
    customers = prepared.tables["customers"].set_index("customer_id")
    assert customers.loc["C001", "country"] == "France" and customers.loc["C006", "city"] == "Milan"
    assert customers["age"].tolist()[:2] == [34.0, 51.0]
    assert "name" not in customers and "email" not in customers, "personal data stay out, whatever the format"


def _same_transactions(prepared: contract.Prepared, run_dir: Path) -> None:
    tx = prepared.tables["transactions"]
    assert tx["amount"].sum() == pytest.approx(929.7)
    assert tx.set_index("order_id").loc["O4", "timestamp"] == pd.Timestamp("2024-03-20 18:05")


def _spss_survey(prepared: contract.Prepared, run_dir: Path) -> None:
    survey = prepared.tables["survey"].set_index("customer_id")
    assert survey.loc["C001", ["q1", "q2", "q3"]].tolist() == [4.0, 2.0, 5.0], "Likert items keep their codes, not labels"
    inputs = json.loads((run_dir / "facts" / "inputs.json").read_text())
    assert inputs["files"]["survey"][0]["format"] == "SPSS data file"


def _sheet_note(prepared: contract.Prepared, run_dir: Path) -> None:
    _same_customers(prepared, run_dir)
    _has_note(prepared, "customers", r"workbook has 2 sheets; read the first, 'Customers'")


def _utf16(prepared: contract.Prepared, run_dir: Path) -> None:
    _same_customers(prepared, run_dir)
    assert "Zoë" in set(prepared.tables["customers"]["city"])


def _bom_wins(prepared: contract.Prepared, run_dir: Path) -> None:
    assert "Résumé template" in set(prepared.tables["transactions"]["product_name"])
    _has_note(prepared, "transactions", r"UTF-8 byte-order mark, so it was read as UTF-8, not cp1252")


def _mojibake(prepared: contract.Prepared, run_dir: Path) -> None:
    assert "RÃ©sumÃ© template" in set(prepared.tables["transactions"]["product_name"]), "warned, not silently repaired"
    _has_note(prepared, "transactions", r"values in column 'product_name' look garbled \(UTF-8 text read as latin-1\); "
                                        r"set sources\.transactions\.encoding: utf-8", 1)
    _has_note(prepared, "transactions", r"is UTF-8 text but sources\.transactions\.encoding is latin-1")


def _utc(prepared: contract.Prepared, run_dir: Path) -> None:
    ts = prepared.tables["transactions"].set_index("order_id")["timestamp"]
    assert ts["U1"] == pd.Timestamp("2024-03-05 08:00") and ts["U2"] == pd.Timestamp("2024-03-05 10:00")
    assert ts["U3"] == pd.Timestamp("2024-03-05 15:30") and ts["O2"] == pd.Timestamp("2024-02-11 09:15")
    assert str(ts.dtype) == "datetime64[ns]"
    _has_note(prepared, "transactions", r"UTC offset converted to UTC", 3)


def _dayfirst(prepared: contract.Prepared, run_dir: Path) -> None:
    ts = prepared.tables["transactions"].set_index("order_id")["timestamp"]
    assert ts["A1"] == pd.Timestamp("2024-04-03") and ts["A2"] == pd.Timestamp("2024-04-13")


def _decimal_comma(prepared: contract.Prepared, run_dir: Path) -> None:
    tx = prepared.tables["transactions"].set_index("order_id")
    assert tx.loc["O5", "amount"] == pytest.approx(89.90) and tx.loc["D1", "amount"] == pytest.approx(1234.5)


def _implausible(prepared: contract.Prepared, run_dir: Path) -> None:
    tx = prepared.tables["transactions"]
    assert tx["amount"].sum() == pytest.approx(929.7), "revenue is finite and made of the base lines only"
    aside = prepared.set_aside["transactions"].set_index("order_id")["reason"]
    assert aside.to_dict() == {"I1": "implausible_amount", "I2": "implausible_amount", "I3": "unparseable_amount",
                               "I4": "implausible_amount", "I5": "implausible_amount"}


def _absurd_income(prepared: contract.Prepared, run_dir: Path) -> None:
    income = prepared.tables["customers"].set_index("customer_id")["income"]
    assert income.isna()[["C001", "C002", "C003"]].all() and income["C004"] == 52000
    _has_note(prepared, "customers", r"income: values not finite or implausibly large blanked", 3)


def _shares(prepared: contract.Prepared, max_categories: int = 12) -> pd.DataFrame:
    feats = features.customer_features(prepared.tables["transactions"], "2024-12-31", max_categories=max_categories)
    shares = feats.filter(regex="^share_")
    assert shares.columns.is_unique
    assert shares.sum(axis=1).to_numpy() == pytest.approx(1.0), "each customer's shares add up to 1"
    return shares


def _slug_collision(prepared: contract.Prepared, run_dir: Path) -> None:
    shares = _shares(prepared)
    assert shares.loc["C001", "share_home_and_garden"] == pytest.approx(40 / 140)
    assert shares.loc["C001", "share_home_garden"] == pytest.approx(0.0) and shares.loc["C002", "share_home_garden"] > 0
    assert shares.loc["C003", "share_home_garden_2"] > 0, "a third spelling gets a column of its own"


def _category_other(prepared: contract.Prepared, run_dir: Path) -> None:
    shares = _shares(prepared, max_categories=2)
    own = [c for c in shares.columns if c.startswith("share_other_")]
    assert len(own) == 2, f"'other' and 'Other' each keep a column beside the bucket: {list(shares.columns)}"
    assert shares.loc["C004", "share_other"] == pytest.approx(170 / 670), "the bucket holds only the small categories"
    assert shares.loc["C004", own].max() == pytest.approx(500 / 670), "the category 'other' is not merged into the bucket"
    assert shares.loc["C005", own].max() == pytest.approx(450 / (89.9 + 45 + 450))


def _single_purchases(prepared: contract.Prepared, run_dir: Path) -> None:
    tx = prepared.tables["transactions"]
    assert tx.groupby("customer_id")["order_id"].nunique().eq(1).all()


def _row_numbers(prepared: contract.Prepared, run_dir: Path) -> None:
    customers = prepared.tables["customers"]
    assert customers["customer_id"].tolist() == [f"row-{i}" for i in range(1, 7)]
    assert customers.set_index("customer_id").loc["row-3", "city"] == "Madrid"
    _has_note(prepared, "customers", r"no customer id column: rows numbered as ids row-1 to row-6", 6)


def _survey_row_numbers(prepared: contract.Prepared, run_dir: Path) -> None:
    survey = prepared.tables["survey"]
    assert survey["customer_id"].tolist() == ["response-1", "response-2", "response-3"]
    assert survey["q1"].tolist() == [4.0, 3.0, 5.0]


def _duplicate_unused(prepared: contract.Prepared, run_dir: Path) -> None:
    assert prepared.tables["transactions"]["amount"].sum() == pytest.approx(929.7)



FORMULA = '=HYPERLINK("https://evil.example/x","Click me")'


def _formula_neutralised(prepared: contract.Prepared, run_dir: Path) -> None:
    text = (run_dir / "set_aside" / "transactions.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK(" in text, "the set-aside row keeps the value, as text a spreadsheet will not run"
    cells = [cell for row in csv.reader(_io.StringIO(text)) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "@")) or (c.startswith("-") and not re.fullmatch(r"-[\d.]+", c))]


def _no_pii_written(prepared: contract.Prepared, run_dir: Path) -> None:
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    for path in written:
        raw = path.read_bytes()
        for secret in (b"@example.com", b"Ann Lee", b"Bob Ray", b"555-01", b"Rue de Rivoli"):
            assert secret not in raw, f"{path.relative_to(run_dir)} holds {secret!r}"
    aside = pd.read_csv(run_dir / "set_aside" / "customers.csv", dtype=str)
    assert list(aside["source_row"]) == ["7", "8"] and set(aside["reason"]) == {"duplicate_customer_id", "missing_customer_id"}


CASES: list[Case] = [
    # ---- errors: config and file level, caught by `analysis check` before any notebook -------
    Case("missing_file", "error", files={"transactions.csv": None}, via="check",
         message=(r"transactions\.csv: file not found", r"sources\.transactions\.path", r"Check the path")),
    Case("empty_file", "error", files={"transactions.csv": ""}, via="check",
         message=(r"transactions\.csv: the file is empty", r"sources\.transactions\.path", r"Export the transactions table again")),
    Case("header_only", "error", files={"transactions.csv": TX_HEADER + "\n"}, via="check",
         message=(r"transactions\.csv: the file has a header but no data rows", r"sources\.transactions\.path")),
    Case("missing_required_column", "error", via="check",
         files={"transactions.csv": re.sub(r"^([^,]*,[^,]*),[^,]*,", r"\1,", TRANSACTIONS, flags=re.MULTILINE)},
         message=(r"transactions\.csv: no 'timestamp' column", r"Found: \['customer_id', 'order_id', 'product_id'",
                  r"columns\.transactions\.timestamp")),
    Case("missing_amount_and_price", "error", via="check",
         files={"transactions.csv": re.sub(r",[^,]*$", "", TRANSACTIONS, flags=re.MULTILINE)},
         message=(r"no 'amount' or 'unit_price' column", r"columns\.transactions\.amount or columns\.transactions\.unit_price")),
    Case("misspelt_mapping", "error", via="check",
         files={"transactions.csv": TRANSACTIONS.replace("timestamp", "InvoiceDate", 1)},
         config={"columns": {"transactions": {"timestamp": "InvoiceDat"}}},
         message=(r"transactions\.csv: column 'InvoiceDat' not found\. Did you mean 'InvoiceDate'\?",
                  r"columns\.transactions\.timestamp")),
    Case("misspelt_contract_key", "error", via="check",
         config={"columns": {"transactions": {"timestmp": "timestamp"}}},
         message=(r"columns\.transactions\.timestmp", r"Did you mean 'timestamp'\?")),
    Case("misspelt_config_key", "error", via="check",
         config={"sources": {"transactions": {"seperator": ";"}}},
         message=(r"sources\.transactions\.seperator: unknown key \(did you mean 'sep'\?\)",)),
    Case("invalid_as_of", "error", via="check", config={"as_of": "2024-13-01"},
         message=(r"run\.yaml: invalid config", r"as_of: .*found '2024-13-01'; write dates as YYYY-MM-DD")),
    Case("wrong_separator", "error", via="check",
         files={"transactions.csv": TRANSACTIONS.replace(",", ";")},
         message=(r"transactions\.csv: the header was read as one column", r"looks ';'-separated",
                  r"Set sources\.transactions\.sep: ';'")),
    Case("tab_separated_with_comma_config", "error", via="check",
         files={"customers.csv": CUSTOMERS.replace(",", "\t")},
         message=(r"customers\.csv: .*looks '\\t'-separated", r"sources\.customers\.sep")),
    Case("non_utf8", "error", via="check",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,O20,2024-12-01,P9,Café crème,Food,1,4.50").encode("cp1252")},
         message=(r"transactions\.csv: cannot decode the file as utf-8\. Line 16 has byte 0xe9",
                  r"read as cp1252 it says: 'C001,O20,2024-12-01,P9,Café crème,Food,1,4\.50'", r"sources\.transactions\.encoding")),
    Case("unknown_encoding", "error", via="check",
         config={"sources": {"transactions": {"encoding": "utf-9"}}},
         message=(r"sources\.transactions\.encoding: unknown encoding 'utf-9'", r"run\.yaml")),
    Case("ragged_row", "error", via="prepare",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,O20,2024-12-01,P9,Scarf, wool,Accessories,1,4.50")},
         message=(r"transactions\.csv: cannot parse as csv with separator ','", r"line 16 has 9 fields where the lines before have 8",
                  r"sources\.transactions\.sep")),
    # ---- errors that only the rows reveal ------------------------------------------------------
    Case("as_of_before_any_transaction", "error", via="run", config={"as_of": "2020-01-01"}, page=r"as_of is 2020-01-01",
         message=(r"none of the 14 rows could be kept \(14 after_as_of\)", r"as_of is 2020-01-01, before every transaction",
                  r"run from 2024-01-05 to 2024-12-15", r"Set as_of in .*run\.yaml to 2024-12-15 or later")),
    Case("all_dates_unparseable", "error", via="prepare",
         files={"transactions.csv": re.sub(r"2024-(\d\d)-(\d\d) \S+", r"\2.\1.24 h", TRANSACTIONS)},
         message=(r"none of the 14 rows could be kept \(14 unparseable_timestamp\)", r"columns\.transactions\.timestamp",
                  r"sources\.transactions\.date_format")),
    # ---- completed with bad rows ledgered ------------------------------------------------------
    Case("extra_columns", "kept",
         files={"transactions.csv": TRANSACTIONS.replace(TX_HEADER, TX_HEADER + ",store_notes").replace("\n", ",n/a\n").replace(TX_HEADER + ",store_notes,n/a", TX_HEADER + ",store_notes")},
         ledger={("transactions", ""): 14}, extra=_extra_columns),
    Case("bom_and_mapping", "kept",
         files={"transactions.csv": ("\ufeff" + TRANSACTIONS.replace("customer_id", "CustomerID", 1)).encode("utf-8"),
                "customers.csv": ("\ufeff" + CUSTOMERS).encode("utf-8")},
         config={"columns": {"transactions": {"customer_id": "CustomerID"}}},
         ledger={("transactions", ""): 14, ("customers", ""): 6}, extra=_bom),
    Case("unparseable_dates", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,O20,yesterday,P1,Linen shirt,Apparel,1,45",
                                               "C002,O21,2024-02-30,P1,Linen shirt,Apparel,1,45", "C003,O22,,P1,Linen shirt,Apparel,1,45")},
         ledger={("transactions", ""): 14, ("transactions", "unparseable_timestamp"): 3}),
    Case("mixed_date_formats", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,M1,03/15/2024,P1,Linen shirt,Apparel,1,45",
                                               "C001,M2,16 Mar 2024,P1,Linen shirt,Apparel,1,45",
                                               "C001,M3,2024-03-17T14:30:00,P1,Linen shirt,Apparel,1,45",
                                               "C001,M4,20240318,P1,Linen shirt,Apparel,1,45")},
         ledger={("transactions", ""): 18}, extra=_mixed_dates),
    Case("future_dates", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,F1,2025-01-01 00:00:01,P1,Linen shirt,Apparel,1,45",
                                               "C002,F2,2031-06-01,P1,Linen shirt,Apparel,1,45",
                                               "C003,F3,2024-12-31 23:59:59,P1,Linen shirt,Apparel,1,45")},  # on as_of: kept
         ledger={("transactions", ""): 15, ("transactions", "after_as_of"): 2}),
    Case("dates_before_data_start", "kept", config={"min_date": "2000-01-01"},
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,E1,1970-01-01,P1,Linen shirt,Apparel,1,45",
                                               "C002,E2,1900-01-01,P1,Linen shirt,Apparel,1,45",
                                               "C003,E3,1999-12-31,P1,Linen shirt,Apparel,1,45")},
         ledger={("transactions", ""): 14, ("transactions", "before_min_date"): 3}),
    Case("negative_quantities_returns_cancellations", "kept", config={"sources": {"transactions": {"cancellation_prefix": "C"}}},
         files={"transactions.csv": with_lines(TRANSACTIONS.replace(",O", ",N"), "C001,N30,2024-02-01,P1,Linen shirt,Apparel,-1,-45",
                                               "C002,CN31,2024-03-01,P1,Linen shirt,Apparel,-1,-45",
                                               "C003,CN32,2024-03-01,P2,Canvas bag,Accessories,-2,-30")},
         ledger={("transactions", ""): 14, ("transactions", "return"): 1, ("transactions", "cancellation"): 2}, extra=_returns),
    Case("zero_and_negative_amounts", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,Z1,2024-02-01,P1,Linen shirt,Apparel,1,0",
                                               "C002,Z2,2024-02-01,P1,Linen shirt,Apparel,1,-3.50",
                                               "C003,Z3,2024-02-01,P1,Linen shirt,Apparel,0,45")},
         ledger={("transactions", ""): 14, ("transactions", "non_positive_amount"): 2, ("transactions", "return"): 1}),
    Case("currency_strings", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, 'C001,X1,2024-02-01,P1,Linen shirt,Apparel,1,"$1,234.50"',
                                               "C002,X2,2024-02-01,P1,Linen shirt,Apparel,1,€12.00",
                                               "C003,X3,2024-02-01,P1,Linen shirt,Apparel,1, £7.50 ",
                                               "C004,X4,2024-02-01,P1,Linen shirt,Apparel,1,(5.00)",
                                               "C005,X5,2024-02-01,P1,Linen shirt,Apparel,1,USD twelve")},
         ledger={("transactions", ""): 17, ("transactions", "return"): 1, ("transactions", "unparseable_amount"): 1}, extra=_currency),
    Case("duplicated_order_lines", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, *TRANSACTIONS.splitlines()[1:4], TRANSACTIONS.splitlines()[1])},
         ledger={("transactions", ""): 14, ("transactions", "duplicate_line"): 4}),
    Case("duplicated_customer_rows", "kept",
         files={"customers.csv": with_lines(CUSTOMERS, *CUSTOMERS.splitlines()[1:3], "C003,Other Cleo,,,,,,")},
         ledger={("customers", ""): 6, ("customers", "duplicate_customer_id"): 3}),
    Case("float_ids", "kept",
         files={"customers.csv": "customer_id,country\n17850.0,France\n17851,Spain\n",
                "transactions.csv": tx_lines("17850,O1,2024-01-05,P1,Linen shirt,Apparel,1,45", "17851.0,O2,2024-01-06,P1,Linen shirt,Apparel,1,45",
                                             "17850.00,O3,2024-02-05,P1,Linen shirt,Apparel,1,45")},
         ledger={("transactions", ""): 3, ("customers", ""): 2}, extra=_float_ids),
    Case("missing_ids", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, ",O40,2024-02-01,P1,Linen shirt,Apparel,1,45",
                                               "  ,O41,2024-02-01,P1,Linen shirt,Apparel,1,45", "NULL,O42,2024-02-01,P1,Linen shirt,Apparel,1,45",
                                               "C001,,2024-02-01,P1,Linen shirt,Apparel,1,45"),
                "customers.csv": with_lines(CUSTOMERS, ",Nobody,no@example.com,,,,,")},
         ledger={("transactions", ""): 14, ("transactions", "missing_customer_id"): 3, ("transactions", "missing_order_id"): 1,
                 ("customers", ""): 6, ("customers", "missing_customer_id"): 1}),
    Case("one_customer_only", "kept",
         files={"customers.csv": CUSTOMERS.split("\n", 2)[0] + "\n" + CUSTOMERS.split("\n", 2)[1] + "\n",
                "transactions.csv": tx_lines(*[ln for ln in TRANSACTIONS.splitlines()[1:] if ln.startswith("C001")])},
         ledger={("transactions", ""): 3, ("customers", ""): 1}, extra=_one_customer),
    Case("all_customers_identical", "kept", files={
        "customers.csv": "customer_id,age,gender,country\n" + "".join(f"K{i},40,F,France\n" for i in range(5)),
        "transactions.csv": tx_lines(*[f"K{i},O{i}{j},2024-0{j + 1}-01,P1,Linen shirt,Apparel,1,45" for i in range(5) for j in range(2)])},
        ledger={("transactions", ""): 10, ("customers", ""): 5}, extra=_identical),
    Case("fewer_customers_than_k", "kept", config={"params": {"13_behavioral": {"k": 5}}},
         files={"customers.csv": CUSTOMERS.split("C004")[0],
                "transactions.csv": tx_lines(*[ln for ln in TRANSACTIONS.splitlines()[1:] if ln[:4] in ("C001", "C002", "C003")])},
         ledger={("transactions", ""): 7, ("customers", ""): 3}),
    Case("all_nan_categorical", "kept",
         files={"customers.csv": re.sub(r"^(([^,]*,){5})[^,]*,", r"\1,", CUSTOMERS, flags=re.MULTILINE).replace(",,country", ",gender,country")},
         ledger={("customers", ""): 6}, extra=_all_nan_column),
    Case("very_long_strings", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, f"C001,L1,2024-02-01,P9,{LONG},Apparel,1,45"),
                "customers.csv": CUSTOMERS.replace("Paris", LONG)},
         ledger={("transactions", ""): 15, ("customers", ""): 6}, extra=_long_strings),
    Case("html_in_names", "kept",
         files={"transactions.csv": with_lines(TRANSACTIONS, f"C001,H1,2024-02-01,P9,{SCRIPT},Apparel,1,45"),
                "customers.csv": CUSTOMERS.replace("Ann Lee", '"' + HTML_NAME.replace('"', '""') + '"')},
         ledger={("transactions", ""): 15, ("customers", ""): 6}, extra=_html_names),
    Case("survey_likert_out_of_range", "kept",
         config={"sources": {"survey": {"path": "survey.csv"}}, "survey": {"items": ["q1", "q2", "q3"], "likert_min": 1, "likert_max": 5}},
         files={"survey.csv": "customer_id,response_date,q1,q2,q3\nC001,2024-11-01,4,2,5\nC002,2024-11-02,0,6,3\n"
                              "C003,2024-11-02,3.5,agree,4\nC004,2024-11-03,9,-1,7\nC005,2024-11-03,,,\nC001,2024-11-05,1,1,1\n"},
         ledger={("survey", ""): 3, ("survey", "no_answers"): 2, ("survey", "duplicate_response"): 1}, extra=_likert),
    # ==== item 5: every input error is one sentence, before any notebook ========================
    Case("directory_as_path", "error", via="check", files={"orders": folder_writer},
         config={"sources": {"transactions": {"path": "orders"}}},
         message=(r"orders: is a folder, not a file", r"sources\.transactions\.path", r"glob such as '.*orders/\*\.csv'")),
    Case("truncated_gzip", "error", via="check", files={"transactions.csv.gz": gzip_of(TRANSACTIONS * 20)[:300]},
         config={"sources": {"transactions": {"path": "transactions.csv.gz"}}},
         message=(r"transactions\.csv\.gz: the gzip data are truncated or damaged", r"Copy or export the file again",
                  r"sources\.transactions\.path")),
    Case("corrupt_gzip", "error", via="check", files={"transactions.csv.gz": b"\x1f\x8b\x08\x00" + b"not gzip at all" * 20},
         config={"sources": {"transactions": {"path": "transactions.csv.gz"}}},
         message=(r"transactions\.csv\.gz: the gzip data are truncated or damaged",)),
    Case("invalid_date_format", "error", via="check", config={"sources": {"transactions": {"date_format": "%Y-%m-%Q"}}},
         message=(r"sources\.transactions\.date_format: '%Q' in '%Y-%m-%Q' is not a date code", r"e\.g\. '%d/%m/%Y %H:%M'")),
    Case("date_format_without_date", "error", via="check", config={"sources": {"customers": {"date_format": "%H:%M"}}},
         message=(r"sources\.customers\.date_format: '%H:%M' has no day, month or year code",)),
    Case("invalid_decimal_setting", "error", via="check", config={"sources": {"transactions": {"decimal": ";"}}},
         message=(r"sources\.transactions\.decimal: .*'\.' or ','", r"found ';'")),
    Case("unknown_notebook_parameter", "error", via="check", config={"params": {"13_behavioral": {"kk": 3}}},
         message=(r"params\.13_behavioral\.kk: 13_behavioral has no parameter 'kk'", r"Did you mean 'k'")),
    Case("empty_separator", "error", via="check", config={"sources": {"transactions": {"sep": ""}}},
         message=(r"sources\.transactions\.sep: '' cannot separate columns; use e\.g\. ','",)),
    Case("multi_character_separator", "kept", config={"sources": {"transactions": {"sep": "||"}}},
         files={"transactions.csv": TRANSACTIONS.replace(",", "||")}, ledger={("transactions", ""): 14}, extra=_same_transactions),
    Case("duplicate_yaml_key", "error", via="check", config_suffix="sources:\n  customers:\n    path: customers.csv\n",
         message=(r"run\.yaml: line \d+: duplicate key 'sources'", r"Remove one of them")),
    # ==== item 6: formats by content ==============================================================
    Case("text_under_format_parquet", "error", via="check", config={"sources": {"transactions": {"format": "parquet"}}},
         message=(r"transactions\.csv: sources\.transactions\.format is 'parquet', but the file is text \(it starts 'customer_id,order_id",
                  r"Set sources\.transactions\.format: csv")),
    Case("damaged_parquet", "error", via="check", files={"transactions.parquet": b"PAR1" + b"\x00\x17garbage" * 50},
         config={"sources": {"transactions": {"path": "transactions.parquet"}}},
         message=(r"transactions\.parquet: cannot read it as a Parquet", r"Export the transactions table again, or as CSV")),
    Case("binary_file", "error", via="check", files={"transactions.csv": bytes(range(256)) * 8},
         message=(r"transactions\.csv: cannot read this file: it looks like a binary file", (r"Clientele reads CSV .*Parquet, Excel \.xlsx, "
                  r"SPSS \.sav, Stata \.dta and R \.rds/\.rda"))),
    Case("old_excel_xls", "error", via="check", files={"customers.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)},
         config={"sources": {"customers": {"path": "customers.xls"}}},
         message=(r"customers\.xls: cannot read this file: it looks like an Excel 97-2003 workbook \(\.xls\)", r"save it as \.xlsx or CSV")),
    Case("zip_of_two_files", "error", via="check",
         files={"exports.zip": zip_of(**{"transactions.csv": TRANSACTIONS, "customers.csv": CUSTOMERS})},
         config={"sources": {"transactions": {"path": "exports.zip"}}},
         message=(r"exports\.zip: .*a zip archive of 2 files; unpack it",)),
    Case("utf16_without_bom", "error", via="check", files={"customers.csv": CUSTOMERS.encode("utf-16-le")},
         message=(r"customers\.csv: the file looks like UTF-16 text without a byte-order mark", r"Set sources\.customers\.encoding: utf-16-le")),
    Case("utf16_setting_on_utf8_file", "error", via="check", config={"sources": {"customers": {"encoding": "utf-16"}}},
         message=(r"customers\.csv: sources\.customers\.encoding is utf-16, but the file does not start with a UTF-16 byte-order mark",
                  r"Set sources\.customers\.encoding: utf-8")),
    Case("excel_sheet_missing", "error", via="check", files={"customers.xlsx": xlsx_of(CUSTOMERS), "customers.csv": None},
         config={"sources": {"customers": {"path": "customers.xlsx", "sheet": "Clients"}}},
         message=(r"customers\.xlsx: no sheet 'Clients'; the workbook has \['Sheet1'\]", r"Set sources\.customers\.sheet")),
    Case("r_object_missing", "error", via="check", files={"customers.rda": rda_writer(CUSTOMERS, "clients"), "customers.csv": None},
         config={"sources": {"customers": {"path": "customers.rda", "r_object": "customers"}}},
         message=(r"customers\.rda: no R object 'customers'; the file holds \['clients'\]", r"sources\.customers\.r_object")),
    Case("parquet_named_csv", "kept", files={"transactions.csv": parquet_of(TRANSACTIONS)},
         ledger={("transactions", ""): 14}, extra=_same_transactions),
    Case("parquet_without_format", "kept", files={"transactions.parquet": parquet_of(TRANSACTIONS), "transactions.csv": None},
         config={"sources": {"transactions": {"path": "transactions.parquet"}}}, ledger={("transactions", ""): 14}, extra=_same_transactions),
    Case("gzip_named_csv", "kept", files={"transactions.csv": gzip_of(TRANSACTIONS)},
         ledger={("transactions", ""): 14}, extra=_same_transactions),
    Case("zip_of_one_csv", "kept", files={"transactions.zip": zip_of(**{"orders.csv": TRANSACTIONS}), "transactions.csv": None},
         config={"sources": {"transactions": {"path": "transactions.zip"}}}, ledger={("transactions", ""): 14}, extra=_same_transactions),
    Case("excel_xlsx", "kept", files={"customers.xlsx": xlsx_of(CUSTOMERS), "customers.csv": None},
         config={"sources": {"customers": {"path": "customers.xlsx"}}}, ledger={("customers", ""): 6}, extra=_same_customers),
    Case("excel_two_sheets", "kept", config={"sources": {"customers": {"path": "customers.xlsx"}}}, ledger={("customers", ""): 6},
         files={"customers.csv": None, "customers.xlsx": _bytes_of(lambda buf: _two_sheets(buf))}, extra=_sheet_note),
    Case("spss_sav_survey", "kept", files={"survey.sav": sav_writer(SURVEY + "C004,2024-11-03,,,\n", {"q1": LIKERT, "q2": LIKERT, "q3": LIKERT})},
         config={"sources": {"survey": {"path": "survey.sav"}}, "survey": {"items": ["q1", "q2", "q3"]}},
         ledger={("survey", ""): 3, ("survey", "no_answers"): 1}, extra=_spss_survey),
    Case("stata_dta", "kept", files={"customers.dta": dta_writer(CUSTOMERS), "customers.csv": None},
         config={"sources": {"customers": {"path": "customers.dta"}}}, ledger={("customers", ""): 6}, extra=_same_customers),
    Case("r_rds", "kept", files={"customers.rds": rds_writer(CUSTOMERS), "customers.csv": None},
         config={"sources": {"customers": {"path": "customers.rds"}}}, ledger={("customers", ""): 6}, extra=_same_customers),
    Case("r_rda", "kept", files={"customers.rda": rda_writer(CUSTOMERS, "customers"), "customers.csv": None},
         config={"sources": {"customers": {"path": "customers.rda"}}}, ledger={("customers", ""): 6}, extra=_same_customers),
    Case("utf16_with_bom", "kept", files={"customers.csv": CUSTOMERS.replace("Paris", "Zoë").encode("utf-16")},
         ledger={("customers", ""): 6}, extra=_utf16),
    Case("utf8_bom_under_cp1252", "kept", config={"sources": {"transactions": {"encoding": "cp1252"}}},
         files={"transactions.csv": ("\ufeff" + with_lines(TRANSACTIONS, RESUME)).encode("utf-8")},
         ledger={("transactions", ""): 15}, extra=_bom_wins),
    Case("mojibake_warning", "kept", config={"sources": {"transactions": {"encoding": "latin-1"}}},
         files={"transactions.csv": with_lines(TRANSACTIONS, RESUME)}, ledger={("transactions", ""): 15}, extra=_mojibake),
    # ==== item 7: values ==========================================================================
    Case("non_finite_amounts", "kept", ledger={("transactions", ""): 14, ("transactions", "implausible_amount"): 4,
                                               ("transactions", "unparseable_amount"): 1}, extra=_implausible,
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,I1,2024-02-01,P1,Linen shirt,Apparel,1,inf",
                                               "C002,I2,2024-02-01,P1,Linen shirt,Apparel,1,1e308",
                                               "C003,I3,2024-02-01,P1,Linen shirt,Apparel,1,NaN",
                                               "C004,I4,2024-02-01,P1,Linen shirt,Apparel,1,-inf",
                                               "C005,I5,2024-02-01,P1,Linen shirt,Apparel,1e12,45")}),
    Case("absurd_customer_income", "kept", ledger={("customers", ""): 6}, extra=_absurd_income,
         files={"customers.csv": "customer_id,income,country\nC001,inf,France\nC002,1e308,France\nC003,-1e300,Spain\n"
                                 "C004,52000,Spain\nC005,,Italy\nC006,61000,Italy\n"}),
    Case("utc_offsets", "kept", ledger={("transactions", ""): 17}, extra=_utc,
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,U1,2024-03-05T10:00:00+02:00,P1,Linen shirt,Apparel,1,45",
                                               "C002,U2,2024-03-05T10:00:00Z,P1,Linen shirt,Apparel,1,45",
                                               "C003,U3,2024-03-05 10:00:00-05:30,P1,Linen shirt,Apparel,1,45")}),
    Case("ambiguous_day_month", "error", via="check",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,A1,03/04/2024,P1,Linen shirt,Apparel,1,45",
                                               "C002,A2,13/04/2024,P1,Linen shirt,Apparel,1,45")},
         message=((r"transactions\.csv: column 'timestamp' has '03/04/2024', which is 3 April 2024 read day-first or 4 March 2024 "
                  r"read month-first, and '13/04/2024', which can only be day-first"),
                  r"Set sources\.transactions\.date_format .*'%d/%m/%Y'.*or sources\.transactions\.dayfirst")),
    Case("ambiguous_day_month_through_run", "error", via="run", page=r"4 March 2024 read month-first",
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,A1,03/04/2024,P1,Linen shirt,Apparel,1,45",
                                               "C002,A2,13/04/2024,P1,Linen shirt,Apparel,1,45")},
         message=(r"00_data_prep .*: ConfigError: transactions\.csv: column 'timestamp' has '03/04/2024'",)),
    Case("only_ambiguous_dates", "error", via="check",
         files={"customers.csv": "customer_id,signup_date\nC001,03/04/2024\nC002,05/06/2023\n"},
         message=(r"customers\.csv: column 'signup_date' has '03/04/2024'.*and no date in the column settles which",
                  r"sources\.customers\.date_format")),
    Case("dayfirst_settles_ambiguous_dates", "kept", config={"sources": {"transactions": {"dayfirst": True}}},
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,A1,03/04/2024,P1,Linen shirt,Apparel,1,45",
                                               "C002,A2,13/04/2024,P1,Linen shirt,Apparel,1,45")},
         ledger={("transactions", ""): 16}, extra=_dayfirst),
    Case("decimal_comma_on_dot_data", "error", via="check", config={"sources": {"transactions": {"decimal": ","}}},
         message=(r"transactions\.csv: column 'amount' is written with '\.' as the decimal mark \('45\.00'\), which decimal ',' reads as 4500",
                  r"Set sources\.transactions\.decimal: '\.'")),
    Case("decimal_dot_on_comma_data", "error", via="check", config={"sources": {"transactions": {"sep": ";"}}},
         files={"transactions.csv": TRANSACTIONS.replace(",", ";").replace(".", ",")},
         message=(r"transactions\.csv: column 'amount' is written with ',' as the decimal mark \('45,00'\), which decimal '\.' reads as 4500",
                  r"Set sources\.transactions\.decimal: ','")),
    Case("decimal_comma_as_configured", "kept", config={"sources": {"transactions": {"sep": ";", "decimal": ","}}},
         files={"transactions.csv": with_lines(TRANSACTIONS.replace(",", ";").replace(".", ","), "C001;D1;2024-02-01;P1;Linen shirt;Apparel;1;1.234,50")},
         ledger={("transactions", ""): 15}, extra=_decimal_comma),
    Case("category_slug_collision", "kept", ledger={("transactions", ""): 17}, extra=_slug_collision,
         files={"transactions.csv": with_lines(TRANSACTIONS, "C001,G1,2024-02-01,P7,Rake,Home & Garden,1,40",
                                               "C002,G2,2024-02-01,P8,Hose,Home Garden,1,30",
                                               "C003,G3,2024-02-01,P9,Pots,Home-Garden,1,20")}),
    Case("category_named_other", "kept", ledger={("transactions", ""): 16}, extra=_category_other,
         files={"transactions.csv": with_lines(TRANSACTIONS, "C004,H1,2024-02-01,P7,Gift card,other,1,500",
                                               "C005,H2,2024-02-01,P8,Gift card,Other,1,450")}),
    Case("single_purchase_customers", "kept", ledger={("transactions", ""): 7}, extra=_single_purchases,
         files={"transactions.csv": tx_lines(*[ln for ln in TRANSACTIONS.splitlines()[1:] if ln.split(",")[1] in ("O1", "O2", "O3", "O4", "O5", "O6")])}),
    Case("duplicate_header", "error", via="check",
         files={"transactions.csv": TRANSACTIONS.replace(TX_HEADER, TX_HEADER + ",amount").replace("\n", ",1.00\n")
                .replace(TX_HEADER + ",amount,1.00", TX_HEADER + ",amount")},
         message=(r"transactions\.csv: 2 columns are named 'amount' \(columns 8, 9\)", (r"Rename all but one .*or name every column with "
                  r"sources\.transactions\.names"))),
    Case("duplicate_unused_header", "kept", ledger={("transactions", ""): 14}, extra=_duplicate_unused,
         files={"transactions.csv": TRANSACTIONS.replace(TX_HEADER, TX_HEADER + ",note,note").replace("\n", ",a,b\n")
                .replace(TX_HEADER + ",note,note,a,b", TX_HEADER + ",note,note")}),
    # ==== item 9 (remainder): survey keys ==========================================================
    Case("survey_scale_unknown_item", "error", via="check",
         config={"sources": {"survey": {"path": "survey.csv"}}, "survey": {"items": ["q1", "q2", "q3"], "scales": {"mood": ["q1", "q9"]}}},
         message=(r"survey\.scales\.mood lists \['q9'\], which are not in survey\.items \['q1', 'q2', 'q3'\]",)),
    Case("survey_without_items", "error", via="check", config={"sources": {"survey": {"path": "survey.csv"}}},
         message=(r"run\.yaml: sources\.survey is given but survey\.items is empty", r"List the Likert item columns under survey\.items")),
    # ==== item 8: tables without an id =============================================================
    Case("customers_numbered_by_row", "kept", files={"customers.csv": CUSTOMERS_NO_ID, "transactions.csv": None},
         config={"sources": {"customers": {"customer_id_from": "row_number"}, "transactions": None}},
         ledger={("customers", ""): 6}, extra=_row_numbers),
    Case("survey_numbered_by_row", "kept", files={"survey.csv": SURVEY_NO_ID},
         config={"sources": {"survey": {"path": "survey.csv", "customer_id_from": "row_number"}}, "survey": {"items": ["q1", "q2", "q3"]}},
         ledger={("survey", ""): 3}, extra=_survey_row_numbers),
    Case("no_id_guess_only_id_like", "error", via="check", files={"customers.csv": BANK, "transactions.csv": None},
         config={"sources": {"transactions": None}},
         message=(r"customers\.csv: no customer id column \(no column looks like one", r"customer_id_from: row_number")),
    Case("no_id_survey_of_genres", "error", via="check",
         files={"survey.csv": "Comedy,Drama,Horror\n4,2,5\n3,3,3\n5,1,4\n4,2,5\n"},
         config={"sources": {"survey": {"path": "survey.csv"}}, "survey": {"items": ["Comedy", "Drama", "Horror"]}},
         message=(r"survey\.csv: no customer id column \(no column looks like one", r"sources\.survey\.customer_id_from: row_number")),
    Case("no_id_guess_names_the_id", "error", via="check",
         files={"transactions.csv": TRANSACTIONS.replace("customer_id", "ClientNo", 1)},
         message=(r"transactions\.csv: no customer id column \(perhaps 'ClientNo'\)", r"columns\.transactions\.customer_id")),
    Case("row_numbers_on_transactions", "error", via="check", config={"sources": {"transactions": {"customer_id_from": "row_number"}}},
         message=(r"sources\.transactions\.customer_id_from: row numbers can stand in for the id of a customer or survey table only",)),
    Case("row_numbered_customers_with_transactions", "error", via="check", config={"sources": {"customers": {"customer_id_from": "row_number"}}},
         message=(r"sources\.customers\.customer_id_from is row_number, but the transactions name customers by their own ids",)),
    # ==== items 1, 2 and 4 in the battery's style: personal data, formulas, run ids =================
    Case("pii_in_set_aside_rows", "kept", extra=_no_pii_written,
         files={"customers.csv": with_lines(CUSTOMERS.replace(",city\n", ",city,Email Address,street\n", 1).replace("\n", ",x@example.com,Rue de Rivoli 1\n")
                                            .replace(",city,Email Address,street,x@example.com,Rue de Rivoli 1", ",city,Email Address,street"),
                                            "C001,Ann Lee,ann@example.com,555-0101,34,F,France,Paris,ann2@example.com,Rue de Rivoli 2",
                                            ",Bob Ray,bob@example.com,555-0102,51,M,France,Lyon,bob2@example.com,Rue de Rivoli 3")},
         ledger={("customers", ""): 6, ("customers", "duplicate_customer_id"): 1, ("customers", "missing_customer_id"): 1}),
    Case("formula_in_a_set_aside_row", "kept", extra=_formula_neutralised,
         files={"transactions.csv": with_lines(TRANSACTIONS, f'C001,F1,2024-02-01,P9,"{FORMULA.replace(chr(34), chr(34) * 2)}",@SUM(A1),1,lots')},
         ledger={("transactions", ""): 14, ("transactions", "unparseable_amount"): 1}),
    Case("run_id_latest", "error", via="run", run_id="latest",
         message=(r"--run-id 'latest' is reserved: reports/latest always points at the newest complete run",)),
    Case("run_id_with_a_line_break", "error", via="run", run_id="nightly\n",
         message=(r"--run-id 'nightly\\n' contains a control character \(a line break, U\+000A\)",)),
]

CASES_BY_ID = {case.id: case for case in CASES}
assert len(CASES_BY_ID) == len(CASES) >= 60


def _materialise(case: Case, folder: Path) -> Path:
    """Write the case's files and config into ``folder``; return the config path."""
    files: dict[str, Any] = {"customers.csv": CUSTOMERS, "transactions.csv": TRANSACTIONS, "survey.csv": SURVEY}
    files.update(case.files)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is None:
            continue
        path = folder / name
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    cfg = _merge(BASE_CONFIG, case.config)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True) + case.config_suffix, encoding="utf-8")
    return path


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=timeout, check=False)


def _data_rows(cfg: Any, table: str) -> int:
    """Rows in a raw source, counted independently of pandas: text with the csv module (quoted
    newlines allowed), other formats from their own file metadata."""
    path = cfg.resolve_path(table)
    kind = io.sniff(path)
    if kind.kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if kind.kind == "excel":
        import openpyxl

        return openpyxl.load_workbook(path, read_only=True).worksheets[0].max_row - 1
    if kind.kind in ("spss", "stata"):
        import pyreadstat

        reader = pyreadstat.read_sav if kind.kind == "spss" else pyreadstat.read_dta
        return reader(path, metadataonly=True)[1].number_rows
    if kind.kind in ("rds", "rdata"):
        import pyreadr

        return len(next(iter(pyreadr.read_r(path).values())))
    raw = Path(path).read_bytes()
    if kind.compression == "gzip":
        raw = gzip.decompress(raw)
    elif kind.compression == "zip":
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(archive.namelist()[0])
    text = raw.decode(io.reading_encoding(cfg, table, path)).removeprefix("\ufeff")
    sep = cfg.sources[table].sep
    rows = list(csv.reader(_io.StringIO(text), delimiter=sep)) if len(sep) == 1 else [ln.split(sep) for ln in text.splitlines()]
    return sum(1 for row in rows[1:] if row)


def assert_nothing_lost(config_path: Path, run_dir: Path, ledger: dict[str, Any]) -> None:
    """kept + set aside = rows in the input file, per table; set-aside rows on disk with reasons."""
    cfg = load_config(config_path)
    totals = {t["table"]: t for t in ledger["totals"]}
    assert set(totals) == set(cfg.sources), "every source table is in the ledger"
    for table in cfg.sources:
        t = totals[table]
        assert t["kept"] + t["set_aside"] == t["read"] == _data_rows(cfg, table), table
        aside_file = run_dir / "set_aside" / f"{table}.csv"
        assert aside_file.exists(), f"set_aside/{table}.csv is written even when empty"
        aside = pd.read_csv(aside_file, dtype=str, keep_default_na=False)
        assert len(aside) == t["set_aside"]
        assert list(aside.columns[:2]) == ["source_row", "reason"]
        assert (aside["reason"] != "").all()
        by_reason = aside["reason"].value_counts().to_dict()
        ledgered = {r["reason"]: r["rows"] for r in ledger["rows"] if r["table"] == table and r["outcome"] == "set aside"}
        assert by_reason == ledgered


def _files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def assert_one_clear_error(message: str, patterns: tuple[str, ...]) -> None:
    """The message is the CLI's sentence(s): no traceback, no library frames, and every pattern."""
    assert "Traceback" not in message and not re.search(r'File ".*", line \d+', message), message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in:\n{message}"


@pytest.mark.parametrize("case", [
    # a case that runs the data-prep notebook to its failure page executes a notebook: slow
    pytest.param(c, marks=pytest.mark.slow) if c.via == "run" and c.run_id is None else c for c in CASES
], ids=lambda c: c.id)
def test_bad_input(case: Case, tmp_path: Path, capsys) -> None:
    config_path = _materialise(case, tmp_path / "data")
    before = _files_in(tmp_path)
    if case.outcome == "error":
        if case.via == "check":
            code = cli.main(["check", "--config", str(config_path)])
            out = capsys.readouterr()
            assert code == 2, out.out + out.err
            message = out.err
            assert message.startswith("error: "), message
            assert _files_in(tmp_path) == before, "check writes nothing"
        elif case.via == "run" and case.run_id is not None:
            reports = tmp_path / "reports"
            proc = _cli("run", "--config", str(config_path), "--run-id", case.run_id, "--only", "00_data_prep", "--reports-dir", str(reports))
            assert proc.returncode == 2, proc.stdout + proc.stderr
            message = proc.stderr
            assert not reports.exists() or not any(p.name != ".staging" for p in reports.iterdir()), "a refused run writes nothing"
        elif case.via == "run":
            reports = tmp_path / "reports"
            proc = _cli("run", "--config", str(config_path), "--run-id", case.id, "--only", "00_data_prep", "--reports-dir", str(reports))
            assert proc.returncode == 1, proc.stdout + proc.stderr
            message = proc.stderr
            run_dir = reports / case.id
            manifest = json.loads((run_dir / "manifest.json").read_text())
            assert manifest["status"] == "failed"
            assert manifest["ledger"] is None and not (run_dir / "data" / "ledger.json").exists(), "no ledger for data never prepared"
            assert not (reports / "latest").exists(), "a failed run never becomes reports/latest"
            html = (run_dir / "00_data_prep.html").read_text(encoding="utf-8")
            assert re.search(case.page, html), "the error is on the page too"
            assert "Traceback" not in html and "ConfigError" not in html, "the page shows the sentence, not a traceback"
        else:
            folder = io.RunFolder(tmp_path / "run")
            with pytest.raises(ConfigError) as err:
                workspace.prepare_run(load_config(config_path), folder)
            message = str(err.value)
            assert not folder.has_tables(), "no ledger marks half-prepared tables as complete"
        assert_one_clear_error(message, case.message)
        return

    # usable data pass `analysis check` (exit 0, nothing on stderr: remarks are warnings on stdout)
    code = cli.main(["check", "--config", str(config_path)])
    out = capsys.readouterr()
    assert code == 0 and out.err == "", out.out + out.err
    cfg = load_config(config_path)
    run_dir = tmp_path / "run"
    folder = io.RunFolder(run_dir)
    prepared = workspace.prepare_run(cfg, folder)
    ledger = folder.read_json("data", "ledger")
    assert_nothing_lost(config_path, run_dir, ledger)
    counts = {(r["table"], r["reason"]): r["rows"] for r in ledger["rows"]}
    for key, rows in case.ledger.items():
        assert counts.get(key) == rows, f"{key}: expected {rows}, ledger {counts}"
    unexpected = {k: v for k, v in counts.items() if k[1] and k not in case.ledger}
    assert not unexpected, f"rows set aside for reasons the case does not expect: {unexpected}"
    if case.extra:
        case.extra(prepared, run_dir)


def test_set_aside_rows_point_back_to_their_source_lines(tmp_path: Path) -> None:
    """``source_row`` is the 1-based data line, so a user can find and fix the row in the file."""
    case = CASES_BY_ID["zero_and_negative_amounts"]
    config_path = _materialise(case, tmp_path)
    cfg = load_config(config_path)
    prepared = workspace.prepare_run(cfg, io.RunFolder(tmp_path / "run"))
    aside = prepared.set_aside["transactions"].set_index("order_id")
    lines = (tmp_path / "transactions.csv").read_text().splitlines()
    for order_id in ("Z1", "Z2", "Z3"):
        assert lines[int(aside.loc[order_id, "source_row"])].split(",")[1] == order_id


def test_check_is_fast_and_creates_no_run_folder(tmp_path: Path) -> None:
    """A config error is reported by `analysis run` before any notebook starts (exit 2, no folders)."""
    config_path = _materialise(CASES_BY_ID["wrong_separator"], tmp_path / "data")
    proc = _cli("run", "--config", str(config_path), "--reports-dir", str(tmp_path / "reports"), timeout=60)
    assert proc.returncode == 2 and "looks ';'-separated" in proc.stderr
    assert "running" not in proc.stdout
    assert not (tmp_path / "reports").exists()


# ------------------------------------------------------------------------------------------
# Through the real pipeline
# ------------------------------------------------------------------------------------------


def _kitchen_sink(folder: Path) -> Path:
    """One data set with most row-level defects at once, a BOM, extra columns and hostile strings."""
    case = Case("kitchen_sink", "kept", config={
        "description": f"Battery data set {SCRIPT}",
        "sources": {"transactions": {"cancellation_prefix": "C"}, "survey": {"path": "survey.csv"}},
        "survey": {"items": ["q1", "q2", "q3"]},
    }, files={
        "customers.csv": ("\ufeff" + re.sub(r",F,|,M,", ",,", CUSTOMERS).replace("Ann Lee", '"' + HTML_NAME.replace('"', '""') + '"')
                          .replace("Paris", LONG) + "C002,Dup,,,,,,\n,No id,,,,,,\n").encode("utf-8"),
        "transactions.csv": with_lines(
            TRANSACTIONS.replace(",O", ",N").replace(TX_HEADER, TX_HEADER + ",till").replace("\n", ",t1\n").replace(TX_HEADER + ",till,t1", TX_HEADER + ",till"),
            f"C001,N40,2024-02-01,P9,{SCRIPT},Apparel,1,45,t2", f"C002,N41,2024-02-01,P9,{LONG},Apparel,1,45,t2",
            'C003,N42,03/15/2024,P1,Linen shirt,Apparel,1,"$1,234.50",t2', "C004,N43,not a date,P1,Linen shirt,Apparel,1,45,t2",
            "C005,N44,2031-01-01,P1,Linen shirt,Apparel,1,45,t2", "C006,N45,1900-01-01,P1,Linen shirt,Apparel,1,45,t2",
            "C001,N46,2024-03-01,P1,Linen shirt,Apparel,-1,-45,t2", "C001,CN47,2024-03-01,P1,Linen shirt,Apparel,-1,-45,t2",
            "C002,N48,2024-03-01,P1,Linen shirt,Apparel,1,0,t2", ",N49,2024-03-01,P1,Linen shirt,Apparel,1,45,t2",
            "C003,N50,2024-04-01,P1,Linen shirt,Apparel,1,45,t2", "C003,N50,2024-04-01,P1,Linen shirt,Apparel,1,45,t2",
        ),
        "survey.csv": "customer_id,response_date,q1,q2,q3\nC001,2024-11-01,4,2,5\nC002,2024-11-02,0,6,3\nC003,2024-11-02,9,x,7\n",
    })
    return _materialise(case, folder)


@pytest.mark.slow
def test_kitchen_sink_data_prep_through_the_cli(tmp_path: Path) -> None:
    """Every row-level defect at once through `analysis run --only 00_data_prep`: completes, ledgered, escaped."""
    config_path = _kitchen_sink(tmp_path / "data")
    reports = tmp_path / "reports"
    proc = _cli("run", "--config", str(config_path), "--run-id", "sink", "--only", "00_data_prep", "--reports-dir", str(reports))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = reports / "sink"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert_nothing_lost(config_path, run_dir, manifest["ledger"])
    reasons = {(r["table"], r["reason"]): r["rows"] for r in manifest["ledger"]["rows"]}
    assert reasons == {
        ("customers", ""): 6, ("customers", "missing_customer_id"): 1, ("customers", "duplicate_customer_id"): 1,
        ("transactions", ""): 18, ("transactions", "missing_customer_id"): 1, ("transactions", "unparseable_timestamp"): 1,
        ("transactions", "before_min_date"): 1, ("transactions", "after_as_of"): 1, ("transactions", "cancellation"): 1,
        ("transactions", "return"): 1, ("transactions", "non_positive_amount"): 1, ("transactions", "duplicate_line"): 1,
        ("survey", ""): 2, ("survey", "no_answers"): 1,
    }
    assert manifest["unmapped_columns"]["transactions"] == ["till"]
    for page in run_dir.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<script>alert\(|<img[^>]*onerror", html), page.name
        assert "ann@example.com" not in html, f"{page.name} shows an e-mail address"
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert "Battery data set &lt;script&gt;alert(1)&lt;/script&gt;" in index


STRUCTURAL = ["one_customer_only", "all_customers_identical", "fewer_customers_than_k"]
FULL_PIPELINE = [nb.stem for nb in discover_notebooks(PROJECT_ROOT / "notebooks")]
# k only matters to the behavioral page: that case runs data prep and it alone, to save a full run
ONLY = {"fewer_customers_than_k": ["00_data_prep", "13_behavioral"]}


def _prepare_cases(folder: Path, only: dict[str, list[str]]) -> dict[str, tuple[Path, Path, list[str]]]:
    """Each case's data in ``folder/<case>`` and its ``analysis run`` (``only``: its ``--only`` notebooks,
    or every notebook where absent). Returns {case: (config, run folder, command)}."""
    planned = {}
    for case_id, notebooks in only.items():
        config_path = _materialise(CASES_BY_ID[case_id], folder / case_id / "data")
        reports = folder / case_id / "reports"
        command = analysis_command("run", "--config", str(config_path), "--run-id", case_id, "--reports-dir", str(reports),
                                   *(["--only", *notebooks] if notebooks else []))
        planned[case_id] = (config_path, reports / case_id, command)
    return planned


def _execute_at_once(folder: Path, planned: dict[str, tuple[Path, Path, list[str]]]) -> dict[str, tuple[Path, Path, Any]]:
    """Start every planned run at once (they are CPU-light but spend most of their time starting
    kernels), then wait for each. Returns {case: (config, run folder, finished process)}."""
    started = {case_id: (config_path, run_dir, start_process(command)) for case_id, (config_path, run_dir, command) in planned.items()}
    return {case_id: (config_path, run_dir, finish_process(proc, timeout=1800))
            for case_id, (config_path, run_dir, proc) in started.items()}


background_run("structural_runs", _execute_at_once,
               prepare=lambda folder: _prepare_cases(folder, {case_id: ONLY.get(case_id, []) for case_id in STRUCTURAL}))


@pytest.fixture(scope="module")
def structural_runs(background_runs) -> dict[str, tuple[Path, Path, subprocess.CompletedProcess]]:
    """The structural cases through the full pipeline (``fewer_customers_than_k``: data prep and the
    behavioral page), started at once, in the background. Returns {case: (config, run folder, process)}."""
    return background_runs.result("structural_runs")


@pytest.mark.slow
@pytest.mark.parametrize("case_id", STRUCTURAL)
def test_structural_case_through_the_full_pipeline(case_id: str, structural_runs) -> None:
    """Too few or identical customers: data prep completes; every later page ends ok, not
    applicable, or failed with a message naming the problem -- never a bare library error;
    a k the config asks for is used or refused, never silently replaced."""
    config_path, run_dir, proc = structural_runs[case_id]
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    pages = {nb["name"]: nb for nb in manifest["notebooks"]}
    assert list(pages) == ONLY.get(case_id, FULL_PIPELINE)
    assert pages["00_data_prep"]["status"] == "ok"
    assert_nothing_lost(config_path, run_dir, manifest["ledger"])
    bare = [f"{n}: {p['error']}" for n, p in pages.items() if p["status"] == "failed" and not _explains(p["error"])]
    assert not bare, "pages failed with an internal error instead of saying what is wrong with the data:\n" + "\n".join(bare)
    for page in pages.values():
        assert (run_dir / page["html"]).exists()
    asked_k = CASES_BY_ID[case_id].config.get("params", {}).get("13_behavioral", {}).get("k")
    if asked_k and "13_behavioral" in pages:
        behavioral = pages["13_behavioral"]
        model = manifest["models"].get("behavioral", {})
        said = behavioral["error"] if behavioral["status"] == "failed" else model.get("k_reason", "")
        assert f"k={asked_k}" in said or f"k = {asked_k}" in said, f"asked for k={asked_k}; the page says: {said!r}"


_INTERNAL_ERRORS = ("IndexError", "KeyError", "ZeroDivisionError", "AttributeError", "TypeError", "LinAlgError",
                    "FloatingPointError", "AssertionError", "NameError", "UnboundLocalError", "RecursionError")


def _explains(error: str) -> bool:
    """A failure that says what is wrong with the data: a domain error naming customers/segments/k."""
    kind = error.split(":", 1)[0].strip()
    return kind not in _INTERNAL_ERRORS and bool(re.search(r"customer|segment|cluster|\bk\b|too few|at least", error, re.IGNORECASE))


# Data that broke a page: each runs data prep and that page only. Expected: the page's status and
# what its message (not applicable) says.
PAGE_CASES = {
    "single_purchase_customers": ("14_value", "not applicable", r"bought more than once|repeat"),
    "category_slug_collision": ("13_behavioral", "ok", r""),
    "category_named_other": ("13_behavioral", "ok", r""),
}


background_run("page_runs", _execute_at_once,
               prepare=lambda folder: _prepare_cases(folder, {case_id: ["00_data_prep", page] for case_id, (page, *_) in PAGE_CASES.items()}))


@pytest.fixture(scope="module")
def page_runs(background_runs) -> dict[str, tuple[Path, Path, subprocess.CompletedProcess]]:
    """The page cases through ``analysis run --only 00_data_prep <page>``, started at once, in the background."""
    return background_runs.result("page_runs")


@pytest.mark.slow
@pytest.mark.parametrize("case_id", list(PAGE_CASES))
def test_page_case_completes_the_run(case_id: str, page_runs) -> None:
    """Single-purchase data make the value page not applicable with its reason, colliding or
    'other' category names keep the behavioral page working; the run completes either way."""
    config_path, run_dir, proc = page_runs[case_id]
    page, status, reason = PAGE_CASES[case_id]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert_nothing_lost(config_path, run_dir, manifest["ledger"])
    result = {nb["name"]: nb for nb in manifest["notebooks"]}[page]
    assert result["status"] == status, result
    assert re.search(reason, result["error"]), result["error"]
    html = (run_dir / result["html"]).read_text(encoding="utf-8")
    assert "Traceback" not in html
