"""Transactions -> the per-customer summary the "buy till you die" models need.

A pure function of a transaction log with an explicit ``observation_period_end`` (and an optional
``calibration_period_end`` for a holdout split), as in pymc-marketing's ``clv.utils``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..engines import DuckDBEngine, exact, parquet_scan

__all__ = ["PERIODS_PER_MONTH", "TimeUnit", "rfm_summary", "rfm_summary_and_split"]

TimeUnit = Literal["W", "D"]

# Periods per month, the factors pymc-marketing (and lifetimes before it) use in
# ``customer_lifetime_value``; kept identical so our CLV matches theirs.
PERIODS_PER_MONTH: dict[str, float] = {"W": 4.345, "D": 30.0}



def rfm_summary(
    transactions: pd.DataFrame | str | Path,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "amount",
    observation_period_end: str | pd.Timestamp,
    time_unit: TimeUnit = "W",
    calibration_period_end: str | pd.Timestamp | None = None,
    aggregate_by: str | None = "D",
) -> pd.DataFrame:
    """Summarise a transaction log into BG/NBD frequency, recency, T and monetary value.

    Conventions are those of Fader, Hardie & Lee (2005) on CDNOW:

    * transactions are first aggregated to one *purchase occasion* per customer per
      ``aggregate_by`` period (a calendar day by default), summing their value;
    * ``frequency`` is the number of repeat purchase occasions (occasions after the
      first one);
    * ``recency`` is the time from the first to the last purchase occasion;
    * ``T`` is the time from the first purchase occasion to the end of the
      (calibration) period;
    * ``monetary_value`` is the mean value of the *repeat* purchase occasions, 0 when
      ``frequency`` is 0 (the first purchase is excluded, as the Gamma-Gamma model
      requires).

    Period ends are points in time: a purchase dated on the end day belongs to the
    period, and T is measured up to midnight at the start of the end day.  With
    ``calibration_period_end="1997-09-30"`` a customer who first bought on
    1997-01-01 has T = 272 days = 38.86 weeks, as in the paper.

    This is deliberately not ``pymc_marketing.clv.utils.rfm_summary``: with
    ``time_unit="W"`` that function buckets purchases into calendar weeks before
    counting (so two purchases in one week count once), and its holdout helper
    ``rfm_train_test_split`` reports ``test_T`` in whole periods and aggregates with a
    Python-level ``groupby.agg(lambda ...)``.  Here aggregation is always per
    ``aggregate_by`` period and time is measured in ``time_unit`` as a float; with
    ``time_unit="D"`` the calibration columns equal pymc-marketing's
    ``rfm_summary(..., time_unit="D")``.

    Parameters
    ----------
    transactions : pandas.DataFrame or path to a Parquet file
        One row per transaction. A Parquet file is read by DuckDB where it lies (only the columns
        named below; nothing is loaded into pandas) when its timestamps are naive, as the data
        contract writes them; zoned timestamps are read into pandas first.
    customer_id_col : str, default "customer_id"
        Column identifying the customer.
    datetime_col : str, default "timestamp"
        Column with the transaction time; must have a datetime64 dtype.
    monetary_value_col : str or None, default "amount"
        Column with the transaction value.  ``None`` omits the monetary columns.
    observation_period_end : str or pandas.Timestamp
        End of the observation window (inclusive).  Later transactions are ignored.
    time_unit : {"W", "D"}, default "W"
        Unit in which ``recency``, ``T`` and ``duration_holdout`` are expressed.
    calibration_period_end : str or pandas.Timestamp, optional
        End of the calibration window (inclusive).  When given, the summary describes
        customers whose first purchase falls in the calibration window, computed on
        calibration transactions only, and adds ``frequency_holdout`` (purchase
        occasions in ``(calibration_period_end, observation_period_end]``),
        ``monetary_value_holdout`` (their mean value, 0 when none; only with
        ``monetary_value_col``) and ``duration_holdout`` (length of the holdout window
        in ``time_unit``).
    aggregate_by : str or None, default "D"
        Fixed pandas frequency used to floor timestamps into purchase occasions
        ("D", "h", ...).  ``None`` treats every transaction as its own occasion.

    Returns
    -------
    pandas.DataFrame
        One row per customer, sorted by ``customer_id``, with columns
        ``customer_id, frequency, recency, T[, monetary_value]`` and, with a
        calibration split, ``frequency_holdout[, monetary_value_holdout],
        duration_holdout``.

    Raises
    ------
    ValueError
        If a column is missing, ids or timestamps are missing, or the period ends
        are inconsistent.
    TypeError
        If ``datetime_col`` is not a datetime column.

    Examples
    --------
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 1, 2],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-08"]),
    ...     "amount": [10.0, 5.0, 20.0, 7.0],
    ... })
    >>> rfm_summary(tx, observation_period_end="2024-01-29")
       customer_id  frequency  recency    T  monetary_value
    0            1          1      2.0  4.0            20.0
    1            2          0      0.0  3.0             0.0
    """
    return _summaries(transactions, customer_id_col=customer_id_col, datetime_col=datetime_col,
                      monetary_value_col=monetary_value_col, observation_period_end=observation_period_end,
                      time_unit=time_unit, calibration_period_end=calibration_period_end, aggregate_by=aggregate_by,
                      both=False)[0]


def rfm_summary_and_split(
    transactions: pd.DataFrame | str | Path,
    *,
    observation_period_end: str | pd.Timestamp,
    calibration_period_end: str | pd.Timestamp,
    customer_id_col: str = "customer_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "amount",
    time_unit: TimeUnit = "W",
    aggregate_by: str | None = "D",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`rfm_summary` without and with a holdout split, from one pass over the transactions.

    Returns ``(rfm_summary(...), rfm_summary(..., calibration_period_end=...))``, the same frames the
    two calls return (tested); the purchase occasions are built and grouped once.
    """
    return _summaries(transactions, customer_id_col=customer_id_col, datetime_col=datetime_col,
                      monetary_value_col=monetary_value_col, observation_period_end=observation_period_end,
                      time_unit=time_unit, calibration_period_end=calibration_period_end, aggregate_by=aggregate_by,
                      both=True)


def _summaries(
    transactions: pd.DataFrame | str | Path, *, customer_id_col: str, datetime_col: str, monetary_value_col: str | None,
    observation_period_end: str | pd.Timestamp, time_unit: TimeUnit, calibration_period_end: str | pd.Timestamp | None,
    aggregate_by: str | None, both: bool,
) -> list[pd.DataFrame]:
    """The summary (``both=False``) or the full-period summary and the split one (``both=True``)."""
    unit = _unit_timedelta(time_unit)
    with DuckDBEngine() as engine:
        lines = _register_occasions(engine, transactions, customer_id_col=customer_id_col, datetime_col=datetime_col,
                                    monetary_value_col=monetary_value_col, aggregate_by=aggregate_by)
        # period ends are read in the data's own time zone
        observation_end = _as_timestamp(observation_period_end, lines.tz, "observation_period_end")
        if calibration_period_end is None:
            calibration_end = observation_end
        else:
            calibration_end = _as_timestamp(calibration_period_end, lines.tz, "calibration_period_end")
            if calibration_end >= observation_end:
                raise ValueError(
                    f"calibration_period_end ({calibration_end.date()}) must be before "
                    f"observation_period_end ({observation_end.date()}). Move the calibration end earlier "
                    "or pass calibration_period_end=None for a summary without holdout."
                )
        if lines.first is None or lines.first > _naive(calibration_end):
            raise ValueError(
                f"transactions: no purchase on or before {calibration_end.date()} in column "
                f"'{datetime_col}'. Check the period ends against the data range."
            )
        holdout = calibration_period_end is not None
        summary = _summary_sql(engine, lines, _naive(observation_end), _naive(calibration_end), unit,
                               holdout=holdout, full=both)
    if lines.id_dtype is not None:
        summary["customer_id"] = summary["customer_id"].astype(lines.id_dtype)
    out = []
    if both:  # the full-period columns, for every customer (the split keeps those who started in calibration)
        full = summary[["customer_id"] + [c for c in summary if c.startswith("full_")]]
        out.append(full.rename(columns=lambda c: c.removeprefix("full_")))
        summary = summary.loc[summary.pop("in_calibration")].drop(columns=full.columns[1:]).reset_index(drop=True)
    if holdout:
        summary["duration_holdout"] = float((observation_end - calibration_end) / unit)
    out.append(summary)
    return out


#: The summary in one query (DuckDB, every core): purchase occasions (one per customer and day, or per
#: order line without aggregation), numbered per customer in time order (calibration occasions come
#: first, so their numbers are the same as within the calibration period), then per customer the
#: calibration counts and times and the holdout counts, and, when asked, the full period's. Values are
#: summed as exact decimals (millionths), so the result does not depend on how DuckDB splits the work
#: between threads.
_SUMMARY_SQL = """
WITH occasions AS (
    SELECT customer_id, occasion{per_line}, {value_sum} AS value
    FROM order_lines WHERE occasion <= $observation_end GROUP BY customer_id, occasion{per_line}
), numbered AS (
    SELECT *, occasion <= $calibration_end AS calibration,
           row_number() OVER (PARTITION BY customer_id ORDER BY occasion{per_line}) AS k
    FROM occasions
)
SELECT customer_id,
       count(*) FILTER (WHERE calibration) - 1 AS frequency,
       CAST(epoch_ns(max(occasion) FILTER (WHERE calibration)) - epoch_ns(min(occasion) FILTER (WHERE calibration))
            AS DOUBLE) / $unit_ns AS recency,
       CAST(epoch_ns($calibration_end) - epoch_ns(min(occasion) FILTER (WHERE calibration)) AS DOUBLE) / $unit_ns AS "T"
       {value_columns}
FROM numbered
GROUP BY customer_id
{having}
ORDER BY customer_id
"""


def _summary_sql(engine: Any, lines: _OrderLines, observation_end: pd.Timestamp, calibration_end: pd.Timestamp,
                 unit: pd.Timedelta, *, holdout: bool, full: bool = False) -> pd.DataFrame:
    columns = []
    valued = lines.valued
    if valued:
        columns.append("coalesce(avg(value) FILTER (WHERE calibration AND k > 1), 0)::DOUBLE AS monetary_value")
    if holdout:
        columns.append("count(*) FILTER (WHERE NOT calibration) AS frequency_holdout")
        if valued:
            columns.append("coalesce(avg(value) FILTER (WHERE NOT calibration), 0)::DOUBLE AS monetary_value_holdout")
    if full:  # the same columns over the whole period, and whether the customer started in calibration
        columns += ["count(*) - 1 AS full_frequency",
                    "CAST(epoch_ns(max(occasion)) - epoch_ns(min(occasion)) AS DOUBLE) / $unit_ns AS full_recency",
                    'CAST(epoch_ns($observation_end) - epoch_ns(min(occasion)) AS DOUBLE) / $unit_ns AS "full_T"',
                    "bool_or(calibration) AS in_calibration"]
        if valued:
            columns.append("coalesce(avg(value) FILTER (WHERE k > 1), 0)::DOUBLE AS full_monetary_value")
    sql = _SUMMARY_SQL.format(value_sum=f"sum({exact('value')})" if valued else "0",
                              per_line=", line" if lines.per_line else "",
                              value_columns="".join(f",\n       {c}" for c in columns),
                              having="" if full else "HAVING bool_or(calibration)")
    out = engine.con_.execute(sql, {"observation_end": observation_end.to_datetime64(),
                                    "calibration_end": calibration_end.to_datetime64(),
                                    "unit_ns": float(unit.value)}).df()
    for column in ("frequency", "frequency_holdout", "full_frequency"):
        if column in out:
            out[column] = out[column].astype("int64")
    return out


@dataclass(frozen=True)
class _OrderLines:
    """What the summary query needs to know of the ``order_lines`` it reads (``customer_id, occasion[, value][, line]``)."""

    tz: Any  # the timestamps' time zone (None: naive)
    first: pd.Timestamp | None  # earliest occasion, naive UTC (None: no lines)
    id_dtype: Any  # the customer ids' dtype, given back to the summary (None: as DuckDB returns them)
    valued: bool
    per_line: bool


#: pandas flooring frequencies DuckDB's ``date_trunc`` takes in place (others are read into pandas).
_TRUNCATE = {"D": "day", "h": "hour", "H": "hour", "min": "minute", "T": "minute", "s": "second", "S": "second"}


def _register_occasions(engine: Any, transactions: pd.DataFrame | str | Path, *, customer_id_col: str, datetime_col: str,
                        monetary_value_col: str | None, aggregate_by: str | None) -> _OrderLines:
    """Register ``order_lines`` on ``engine``: from a DataFrame, or from a Parquet file read in place by DuckDB
    (naive timestamps; zoned ones, and flooring DuckDB cannot do, read the columns into pandas first)."""
    required = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    if not isinstance(transactions, pd.DataFrame):
        schema = {row[0]: row[1] for row in engine.con_.execute(f"DESCRIBE SELECT * FROM {parquet_scan(transactions)}").fetchall()}
        missing = [col for col in required if col not in schema]
        if missing:
            raise ValueError(f"transactions ({transactions}): column(s) {missing} not found. Found: {list(schema)}. "
                             "Pass the right names as customer_id_col / datetime_col / monetary_value_col.")
        if schema[datetime_col] in _NAIVE_TIMESTAMPS and (aggregate_by is None or aggregate_by in _TRUNCATE):
            return _register_parquet(engine, transactions, schema, required, customer_id_col=customer_id_col,
                                     datetime_col=datetime_col, monetary_value_col=monetary_value_col, aggregate_by=aggregate_by)
        transactions = pd.read_parquet(transactions, columns=required)
    frame, value_col = _purchase_occasions(transactions, customer_id_col=customer_id_col, datetime_col=datetime_col,
                                           monetary_value_col=monetary_value_col, aggregate_by=aggregate_by)
    engine.register("order_lines", frame)
    return _OrderLines(tz=transactions[datetime_col].dt.tz, first=None if frame.empty else frame["occasion"].min(),
                       id_dtype=transactions[customer_id_col].dtype, valued=value_col is not None, per_line="line" in frame)
def _naive(stamp: pd.Timestamp) -> pd.Timestamp:
    """A period end as the naive UTC time the occasions are compared in."""
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def _purchase_occasions(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    aggregate_by: str | None,
) -> tuple[pd.DataFrame, str | None]:
    """The columns the summary needs: customer, purchase occasion (the time floored to ``aggregate_by``), value."""
    required = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    missing = [col for col in required if col not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions: column(s) {missing} not found. Found: {list(transactions.columns)}. "
            "Pass the right names as customer_id_col / datetime_col / monetary_value_col."
        )
    timestamps = transactions[datetime_col]
    if not pd.api.types.is_datetime64_any_dtype(timestamps):
        raise TypeError(
            f"transactions: column '{datetime_col}' has dtype {timestamps.dtype}, expected datetime64. "
            f"Parse it first, e.g. pd.to_datetime(df['{datetime_col}'], format='%Y%m%d')."
        )
    n_missing = int(transactions[required].isna().any(axis=1).sum())
    if n_missing:
        raise ValueError(
            f"transactions: {n_missing} row(s) have a missing {required} value. "
            "Validate and set them aside (data contract) before summarising."
        )

    occasion = timestamps if aggregate_by is None else timestamps.dt.floor(aggregate_by)
    frame = pd.DataFrame(  # the columns themselves (no copy into Python objects): DuckDB reads them as they are
        {
            "customer_id": transactions[customer_id_col].reset_index(drop=True),
            "occasion": (occasion if occasion.dt.tz is None else occasion.dt.tz_convert(None)).reset_index(drop=True),
        }
    )
    value_col = None
    if monetary_value_col is not None:
        value_col = "value"
        frame[value_col] = pd.to_numeric(transactions[monetary_value_col]).to_numpy(dtype="float64")
    if aggregate_by is None:  # every order line its own occasion, in the order of the lines
        frame["line"] = np.arange(len(frame))
    return frame, value_col


def _as_timestamp(value: str | pd.Timestamp, tz: Any, name: str) -> pd.Timestamp:
    """Parse a period end, in the time zone ``tz`` of the transaction timestamps (None: naive)."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: cannot parse {value!r} as a date, e.g. '1997-09-30'.") from error
    if tz is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    return stamp


def _unit_timedelta(time_unit: str) -> pd.Timedelta:
    if time_unit not in PERIODS_PER_MONTH:
        raise ValueError(f"time_unit: expected one of {sorted(PERIODS_PER_MONTH)}, found {time_unit!r}.")
    return pd.Timedelta(1, unit=time_unit)


_NAIVE_TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")


def _register_parquet(engine: Any, path: str | Path, schema: dict[str, str], required: list[str], *, customer_id_col: str,
                      datetime_col: str, monetary_value_col: str | None, aggregate_by: str | None) -> _OrderLines:
    """``order_lines`` as a view over the Parquet file, with the checks :func:`_purchase_occasions` makes."""
    per_line = aggregate_by is None
    source = parquet_scan(path, row_numbers=per_line)
    # missing as pandas counts it: NULL, or a float NaN (which other writers than pandas store as a value)
    checks = [f'"{col}" IS NULL' + (f' OR isnan("{col}")' if schema[col] in ("FLOAT", "DOUBLE") else "") for col in required]
    n_missing = engine.con_.execute(f"SELECT count(*) FROM {source} WHERE " + " OR ".join(checks)).fetchone()[0]
    if n_missing:
        raise ValueError(
            f"transactions: {n_missing} row(s) have a missing {required} value. "
            "Validate and set them aside (data contract) before summarising."
        )
    occasion = f'"{datetime_col}"' if per_line else f"date_trunc('{_TRUNCATE[aggregate_by]}', \"{datetime_col}\")"
    columns = [f'"{customer_id_col}" AS customer_id', f"{occasion} AS occasion"]
    if monetary_value_col is not None:
        columns.append(f'CAST("{monetary_value_col}" AS DOUBLE) AS value')
    if per_line:  # every order line its own occasion, in the order of the lines
        columns.append("file_row_number AS line")
    engine.con_.execute(f"CREATE OR REPLACE VIEW order_lines AS SELECT {', '.join(columns)} FROM {source}")
    first = engine.con_.execute("SELECT min(occasion) FROM order_lines").fetchone()[0]
    strings = schema[customer_id_col] == "VARCHAR"
    return _OrderLines(tz=None, first=None if first is None else pd.Timestamp(first),
                       id_dtype="str" if strings else None,
                       valued=monetary_value_col is not None, per_line=per_line)
