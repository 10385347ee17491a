"""Helpers the segmentation bases share: customer value, segment sizes, category lift, sampling.

Pure functions of DataFrames. Each basis module (demographic, geographic, psychographic, ...)
uses them to profile its segments the same way, so their rows in ``exports/segments.csv`` line
up: ``segment``, ``customers``, ``customers_pct``, ``revenue``, ``revenue_pct``,
``revenue_per_customer``, then basis-specific columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ..contract import normalize_ids, parse_numbers

#: Label for a missing categorical value: kept as its own category, never imputed.
MISSING = "(missing)"
#: Label for categories too rare to describe a segment (see ``min_category_share``).
OTHER = "(other)"
#: The transaction columns :func:`customer_value` reads; a page passes only these
#: (``run.table("transactions", columns=VALUE_COLUMNS)``), not the whole order-line table.
VALUE_COLUMNS = ("customer_id", "amount")


def customer_value(
    customers: pd.DataFrame,
    transactions: pd.DataFrame | str | Path | None = None,
    spend: pd.Series | None = None,
) -> tuple[pd.Series | None, str]:
    """Purchase value per customer and where it came from.

    Parameters
    ----------
    customers : DataFrame
        Validated customers (``customer_id``, optionally ``spend``).
    transactions : DataFrame or path to Parquet, optional
        Validated order lines; when given, value is the sum of ``amount`` per customer. A path
        (``run.parquet("transactions")``) is summed by DuckDB where the file lies, without loading it.
    spend : Series, optional
        Value per customer indexed by ``customer_id`` (e.g. from :func:`spend_from_columns`);
        used when there are no transactions.

    Returns
    -------
    value : Series or None
        Indexed by ``customer_id`` in the order of ``customers``; customers without purchases
        have 0. None when the data hold no purchase value.
    source : str
        A phrase for reports, e.g. ``"revenue from 12,345 order lines"``.

    Examples
    --------
    >>> cust = pd.DataFrame({"customer_id": ["a", "b"], "spend": [10.0, None]})
    >>> value, source = customer_value(cust)
    >>> value.tolist(), source
    ([10.0, 0.0], "the customer table's spend column")
    """
    ids = customers["customer_id"].astype(str)
    if transactions is not None and not isinstance(transactions, pd.DataFrame):
        totals, n_lines = _amount_per_customer(transactions)
        if n_lines:
            return totals.reindex(ids).fillna(0.0).rename("value"), f"revenue from {n_lines:,} order lines"
    elif transactions is not None and len(transactions):
        totals = transactions.groupby(transactions["customer_id"].astype(str))["amount"].sum()  # ids as text, as above
        value = totals.reindex(ids).fillna(0.0)
        return value.rename("value"), f"revenue from {len(transactions):,} order lines"
    if spend is not None:
        value = spend[~spend.index.duplicated(keep="first")].reindex(ids).fillna(0.0)  # the contract keeps first rows
        return value.rename("value"), "spend summed from the customer table's spend columns"
    if "spend" in customers and customers["spend"].notna().any():
        value = pd.Series(customers["spend"].to_numpy(dtype=float), index=ids).fillna(0.0)
        return value.rename("value"), "the customer table's spend column"
    return None, "no purchase value in this data"


def _amount_per_customer(path: str | Path) -> tuple[pd.Series, int]:
    """Sum of ``amount`` per customer (ids as text) and the number of order lines, of a Parquet file, by DuckDB."""
    from ..engines import DuckDBEngine, exact_sum

    with DuckDBEngine() as engine:
        engine.register("tx", path)
        sums = engine.query(f"SELECT CAST(customer_id AS VARCHAR) AS customer_id, {exact_sum('amount')} AS amount, "
                            "count(*) AS n FROM tx GROUP BY 1")
    return sums.set_index("customer_id")["amount"], int(sums["n"].sum())


def spend_from_columns(frame: pd.DataFrame, id_column: str, columns: Sequence[str], source: str = "customers") -> pd.Series:
    """Spend per customer as the sum of several raw columns (e.g. ``MntWines`` + ``MntFruits`` ...).

    Parameters
    ----------
    frame : DataFrame
        Raw customer rows with the user's own column names (``io.RawTable.original``).
    id_column : str
        The user's customer id column.
    columns : list of str
        Columns to sum; unparseable values count as 0.
    source : str
        Table name for error messages.

    Returns
    -------
    Series indexed by normalised ``customer_id``.

    Raises
    ------
    KeyError
        Naming the missing columns and those found.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(
            f"{source}: spend columns {missing} not found. Found: {list(frame.columns)[:40]}. "
            f"Fix params.<notebook>.spend_columns in the run config."
        )
    total = sum((parse_numbers(frame[c]).fillna(0.0) for c in columns), start=pd.Series(0.0, index=frame.index))
    ids = normalize_ids(frame[id_column])
    keep = pd.Series(ids).notna().to_numpy()
    return pd.Series(total.to_numpy()[keep], index=pd.Index(np.asarray(ids)[keep], name="customer_id"), name="spend")


def spend_from_raw(raw: Any, columns: Sequence[str] | None) -> pd.Series | None:
    """Spend per customer summed from raw columns of the customer source, or None without columns.

    Parameters
    ----------
    raw : io.RawTable
        The customer source as read by :func:`analysis.io.read_source` (``original`` frame with the
        user's names and the ``mapping`` to contract names).
    columns : list of str or None
        Raw columns to sum (``params.<notebook>.spend_columns``).
    """
    if not columns:
        return None
    return spend_from_columns(raw.original, raw.mapping["customer_id"], columns)


def add_shares(table: pd.DataFrame, n_customers: int, *, has_value: bool) -> pd.DataFrame:
    """Add ``customers_pct``, ``revenue_pct`` and ``revenue_per_customer`` to a grouped table, in place.

    ``table`` holds ``customers`` and ``revenue`` per group; ``n_customers`` is everyone grouped.
    Without a value (``has_value`` False) revenue and its shares are NaN, not 0.
    """
    if not has_value:
        table["revenue"] = np.nan
    table["customers_pct"] = 100.0 * table["customers"] / n_customers
    total = table["revenue"].sum()
    table["revenue_pct"] = 100.0 * table["revenue"] / total if total else np.nan
    table["revenue_per_customer"] = table["revenue"] / table["customers"]
    return table


def size_order(labels: np.ndarray, n_segments: int = 0) -> np.ndarray:
    """Map raw cluster ids to ids ordered by size (0 = largest, ties by id), for stable, readable labels.

    ``mapping[raw_id]`` is the new id; ``n_segments`` counts clusters that may hold no row.

    Examples
    --------
    >>> size_order(np.array([0, 1, 1, 2, 2, 2])).tolist()
    [2, 1, 0]
    """
    counts = np.bincount(labels, minlength=n_segments)
    order = np.argsort(-counts, kind="stable")
    mapping = np.empty_like(order)
    mapping[order] = np.arange(len(order))
    return mapping


def segment_sizes(labels: pd.Series, value: pd.Series | None = None) -> pd.DataFrame:
    """Customers and revenue per segment, largest segment first.

    Parameters
    ----------
    labels : Series
        Segment per customer (index: ``customer_id``).
    value : Series, optional
        Purchase value per customer (same index); revenue columns are NaN without it.

    Returns
    -------
    DataFrame
        ``segment``, ``customers``, ``customers_pct``, ``revenue``, ``revenue_pct``,
        ``revenue_per_customer``.

    Examples
    --------
    >>> labels = pd.Series(["x", "x", "y"], index=["a", "b", "c"])
    >>> segment_sizes(labels, pd.Series([1.0, 3.0, 4.0], index=["a", "b", "c"]))["revenue_pct"].tolist()
    [50.0, 50.0]
    """
    frame = pd.DataFrame({"segment": labels.to_numpy()}, index=labels.index)
    frame["value"] = value.reindex(labels.index).to_numpy(dtype=float) if value is not None else np.nan
    out = frame.groupby("segment", sort=False).agg(customers=("segment", "size"), revenue=("value", "sum"))
    add_shares(out, len(frame), has_value=value is not None)
    out = out.reset_index().sort_values(["customers", "segment"], ascending=[False, True], kind="stable")
    return out[["segment", "customers", "customers_pct", "revenue", "revenue_pct", "revenue_per_customer"]].reset_index(drop=True)


def lift_table(attributes: pd.DataFrame, labels: pd.Series, *, min_customers: int = 5) -> pd.DataFrame:
    """Over- and under-represented categories per segment.

    ``lift`` = share of the segment in a category / share of all customers in it: 2.0 means the
    category is twice as common in the segment as overall, 0.5 half as common.

    Parameters
    ----------
    attributes : DataFrame
        Categorical attributes (index: ``customer_id``); missing values count as :data:`MISSING`.
    labels : Series
        Segment per customer, same index.
    min_customers : int
        Categories held by fewer customers overall are left out (their lift is noise).

    Returns
    -------
    DataFrame
        ``segment``, ``attribute``, ``category``, ``customers`` (in the segment and category),
        ``share_pct`` (of the segment), ``overall_pct`` (of all customers), ``lift``.
    """
    parts = []
    labels = labels.reindex(attributes.index)
    for attribute in attributes.columns:  # one pass per attribute (a handful), vectorised within
        values = attributes[attribute].astype(object).where(attributes[attribute].notna(), MISSING).astype(str)
        counts = pd.crosstab(labels, values)
        overall = counts.sum(axis=0)
        counts = counts.loc[:, overall >= min_customers]
        if counts.empty:
            continue
        share = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
        overall_share = overall[counts.columns] / overall.sum()
        long = counts.stack().rename("customers").to_frame()
        long["share_pct"] = 100.0 * share.stack()
        long["overall_pct"] = 100.0 * overall_share.reindex(long.index.get_level_values(1)).to_numpy()
        long["lift"] = long["share_pct"] / long["overall_pct"]
        long = long.reset_index()
        long.columns = ["segment", "category", "customers", "share_pct", "overall_pct", "lift"]
        long.insert(1, "attribute", attribute)
        parts.append(long)
    columns = ["segment", "attribute", "category", "customers", "share_pct", "overall_pct", "lift"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def unique_names(names: pd.Series) -> pd.Series:
    """Make segment names unique by numbering repeats: ``"Urban"``, ``"Urban (2)"``.

    Examples
    --------
    >>> unique_names(pd.Series(["a", "b", "a"])).tolist()
    ['a', 'b', 'a (2)']
    """
    rank = names.groupby(names).cumcount() + 1
    return names.where(rank == 1, names + " (" + rank.astype(str) + ")")


def stratified_sample(strata: pd.Series | pd.DataFrame, n: int, random_state: int | np.random.RandomState | None = None) -> np.ndarray:
    """Positions of a stratified random sample of about ``n`` rows (proportional allocation).

    Every stratum keeps its share of rows, rounded up, so small strata (rare life stages,
    regions) are represented in the fit sample.

    Parameters
    ----------
    strata : Series or DataFrame
        Stratum per row (a DataFrame: the combination of its columns); missing is a stratum.
    n : int
        Target sample size; all rows when ``n >= len(strata)``.
    random_state : int or RandomState, optional

    Returns
    -------
    ndarray of int
        Sorted row positions.

    Examples
    --------
    >>> idx = stratified_sample(pd.Series(["a"] * 90 + ["b"] * 10), 20, random_state=0)
    >>> len(idx), int((idx >= 90).sum())
    (20, 2)
    """
    total = len(strata)
    if n >= total:
        return np.arange(total)
    rs = check_random_state(random_state)
    frame = strata.to_frame() if isinstance(strata, pd.Series) else strata
    frame = frame.astype(object).fillna(MISSING).astype(str).reset_index(drop=True)
    codes = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    order = rs.permutation(total)
    shuffled = codes[order]
    rank = pd.Series(shuffled).groupby(shuffled).cumcount().to_numpy()
    sizes = np.bincount(codes)
    quota = np.ceil(sizes * (n / total)).astype(int)
    chosen = order[rank < quota[shuffled]]
    if len(chosen) > n:  # rounding up may overshoot: drop at random
        chosen = rs.choice(chosen, size=n, replace=False)
    return np.sort(chosen)
