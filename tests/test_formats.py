"""Reading what users bring: formats judged by content, id guesses, value-format checks, `check`.

The bad-input battery (tests/test_bad_inputs.py) runs each of these end to end on a small data
set; here the pieces are tested one by one.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import cli, config, contract, features, io
from analysis.config import ConfigError, load_config

FRAME = pd.DataFrame({"customer_id": ["C1", "C2"], "amount": [1.5, 2.0]})
CSV = "customer_id,amount\nC1,1.5\nC2,2.0\n"


def _write(path: Path, maker) -> Path:
    maker(path)
    return path


def _rds(path: Path) -> None:
    import pyreadr

    pyreadr.write_rds(str(path), FRAME, compress="gzip")


def _rda(path: Path) -> None:
    import pyreadr

    pyreadr.write_rdata(str(path), FRAME, df_name="clients")


def _sav(path: Path) -> None:
    import pyreadstat

    pyreadstat.write_sav(FRAME, str(path))


def _dta(path: Path) -> None:
    import pyreadstat

    pyreadstat.write_dta(FRAME, str(path))


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("orders.csv", CSV)


MAKERS = {
    "parquet": ("parquet", None, lambda p: FRAME.to_parquet(p)),
    "xlsx": ("excel", None, lambda p: FRAME.to_excel(p, index=False)),
    "sav": ("spss", None, _sav),
    "dta": ("stata", None, _dta),
    "rds": ("rds", None, _rds),
    "rda": ("rdata", None, _rda),
    "gz": ("text", "gzip", lambda p: p.write_bytes(gzip.compress(CSV.encode()))),
    "zip": ("text", "zip", _zip),
    "csv": ("text", None, lambda p: p.write_text(CSV)),
}


@pytest.mark.parametrize("made", list(MAKERS))
def test_sniff_judges_by_content_not_by_name(made: str, tmp_path: Path) -> None:
    """Every file is saved as ``data.csv``: only its content can tell what it is."""
    kind, compression, maker = MAKERS[made]
    path = _write(tmp_path / "data.csv", maker)
    found = io.sniff(str(path))
    assert (found.kind, found.compression) == (kind, compression)


def test_sniff_names_byte_order_marks_and_utf16_without_one(tmp_path: Path) -> None:
    for text, codec, expected in ((CSV, "utf-8-sig", "utf-8-sig"), (CSV, "utf-16", "utf-16"), (CSV, "utf-8", None)):
        path = tmp_path / f"{codec}.csv"
        path.write_bytes(text.encode(codec))
        assert io.sniff(str(path)).bom == expected
    path = tmp_path / "le.csv"
    path.write_bytes(CSV.encode("utf-16-le"))
    assert io.sniff(str(path)).utf16_guess == "utf-16-le"


def test_sniff_refuses_unknown_binaries_with_the_formats_it_reads(tmp_path: Path) -> None:
    path = tmp_path / "dump.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"dump\.bin: cannot read this file: it looks like a binary file\. Clientele reads CSV"):
        io.sniff(str(path))


def _config(tmp_path: Path, sources: dict, **extra) -> config.RunConfig:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "as_of": "2024-12-31", "sources": sources, **extra}))
    return load_config(path, notebook_dir=None)


@pytest.mark.parametrize("made", ["parquet", "xlsx", "sav", "dta", "rds", "rda", "gz", "zip"])
def test_read_source_reads_every_format_under_any_name(made: str, tmp_path: Path) -> None:
    _write(tmp_path / "customers.csv", MAKERS[made][2])
    raw = io.read_source(_config(tmp_path, {"customers": {"path": "customers.csv"}}), "customers")
    assert raw.frame["customer_id"].tolist() == ["C1", "C2"]
    assert pd.to_numeric(raw.original["amount"]).tolist() == [1.5, 2.0]


def test_spss_value_labels_apply_except_to_survey_items(tmp_path: Path) -> None:
    import pyreadstat

    frame = pd.DataFrame({"customer_id": ["C1", "C2"], "gender": [1.0, 2.0], "q1": [4.0, 5.0]})
    labels = {"gender": {1.0: "female", 2.0: "male"}, "q1": {4.0: "agree", 5.0: "strongly agree"}}
    pyreadstat.write_sav(frame, str(tmp_path / "survey.sav"), variable_value_labels=labels)
    pyreadstat.write_sav(frame, str(tmp_path / "customers.sav"), variable_value_labels=labels)
    cfg = _config(tmp_path, {"customers": {"path": "customers.sav"}, "survey": {"path": "survey.sav"}}, survey={"items": ["q1"]})
    survey = io.read_source(cfg, "survey").original
    assert survey["gender"].tolist() == ["female", "male"] and survey["q1"].tolist() == [4.0, 5.0]
    customers = io.read_source(cfg, "customers").original
    assert customers["q1"].tolist() == ["agree", "strongly agree"]


def test_an_rda_with_several_objects_asks_which(tmp_path: Path) -> None:
    pyreadr = pytest.importorskip("pyreadr")
    # pyreadr writes one object per file; list_objects is what decides, so stand in for R here
    _write(tmp_path / "data.rda", _rda)
    cfg = _config(tmp_path, {"customers": {"path": "data.rda"}})
    real = pyreadr.list_objects
    try:
        pyreadr.list_objects = lambda p: [{"object_name": "clients"}, {"object_name": "orders"}]
        with pytest.raises(ConfigError, match=r"holds 2 R objects \['clients', 'orders'\]; say which .*sources\.customers\.r_object"):
            io.read_source(cfg, "customers")
    finally:
        pyreadr.list_objects = real


def _bank(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({
        "age": [20 + i % 50 for i in range(n)], "job": ["admin", "services", "management"] * (n // 3),
        "poutcome": ["unknown", "failure", "success"] * (n // 3), "balance": [i * 37 % 1000 for i in range(n)],
    })


def test_id_guess_never_proposes_categories_or_measures() -> None:
    assert io.id_candidates(_bank(), "customers") == []
    genres = pd.DataFrame({"Comedy": [4, 3, 5, 4] * 10, "Drama": [2, 3, 1, 2] * 10})
    assert io.id_candidates(genres, "survey") == []


def test_id_guess_proposes_id_like_columns_best_first() -> None:
    bank = _bank().assign(ClientRef=[f"K{i:04d}" for i in range(60)], email=[f"u{i}@example.com" for i in range(60)])
    assert io.id_candidates(bank, "customers") == ["ClientRef", "email"]
    lines = pd.DataFrame({"order_id": [f"O{i}" for i in range(40)], "Member No": [f"M{i % 7}" for i in range(40)],
                          "genre": ["Comedy", "Drama"] * 20})
    assert io.id_candidates(lines, "transactions") == ["Member No"], "order lines: only a column named for a customer"


def test_decimal_and_day_month_checks() -> None:
    assert contract.decimal_mark_problem(pd.Series(["12,50", "3,99"]), ".").startswith("is written with ','")
    assert "mixes" in contract.decimal_mark_problem(pd.Series(["12,50", "3.99"]), ",")
    assert contract.decimal_mark_problem(pd.Series(["1,234", "45"]), ".") is None, "3 digits after the mark may group thousands"
    assert contract.decimal_mark_problem(pd.Series([12.5, 3.0]), ",") is None, "typed numbers have no mark to misread"
    online_retail = pd.Series(["12/1/2010 8:26", "12/13/2010 9:01", "1/4/2011 10:00"])
    assert contract.day_month_problem(online_retail, False, False) is None, "month-first, as the data show"
    assert "can only be month-first, although dayfirst is true" in contract.day_month_problem(online_retail, True, True)
    assert contract.day_month_problem(pd.Series(["2024-03-04", "2024-04-13"]), False, False) is None


def test_check_prints_warnings_and_validates_values(tmp_path: Path, capsys) -> None:
    (tmp_path / "transactions.csv").write_text("customer_id,timestamp,amount,product_name\nC1,2024-01-02,4.50,Résumé\n", encoding="utf-8")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "as_of": "2024-12-31",
                                    "sources": {"transactions": {"path": "transactions.csv", "encoding": "latin-1"}}}))
    assert cli.main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "transactions: 1 file(s) (text)" in out
    assert "warning: transactions.csv is UTF-8 text but sources.transactions.encoding is latin-1" in out
    path.write_text(yaml.safe_dump({"name": "t", "as_of": "2024-12-31",
                                    "sources": {"transactions": {"path": "transactions.csv", "decimal": ","}}}))
    assert cli.main(["check", "--config", str(path)]) == 2
    assert "column 'amount' is written with '.' as the decimal mark ('4.50')" in capsys.readouterr().err


def test_an_unforeseen_failure_is_one_line_too(monkeypatch, capsys, tmp_path: Path) -> None:
    def boom(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "check", boom)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["check", "--config", "x.yaml"]) == 3
    err = capsys.readouterr().err
    assert "unexpected KeyError" in err and "Traceback" not in err and cli.DEBUG_ENV in err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(KeyError):
        cli.main(["check", "--config", "x.yaml"])


def test_a_config_error_shows_as_its_sentence_in_a_notebook() -> None:
    assert ConfigError("x.csv: no 'amount' column.")._render_traceback_() == ["Input problem: x.csv: no 'amount' column."]


def test_a_config_that_is_not_yaml_text_is_one_sentence(tmp_path: Path, capsys) -> None:
    (tmp_path / "run.yaml").write_bytes(b"\xff\xfe\x00PK binary")
    for given in (tmp_path / "run.yaml", tmp_path):
        assert cli.main(["check", "--config", str(given)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {given}: ") and "Traceback" not in err and "config/sample.yaml" in err


def test_date_format_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(CSV)
    for fmt, said in (("%d/%m/%Q", "'%Q' in '%d/%m/%Q' is not a date code"), ("%d/%d/%Y", "gives '%d' twice"),
                      ("day-month", "has no day, month or year code")):
        with pytest.raises(ConfigError, match=rf"sources\.customers\.date_format: .*{said}"):
            _config(tmp_path, {"customers": {"path": "c.csv", "date_format": fmt}})


def test_category_columns_stay_distinct() -> None:
    names = ["Home & Garden", "Home Garden", "Home-Garden", "home garden", "other", "Other"]
    columns = features.category_columns(names)
    assert len(set(columns.values())) == len(names)


def test_reading_encoding_follows_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_bytes(CSV.encode("utf-16"))
    cfg = _config(tmp_path, {"customers": {"path": "c.csv", "encoding": "cp1252"}})
    assert io.reading_encoding(cfg, "customers") == "cp1252"
    assert io.reading_encoding(cfg, "customers", str(tmp_path / "c.csv")) == "utf-16"
