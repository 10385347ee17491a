"""Reading only the columns a page needs: Run.table(columns=), Run.has without reading, and segment
functions that give the same answer on their declared transaction columns as on the full table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from analysis import clienteling, io, workspace
from analysis.config import load_config
from analysis.segment import demographic, geographic, psychographic

from .conftest import PROJECT_ROOT, SAMPLE_CONFIG


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory) -> io.RunFolder:
    """The bundled sample's validated tables in a run folder (no notebooks run)."""
    folder = io.RunFolder(tmp_path_factory.mktemp("columns-run"))
    workspace.prepare_run(load_config(SAMPLE_CONFIG), folder)
    return folder


@pytest.fixture
def run(sample_folder) -> workspace.Run:
    """A fresh handle (empty cache) on the prepared sample run."""
    return workspace.Run(config=load_config(SAMPLE_CONFIG), folder=sample_folder)


@pytest.fixture(scope="module")
def full_transactions(sample_folder) -> pd.DataFrame:
    return pd.read_parquet(sample_folder.table_path("transactions"))


# --------------------------------------------------------------------------------------------
# Run.table(columns=) and RunFolder.read_table(columns=)
# --------------------------------------------------------------------------------------------

def test_table_returns_exactly_the_columns_asked_for(run, full_transactions):
    assert len(full_transactions.columns) > 3  # the sample's table is wider than what is asked for
    narrow = run.table("transactions", columns=["amount", "customer_id"])
    assert list(narrow.columns) == ["amount", "customer_id"]
    pd.testing.assert_frame_equal(narrow, full_transactions[["amount", "customer_id"]])
    assert list(run.folder.read_table("transactions", columns=["timestamp"]).columns) == ["timestamp"]


def test_optional_columns_are_read_where_the_table_has_them(run, full_transactions):
    assert "margin" in full_transactions and "no_such_column" not in full_transactions
    frame = run.table("transactions", columns=["customer_id"], optional=["margin", "no_such_column"])
    assert list(frame.columns) == ["customer_id", "margin"]


def test_an_unknown_column_names_the_table_the_column_and_the_columns_present(run, full_transactions):
    with pytest.raises(ValueError) as err:
        run.table("transactions", columns=["customer_id", "basket_colour"])
    message = str(err.value)
    assert "transactions" in message and "'basket_colour'" in message
    assert all(repr(c) in message for c in full_transactions.columns)
    assert "'customer_id'" not in message.split("Found")[0]  # only the missing column is named as missing


def test_the_cache_keeps_apart_column_subsets_and_the_full_table(run, full_transactions):
    narrow = run.table("transactions", columns=["customer_id"])
    full = run.table("transactions")
    assert list(full.columns) == list(full_transactions.columns)
    assert list(narrow.columns) == ["customer_id"]
    assert run.table("transactions", columns=["customer_id"]) is narrow  # read once per subset
    # a subset of a table already read in full comes from it, with the same values
    pd.testing.assert_frame_equal(run.table("transactions", columns=["order_id", "amount"]), full_transactions[["order_id", "amount"]])


def test_a_table_the_run_lacks_is_none_with_or_without_columns(run):
    assert run.table("loyalty_cards") is None
    assert run.table("loyalty_cards", columns=["customer_id"]) is None
    assert run.columns("loyalty_cards") is None and not run.has("loyalty_cards")


def test_columns_lists_the_table_columns(run, full_transactions):
    assert run.columns("transactions") == list(full_transactions.columns)


def test_has_checks_the_file_without_reading_the_table(tmp_path):
    folder = io.RunFolder(tmp_path)
    folder.write_ledger({"rows": [], "notes": []})  # the tables count as prepared
    folder.table_path("transactions").write_bytes(b"this is not a Parquet file")
    run = workspace.Run(config=load_config(SAMPLE_CONFIG), folder=folder)
    assert run.has("transactions")
    assert not run.has("events")
    with pytest.raises(Exception):  # noqa: B017 - any reader error proves that has() read nothing
        run.table("transactions")


# --------------------------------------------------------------------------------------------
# Each page's functions on their declared columns give what they give on the full table
# --------------------------------------------------------------------------------------------

def test_demographic_on_its_columns_matches_the_full_table(run, full_transactions):
    kwargs = {"k_range": (2, 4), "n_bootstrap": 1, "random_state": 0}
    customers = run.table("customers")
    narrow = demographic.segment_demographic(customers, run.table("transactions", columns=demographic.TRANSACTION_COLUMNS), **kwargs)
    full = demographic.segment_demographic(customers, full_transactions, **kwargs)
    assert narrow.value_source == full.value_source
    pd.testing.assert_frame_equal(narrow.labels, full.labels)
    pd.testing.assert_frame_equal(narrow.profiles, full.profiles)
    # the page passes the Parquet file: DuckDB sums the spend in place (exact decimals, so equal up to rounding)
    in_place = demographic.segment_demographic(customers, run.parquet("transactions"), **kwargs)
    assert in_place.value_source == full.value_source
    pd.testing.assert_frame_equal(in_place.labels, full.labels)
    pd.testing.assert_frame_equal(in_place.profiles, full.profiles, rtol=1e-9)


def test_geographic_on_its_columns_matches_the_full_table(run, full_transactions):
    kwargs = {"as_of": run.as_of, "n_bootstrap": 1, "random_state": 0}
    customers = run.table("customers")
    narrow = geographic.segment_geographic(customers, run.table("transactions", columns=geographic.TRANSACTION_COLUMNS), **kwargs)
    full = geographic.segment_geographic(customers, full_transactions, **kwargs)
    assert narrow.growth_note == full.growth_note and narrow.value_source == full.value_source
    pd.testing.assert_frame_equal(narrow.labels, full.labels)
    pd.testing.assert_frame_equal(narrow.profiles, full.profiles)
    for level in full.rollups:
        pd.testing.assert_frame_equal(narrow.rollups[level], full.rollups[level])
    # the page passes the Parquet file: DuckDB sums spend and the growth windows in place (exact decimals)
    in_place = geographic.segment_geographic(customers, run.parquet("transactions"), **kwargs)
    assert in_place.growth_note == full.growth_note and in_place.value_source == full.value_source
    pd.testing.assert_frame_equal(in_place.labels, full.labels)
    pd.testing.assert_frame_equal(in_place.profiles, full.profiles, rtol=1e-9)
    for level in full.rollups:
        pd.testing.assert_frame_equal(in_place.rollups[level], full.rollups[level], rtol=1e-9)
    windows, _ = geographic.revenue_windows(full_transactions, run.as_of)
    assert windows is not None and (windows > 0).any().all()  # the sample covers both windows
    pd.testing.assert_frame_equal(geographic.revenue_windows(run.parquet("transactions"), run.as_of)[0], windows, rtol=1e-9)


def test_psychographic_on_its_columns_matches_the_full_table(run, full_transactions):
    survey = run.config.survey
    kwargs = {"items": survey.items, "scales": survey.scales, "reverse": survey.reverse, "k_range": (2, 4), "n_bootstrap": 1,
              "random_state": 0}
    tx = run.table("transactions", columns=psychographic.TRANSACTION_COLUMNS)
    narrow = psychographic.segment_psychographic(run.table("survey"), run.table("customers"), tx, **kwargs)
    full = psychographic.segment_psychographic(run.table("survey"), run.table("customers"), full_transactions, **kwargs)
    pd.testing.assert_frame_equal(narrow.labels, full.labels)
    pd.testing.assert_frame_equal(narrow.profiles, full.profiles)
    in_place = psychographic.segment_psychographic(run.table("survey"), run.table("customers"), run.parquet("transactions"), **kwargs)
    pd.testing.assert_frame_equal(in_place.labels, full.labels)
    pd.testing.assert_frame_equal(in_place.profiles, full.profiles, rtol=1e-9)


def test_clienteling_on_its_columns_matches_the_full_table(run, full_transactions):
    clients = clienteling.client_profiles(run.customer_features(), {}, run.table("customers"))
    tx = run.table("transactions", columns=clienteling.TRANSACTION_COLUMNS, optional=clienteling.OPTIONAL_TRANSACTION_COLUMNS)
    assert "product_name" in tx  # the sample names its products
    narrow = clienteling.evaluate_recommendations(tx, clients, k=5)
    full = clienteling.evaluate_recommendations(full_transactions, clients, k=5)
    pd.testing.assert_frame_equal(narrow.table, full.table)
    some = clients.index[:50]
    pd.testing.assert_frame_equal(clienteling.recommend_with_reasons(tx, customers=some),
                                  clienteling.recommend_with_reasons(full_transactions, customers=some))


def test_value_on_the_value_page_columns_matches_the_full_table(run, full_transactions):
    from analysis.segment import value

    settings = {k: v for k, v in run.params("14_value").items() if k in ("calibration_end", "time_unit", "model")}
    settings.update(as_of=run.as_of, n_draws=50, random_state=0)
    features = run.customer_features()
    tx = run.table("transactions", columns=value.TRANSACTION_COLUMNS, optional=value.OPTIONAL_TRANSACTION_COLUMNS)
    assert "margin" in tx  # the sample has margins, so the margin rate is read from them
    narrow = value.segment_value(tx, features, **settings)
    full = value.segment_value(full_transactions, features, **settings)
    assert narrow.settings["margin"] == full.settings["margin"]
    pd.testing.assert_frame_equal(narrow.labels, full.labels)
    pd.testing.assert_frame_equal(narrow.profiles, full.profiles)


def test_no_notebook_reads_the_whole_transaction_table():
    """Pages pass the columns their functions declare; the order-line table is the one that outgrows memory."""
    for path in sorted((PROJECT_ROOT / "notebooks").rglob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        assert 'run.table("transactions")' not in code, f"{path.name} reads every column of the transactions"
        assert 'read_table("transactions")' not in code, f"{path.name} reads every column of the transactions"


def test_value_reads_the_order_lines_in_place(run, full_transactions):
    """The value page passes the Parquet file (``run.parquet``); DuckDB reads it where it lies, same result."""
    from analysis.segment import value

    settings = {k: v for k, v in run.params("14_value").items() if k in ("calibration_end", "time_unit", "model")}
    settings.update(as_of=run.as_of, n_draws=50, random_state=0)
    features = run.customer_features()
    in_place = value.segment_value(run.parquet("transactions"), features, **settings)
    loaded = value.segment_value(full_transactions, features, **settings)
    assert in_place.settings["margin"] == pytest.approx(loaded.settings["margin"], rel=1e-12)
    pd.testing.assert_frame_equal(in_place.rfm, loaded.rfm)
    pd.testing.assert_frame_equal(in_place.labels, loaded.labels, rtol=1e-9)
    pd.testing.assert_frame_equal(in_place.profiles, loaded.profiles, rtol=1e-9)
    assert run.parquet("no_such_table") is None
