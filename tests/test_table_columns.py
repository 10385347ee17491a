"""Reading only the columns a page needs: Run.table(columns=), Run.has without reading."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import io, workspace
from analysis.config import load_config

from .conftest import SAMPLE_CONFIG


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
