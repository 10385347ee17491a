"""The lean paths of data preparation give what the plain pandas ones gave (issue 17)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis import contract


def test_duplicated_rows_is_pandas_duplicated():
    rng = np.random.default_rng(0)
    repeated = 0
    for trial in range(100):
        n = int(rng.integers(0, 50))
        frame = pd.DataFrame({
            "id": pd.Series(rng.choice(np.array(["x", "y", None, ""], dtype=object), n), dtype="str"),
            "amount": rng.choice([1.0, np.nan, -0.0, 0.0], n),
            "when": pd.to_datetime(pd.Series(rng.choice(np.array(["2024-01-01", None], dtype=object), n))),
            "mixed": pd.Series(rng.choice(np.array(["p", None, 3], dtype=object), n), dtype=object),
        })
        if trial % 3 == 0:
            frame.columns = ["id", "id", "when", "mixed"]  # a repeated column name counts twice
        expected = frame.duplicated(keep="first")
        assert contract._duplicated_rows(frame).equals(expected), trial
        repeated += int(expected.sum())
    assert repeated > 100  # the random rows do repeat


def test_text_columns_share_one_object_per_value():
    values = pd.Series([" a ", "b", "", None, "a", "b"] * 1000, dtype=object)
    objects = contract._clean_text(values)
    assert objects.dtype == object and objects.iloc[3] is None and objects.iloc[2] is None
    assert objects.iloc[0] == "a" and objects.iloc[0] is objects.iloc[4]
    plain = values.astype("string").str.strip()
    assert objects.tolist() == plain.mask(plain == "").astype(object).where(plain.mask(plain == "").notna(), None).tolist()
    assert contract.normalize_ids(pd.Series(["17850.0", " 7 ", "nan", None])).tolist() == ["17850", "7", None, None]


def test_text_from_parquet_pieces_is_written_as_from_python_strings(tmp_path):
    # a dictionary that outgrows its page limit falls back to plain encoding where the pieces end
    ids = [f"order-{i:08d}" for i in range(200_000)]
    pq.write_table(pa.table({"id": ids}), tmp_path / "in.parquet", row_group_size=7_000)
    pieces = pd.read_parquet(tmp_path / "in.parquet")["id"]
    assert pa.array(pieces.array).num_chunks > 1
    keep = pd.Series(np.arange(len(ids)) % 3 != 0)
    lean = pd.DataFrame({"id": contract._as_str(contract._id_text(pieces)[keep])}).reset_index(drop=True)
    plain = pd.DataFrame({"id": contract.normalize_ids(pieces)[keep].astype(str)}).reset_index(drop=True)
    lean.to_parquet(tmp_path / "lean.parquet", index=False)
    plain.to_parquet(tmp_path / "plain.parquet", index=False)
    assert (tmp_path / "lean.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
