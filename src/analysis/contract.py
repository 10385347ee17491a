"""The data contract: raw tables in, validated tables and a row ledger out.

Every input row is either kept or set aside with exactly one reason; the ledger counts both, so
``kept + set aside == rows read`` holds for every table. Checks run in a fixed order and the
first that fails names the reason. The validated tables are then checked against pandera
schemas; inside the package we trust their types.
"""

from __future__ import annotations

import calendar
import functools
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import privacy
from .config import ConfigError, RunConfig

# ------------------------------------------------------------------------------------------
# Schemas of validated tables
# ------------------------------------------------------------------------------------------


@functools.cache
def schemas() -> dict[str, Any]:
    """The pandera schema of each validated table, built on first use.

    pandera is imported here rather than with the module: only data preparation validates
    (:func:`prepare`), while every page of a run imports this module in its own kernel (for the
    ledger, through :mod:`analysis.workspace`). Importing pandera costs each of them a quarter to
    half a second, more with the ``spark`` extra installed (pandera then imports ``pyspark.pandas``).

    Examples
    --------
    >>> sorted(schemas())
    ['customers', 'events', 'survey', 'transactions']
    """
    import pandera.pandas as pa

    identifier = pa.Column(str, nullable=False)
    customers = pa.DataFrameSchema(
        {
            "customer_id": pa.Column(str, nullable=False, unique=True),
            "age": pa.Column(float, pa.Check.in_range(0, 120), nullable=True, required=False),
            "income": pa.Column(float, nullable=True, required=False),
            "children": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
            "latitude": pa.Column(float, pa.Check.in_range(-90, 90), nullable=True, required=False),
            "longitude": pa.Column(float, pa.Check.in_range(-180, 180), nullable=True, required=False),
        },
        strict=False,
        coerce=False,
        name="customers",
    )
    transactions = pa.DataFrameSchema(
        {
            "customer_id": identifier,
            "order_id": identifier,
            "timestamp": pa.Column("datetime64[ns]", nullable=False),
            "product_id": pa.Column(str, nullable=False),
            "category": pa.Column(str, nullable=False),
            "quantity": pa.Column(float, pa.Check.gt(0), nullable=False),
            "amount": pa.Column(float, pa.Check.ge(0), nullable=False),
            "margin": pa.Column(float, nullable=True, required=False),
        },
        strict=False,
        name="transactions",
    )
    survey = pa.DataFrameSchema({"customer_id": pa.Column(str, nullable=False, unique=True)}, strict=False, name="survey")
    events = pa.DataFrameSchema(
        {
            "customer_id": identifier,
            "timestamp": pa.Column("datetime64[ns]", nullable=False),
            "event_type": pa.Column(str, nullable=False),
        },
        strict=False,
        name="events",
    )
    return {"customers": customers, "transactions": transactions, "survey": survey, "events": events}


NUMERIC_CUSTOMER_COLUMNS = ("age", "birth_year", "income", "children", "teens", "latitude", "longitude", "population", "spend")
CATEGORICAL_CUSTOMER_COLUMNS = (
    "gender", "education", "occupation", "marital_status", "country", "region", "state", "city",
    "postal_code", "urban_rural", "climate_zone", "customer_segment",
)
CUSTOMER_ATTRIBUTES_ON_TRANSACTIONS = ("country", "region", "state", "city", "postal_code", "customer_segment", "customer_name")

# ------------------------------------------------------------------------------------------
# Value parsers (vectorised)
# ------------------------------------------------------------------------------------------


def normalize_ids(values: pd.Series) -> pd.Series:
    """Ids as clean strings: trimmed, empty -> missing, ``17850.0`` -> ``17850``.

    Spreadsheet exports turn integer ids into floats; the trailing ``.0`` is dropped so the same
    customer matches across tables.
    """
    return _as_objects(_id_text(values))


def _id_text(values: pd.Series) -> pd.Series:
    """:func:`normalize_ids` as a string Series (missing: ``<NA>``): compact, one buffer, no Python objects."""
    text = values.astype("string").str.strip()
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return text.mask(text.isin(["", "nan", "NaN", "None", "NULL", "null"]))


def _as_objects(text: pd.Series) -> pd.Series:
    """A string Series as object dtype, missing as None, with one Python string per distinct value.

    Converting a string column value by value makes one Python object per row (some 60 bytes
    each); a column of order lines repeats a few hundred products, brands or channels millions of
    times, so the rows share the objects of the distinct values instead (8 bytes a row).
    """
    codes, distinct = pd.factorize(text, use_na_sentinel=True)
    objects = np.empty(len(distinct) + 1, dtype=object)  # the last one (None) is where code -1 points
    objects[:-1] = np.asarray(distinct, dtype=object)
    return pd.Series(objects[codes], index=text.index, dtype=object, name=text.name)


def parse_numbers(values: pd.Series, decimal: str = ".") -> pd.Series:
    """Numbers from text such as ``"$1,234.50"``, ``"(12.00)"`` or ``"1 234,5"`` (decimal=',').

    Unparseable values become NaN; the caller decides whether that sets a row aside.
    """
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.strip()
    negative = text.str.match(r"^\(.*\)$", na=False)
    text = text.str.replace(r"[()\s$£€¥\u00a0]", "", regex=True)
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        text = text.str.replace(",", "", regex=False)
    out = pd.to_numeric(text, errors="coerce").astype(float)
    return out.where(~negative, -out)


#: A time followed by a UTC offset or ``Z``: ``10:00:00+02:00``, ``10:00Z``, ``10:00:00.5-0500``.
_UTC_OFFSET = r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$"


def has_utc_offset(values: pd.Series) -> pd.Series:
    """Whether each text timestamp carries a UTC offset (``2024-03-05T10:00:00+02:00``) or ``Z``."""
    if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
        return pd.Series(False, index=values.index)
    distinct = pd.Series(pd.unique(values.dropna()), dtype=object)  # timestamps repeat: test each once
    zoned = distinct[distinct.astype(str).str.strip().str.contains(_UTC_OFFSET, regex=True).astype(bool).to_numpy()]
    if zoned.empty:
        return pd.Series(False, index=values.index)
    return values.isin(set(zoned)).astype(bool)


def parse_datetimes(values: pd.Series, date_format: str | None = None, dayfirst: bool = False) -> pd.Series:
    """Datetimes from text; unparseable -> NaT.

    With ``date_format`` only that format is accepted. Without it, ISO 8601 is tried first
    (fast) and the remaining values are parsed one format per value (slower, mixed formats).

    Timestamps are stored in one zone, without a zone attached: those that carry a UTC offset
    (``2024-03-05T10:00:00+02:00``, ``...Z``) or come with a zone (Parquet) are converted to UTC
    (``2024-03-05 08:00:00``); those without one are taken as written.

    Examples
    --------
    >>> parse_datetimes(pd.Series(["2024-03-05T10:00:00+02:00", "2024-03-05 09:30"])).tolist()
    [Timestamp('2024-03-05 08:00:00'), Timestamp('2024-03-05 09:30:00')]
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.to_datetime(values)
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_convert(None)
        return out.astype("datetime64[ns]")
    text = values.astype("string").str.strip()
    if date_format:
        zoned_format = "%z" in date_format or "%Z" in date_format
        out = pd.to_datetime(text, format=date_format, errors="coerce", utc=zoned_format)
        return (out.dt.tz_convert(None) if zoned_format else out).astype("datetime64[ns]")
    zoned = has_utc_offset(text)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for part, utc in ((~zoned, False), (zoned, True)):
        if not part.any():
            continue
        piece = pd.to_datetime(text[part], format="ISO8601", errors="coerce", utc=utc)
        todo = piece.isna() & text[part].notna()
        if todo.any():
            piece = piece.astype(object)
            piece[todo] = pd.to_datetime(text[part][todo], format="mixed", dayfirst=dayfirst, errors="coerce", utc=utc)
            piece = pd.to_datetime(piece, utc=utc)
        if utc:
            piece = piece.dt.tz_convert(None)
        out[part] = piece.astype("datetime64[ns]")
    return out


def _as_str(text: pd.Series) -> pd.Series:
    """``text.astype(str)`` held in one Arrow array.

    Text read from Parquet comes in pieces (one per row group), and selecting rows keeps the
    pieces. The Parquet writer pages a column piece by piece, and where a large dictionary gives
    way to plain encoding depends on them; one piece writes the same file as text built from
    Python strings does.
    """
    out = text.astype(str)
    if not isinstance(out.array, pd.arrays.ArrowStringArray):
        return out
    import pyarrow as pa

    arrow = pa.array(out.array)
    if not isinstance(arrow, pa.ChunkedArray) or arrow.num_chunks <= 1:
        return out
    return pd.Series(pd.array(arrow.combine_chunks(), dtype=out.dtype), index=out.index, name=out.name)


def _clean_text(values: pd.Series) -> pd.Series:
    """Text trimmed, empty -> None, as objects (see :func:`_as_objects`)."""
    return _as_objects(_text(values))


def _text(values: pd.Series) -> pd.Series:
    """:func:`_clean_text` as a string Series (missing: ``<NA>``)."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


# ------------------------------------------------------------------------------------------
# Value formats: checks that refuse a source read the wrong way (decimal mark, day/month order)
# ------------------------------------------------------------------------------------------

#: Larger amounts (one order line, one customer's income) and quantities are not believable; they
#: are set aside (order lines) or blanked (customer attributes), as are inf and NaN.
ABSURD_AMOUNT = 1e12
ABSURD_QUANTITY = 1e9


def _plausible(values: pd.Series, limit: float) -> pd.Series:
    """Finite and within +/- ``limit`` (missing values count as plausible: other checks judge them)."""
    numbers = values.astype(float)
    return numbers.isna() | (np.isfinite(numbers) & (numbers.abs() <= limit))


def _note_utc_offsets(ledger: Ledger, table: str, raw: pd.Series) -> None:
    ledger.note(table, "timestamps with a UTC offset converted to UTC (all times are stored without a zone)",
                int(has_utc_offset(raw).sum()))


# A decimal mark is the last "." or "," followed by 1-2 or 4+ digits: "45.00", "4,5", "48.8566".
# Followed by exactly 3 digits ("1,234", "1.234") it may as well group thousands, so it says nothing.
_DECIMAL_MARK = r"\d([.,])(?:\d{1,2}|\d{4,})$"
# A whole value "03/04/2024" (also with "." or "-", a 2-digit year, and a time such as "10:30", "10:30:15 PM").
_DAY_MONTH = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?:[ T]\d{1,2}:\d\d(?::\d\d(?:\.\d+)?)?(?:\s*[AaPp][Mm])?)?$"

#: Columns read as numbers and as dates, per table (contract names).
NUMBER_COLUMNS = {
    "transactions": ("amount", "unit_price", "quantity", "margin"),
    "customers": NUMERIC_CUSTOMER_COLUMNS,
}
DATE_COLUMNS = {"transactions": ("timestamp",), "events": ("timestamp",), "customers": ("signup_date",), "survey": ("response_date",)}


def _text_values(values: pd.Series) -> pd.Series:
    """Distinct non-empty text values (none for a column already typed by its file format)."""
    if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
        return pd.Series([], dtype=object)
    text = values.dropna().astype(str).str.strip()
    return pd.Series(text[text != ""].unique(), dtype=object)


def decimal_mark_problem(values: pd.Series, decimal: str) -> str | None:
    """Why ``values`` cannot be read with ``decimal`` as the decimal mark, or None.

    A column written with the other mark (``45.00`` under ``decimal: ','``, read as 4500; or
    ``12,50`` under ``'.'``, read as 1250), or with both marks, is a problem.

    Examples
    --------
    >>> decimal_mark_problem(pd.Series(["45.00", "1,234.50"]), ",")
    "is written with '.' as the decimal mark ('45.00'), which decimal ',' reads as 4500"
    >>> decimal_mark_problem(pd.Series(["45.00", "1,234"]), ".") is None
    True
    """
    text = _text_values(values).str.replace(r"[()\s$£€¥\u00a0]", "", regex=True)
    marks = text.str.extract(_DECIMAL_MARK, expand=False)
    other = "," if decimal == "." else "."
    written_other, written_ours = text[marks == other], text[marks == decimal]
    if written_other.empty:
        return None
    example = written_other.iloc[0]
    if not written_ours.empty:
        return (f"mixes '{decimal}' and '{other}' as the decimal mark ('{written_ours.iloc[0]}' and '{example}'), "
                f"so one of them is misread")
    misread = parse_numbers(pd.Series([example]), decimal).iloc[0]
    return f"is written with '{other}' as the decimal mark ('{example}'), which decimal '{decimal}' reads as {misread:g}"


def _reading(day: int, month: int, year: str) -> str:
    full = int(year) + (2000 if int(year) < 70 else 1900) if len(year) == 2 else int(year)
    return f"{day} {calendar.month_name[month]} {full}"


def day_month_problem(values: pd.Series, dayfirst: bool, dayfirst_given: bool) -> str | None:
    """Why dates such as ``03/04/2024`` in ``values`` cannot be read safely, or None.

    A value whose first two numbers are both 12 or less reads two ways. That is fine when the
    column settles the order: other values can only be read one way (``03/15/2024`` is
    month-first) and the reading used (``dayfirst``, month-first unless given) agrees. Otherwise
    the column is refused, naming both readings.

    Examples
    --------
    >>> day_month_problem(pd.Series(["03/04/2024", "03/15/2024"]), False, False) is None
    True
    >>> print(day_month_problem(pd.Series(["03/04/2024", "13/04/2024"]), False, False))
    has '03/04/2024', which is 3 April 2024 read day-first or 4 March 2024 read month-first, and '13/04/2024', which can only be day-first
    """
    text = _text_values(values)
    parts = text.str.extract(_DAY_MONTH).dropna()
    if parts.empty:
        return None
    text = text[parts.index]
    first, second = parts[0].astype(int), parts[1].astype(int)
    ambiguous = text[(first <= 12) & (second <= 12) & (first != second) & (first > 0) & (second > 0)]
    if ambiguous.empty:
        return None
    day_first = text[(first > 12) & (first <= 31) & (second <= 12)]
    month_first = text[(second > 12) & (second <= 31) & (first <= 12)]
    example = ambiguous.iloc[0]
    a, b, year = int(parts.loc[ambiguous.index[0], 0]), int(parts.loc[ambiguous.index[0], 1]), parts.loc[ambiguous.index[0], 2]
    both = (f"has '{example}', which is {_reading(a, b, year)} read day-first or {_reading(b, a, year)} read month-first")
    if dayfirst_given:
        against = month_first if dayfirst else day_first
        if against.empty:
            return None
        return f"{both}, and '{against.iloc[0]}', which can only be {'month' if dayfirst else 'day'}-first, although dayfirst is {str(dayfirst).lower()}"
    if not day_first.empty and not month_first.empty:
        return f"{both}, and both '{day_first.iloc[0]}' (day-first) and '{month_first.iloc[0]}' (month-first)"
    if not day_first.empty:
        return f"{both}, and '{day_first.iloc[0]}', which can only be day-first"
    if month_first.empty:
        return f"{both}, and no date in the column settles which"
    return None


def check_values(frame: pd.DataFrame, mapping: dict[str, str], cfg: RunConfig, table: str, source: str) -> None:
    """Refuse a table whose numbers or dates would be misread as the config says to read them.

    Run on the whole table by :func:`prepare` and on the first rows by ``analysis check``.

    Parameters
    ----------
    frame : DataFrame
        Contract-named raw values.
    mapping : dict
        Contract name -> the user's column (for the message).
    source : str
        The file, for the message.

    Raises
    ------
    ConfigError
        One sentence naming the file, the column, what it holds and the config key that fixes it.
    """
    src = cfg.sources[table]
    for column in NUMBER_COLUMNS.get(table, ()):
        if column in frame:
            problem = decimal_mark_problem(frame[column], src.decimal)
            if problem:
                other = "," if src.decimal == "." else "."
                raise ConfigError(
                    f"{source}: column '{mapping.get(column, column)}' {problem}. Set sources.{table}.decimal: '{other}' "
                    f"in {cfg.display_path()} to match the file (or fix the file so it uses one mark)."
                )
    if src.date_format:
        return
    for column in DATE_COLUMNS.get(table, ()):
        if column in frame:
            problem = day_month_problem(frame[column], src.dayfirst, "dayfirst" in src.model_fields_set)
            if problem:
                raise ConfigError(
                    f"{source}: column '{mapping.get(column, column)}' {problem}. Set sources.{table}.date_format in "
                    f"{cfg.display_path()} (e.g. '%d/%m/%Y' day-first or '%m/%d/%Y' month-first), or sources.{table}.dayfirst."
                )



# ------------------------------------------------------------------------------------------
# The ledger
# ------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Counts of rows kept and set aside, by table and reason, plus notes on kept rows."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def record(self, table: str, reasons: pd.Series) -> None:
        """Record one table's outcome from a per-row reason (missing = kept)."""
        kept = int(reasons.isna().sum())
        self.rows.append({"table": table, "outcome": "kept", "reason": "", "rows": kept})
        counts = reasons.dropna().value_counts()
        for reason in _REASON_ORDER + sorted(set(counts.index) - set(_REASON_ORDER)):
            if reason in counts.index:
                self.rows.append({"table": table, "outcome": "set aside", "reason": reason, "rows": int(counts[reason])})

    def note(self, table: str, message: str, count: int) -> None:
        if count:
            self.notes.append({"table": table, "note": message, "count": int(count)})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["table", "outcome", "reason", "rows"])

    def totals(self) -> pd.DataFrame:
        """Per table: rows read, kept, set aside (and a check that they add up)."""
        df = self.frame()
        if df.empty:
            return pd.DataFrame(columns=["table", "read", "kept", "set_aside"])
        kept = df[df.outcome == "kept"].groupby("table", sort=False)["rows"].sum()
        aside = df[df.outcome == "set aside"].groupby("table", sort=False)["rows"].sum()
        out = pd.DataFrame({"kept": kept}).join(pd.DataFrame({"set_aside": aside})).fillna(0).astype(int)
        out["read"] = out["kept"] + out["set_aside"]
        return out.reset_index()[["table", "read", "kept", "set_aside"]]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "notes": self.notes, "totals": self.totals().to_dict(orient="records")}


_REASON_ORDER = [
    "missing_customer_id", "missing_order_id", "unparseable_timestamp", "unparseable_amount", "implausible_amount",
    "before_min_date", "after_as_of", "cancellation", "return", "non_positive_amount",
    "duplicate_line", "duplicate_customer_id", "duplicate_response", "no_answers", "missing_event_type",
]


def _assign(reasons: pd.Series, mask: pd.Series | np.ndarray, reason: str) -> None:
    """Give ``reason`` to rows in ``mask`` that have no reason yet (first check wins)."""
    mask = pd.Series(np.asarray(mask, dtype=bool), index=reasons.index)
    reasons[mask & reasons.isna()] = reason


def _duplicated_rows(frame: pd.DataFrame) -> pd.Series:
    """``frame.duplicated(keep="first")``, holding one column's codes at a time.

    pandas factorizes every column first and keeps all their codes together (8 bytes per row
    and column). Here each column's codes are folded into one running row id, which is
    re-numbered 0..k-1 after each column; equal rows get equal ids exactly as in pandas (missing
    values count as equal, as there).
    """
    if len(frame.columns) < 2 or frame.empty:
        return frame.duplicated(keep="first")
    row_id = np.zeros(len(frame), dtype=np.int64)
    for position in range(len(frame.columns)):
        codes, uniques = pd.factorize(frame.iloc[:, position], use_na_sentinel=True)
        # missing (code -1) becomes a value of its own, 0; no overflow: ids and codes <= rows
        row_id, distinct = pd.factorize(row_id * (len(uniques) + 1) + (codes + 1))
        if len(distinct) == len(frame):  # every row already differs
            break
    return pd.Series(pd.Series(row_id).duplicated(keep="first").to_numpy(), index=frame.index)


def _set_aside_frame(original: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    aside = reasons.notna()
    out = original.loc[aside].copy()
    out.insert(0, "source_row", np.flatnonzero(aside.to_numpy()) + 1)
    out.insert(1, "reason", reasons[aside].to_numpy())
    return out


# ------------------------------------------------------------------------------------------
# Per-table preparation
# ------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Validated tables, set-aside rows and the ledger of one run."""

    tables: dict[str, pd.DataFrame]
    set_aside: dict[str, pd.DataFrame]
    ledger: Ledger
    mappings: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Per table, the user columns kept out of the run as personal data, with why (names only).
    pii: dict[str, dict[str, str]] = field(default_factory=dict)


def _time_window_reasons(reasons: pd.Series, ts: pd.Series, raw_ts: pd.Series, cfg: RunConfig) -> None:
    _assign(reasons, ts.isna() & raw_ts.notna(), "unparseable_timestamp")
    _assign(reasons, ts.isna(), "unparseable_timestamp")
    _assign(reasons, ts < pd.Timestamp(cfg.min_date), "before_min_date")
    # as_of is a date: everything during that day still counts as "on or before".
    _assign(reasons, ts >= pd.Timestamp(cfg.as_of) + pd.Timedelta(days=1), "after_as_of")


def prepare_transactions(raw_frame: pd.DataFrame, original: pd.DataFrame, cfg: RunConfig, ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Validate order lines; return (kept, set aside with reasons, {"returns": ...}).

    ``returns`` holds the cancellations and returns (set aside from the purchases) in contract
    form with positive amounts, for return-rate features; it is derived, not counted twice.
    """
    src = cfg.sources["transactions"]
    where = f"{cfg.display_path()} columns.transactions"
    if "timestamp" not in raw_frame.columns:
        raise ConfigError(
            f"transactions: no 'timestamp' column. Map it in {where}.timestamp. Found: {list(original.columns)[:40]}."
        )
    if "amount" not in raw_frame.columns and "unit_price" not in raw_frame.columns:
        raise ConfigError(
            f"transactions: neither 'amount' nor 'unit_price' is mapped. Map the line revenue in {where}.amount, "
            f"or the price per unit in {where}.unit_price (amount = quantity x unit_price). Found: {list(original.columns)[:40]}."
        )
    n = len(raw_frame)
    reasons = pd.Series([None] * n, index=raw_frame.index, dtype=object)
    # Ids stay strings here (not Python objects): on millions of order lines the objects cost
    # several times the table. Only kept rows are turned into output columns, after the checks.
    customer_id = _id_text(raw_frame["customer_id"])
    ts = parse_datetimes(raw_frame["timestamp"], src.date_format, src.dayfirst)
    _note_utc_offsets(ledger, "transactions", raw_frame["timestamp"])
    if "order_id" in raw_frame:
        order_id = _id_text(raw_frame["order_id"])
    else:
        # No order number (e.g. CDNOW): one order per customer per timestamp.
        order_id = customer_id + "@" + ts.dt.strftime("%Y-%m-%dT%H:%M:%S").astype("string")
        ledger.note("transactions", "no order id mapped: orders are customer x timestamp", len(raw_frame))
    quantity = parse_numbers(raw_frame["quantity"], src.decimal) if "quantity" in raw_frame else pd.Series(1.0, index=raw_frame.index)
    if "amount" in raw_frame:
        amount = parse_numbers(raw_frame["amount"], src.decimal)
        unit_price = parse_numbers(raw_frame["unit_price"], src.decimal) if "unit_price" in raw_frame else amount / quantity
    else:
        unit_price = parse_numbers(raw_frame["unit_price"], src.decimal)
        amount = (quantity * unit_price).round(4)
    _assign(reasons, customer_id.isna(), "missing_customer_id")
    _assign(reasons, order_id.isna(), "missing_order_id")
    _time_window_reasons(reasons, ts, raw_frame["timestamp"], cfg)
    _assign(reasons, amount.isna() | quantity.isna(), "unparseable_amount")
    # inf, 1e308 and the like: no order line is worth that, and one would make every sum infinite
    _assign(reasons, ~_plausible(amount, ABSURD_AMOUNT) | ~_plausible(quantity, ABSURD_QUANTITY), "implausible_amount")
    if src.cancellation_prefix:
        _assign(reasons, order_id.fillna("").str.startswith(src.cancellation_prefix), "cancellation")
    _assign(reasons, (quantity < 0) | (amount < 0), "return")
    zero_ok = src.keep_zero_amounts
    _assign(reasons, ((amount < 0) if zero_ok else (amount <= 0)) | (quantity == 0), "non_positive_amount")
    if src.drop_duplicate_lines:
        _assign(reasons, _duplicated_rows(original), "duplicate_line")
    ledger.record("transactions", reasons)

    keep = reasons.isna()
    if not keep.any():
        raise _nothing_kept_error(reasons, ts, cfg)
    returned = reasons.isin(["cancellation", "return"])
    returns = pd.DataFrame(
        {
            "customer_id": _as_str(customer_id[returned]),
            "order_id": _as_str(order_id[returned]),
            "timestamp": ts[returned],
            "quantity": quantity[returned].abs(),
            "amount": amount[returned].abs(),
            "reason": reasons[returned].astype(str),
        }
    ).reset_index(drop=True)
    kept = pd.DataFrame(
        {
            "customer_id": customer_id[keep],
            "order_id": order_id[keep],
            "timestamp": ts[keep],
            "quantity": quantity[keep],
            "unit_price": unit_price[keep],
            "amount": amount[keep],
        },
        copy=False,
    )
    del customer_id, order_id, ts, quantity, unit_price, amount  # every row's values: the kept ones are copied
    # Text is cleaned on the kept rows only (each step works value by value); the columns the
    # contract does not type stay objects, one per distinct value (see _as_objects).
    product_name = _text(raw_frame["product_name"][keep]) if "product_name" in raw_frame else None
    if "product_id" in raw_frame:
        kept["product_id"] = _id_text(raw_frame["product_id"][keep]).fillna("unknown")
    else:
        kept["product_id"] = product_name.fillna("unknown") if product_name is not None else "unknown"
    if product_name is not None:
        kept["product_name"] = _as_objects(product_name)
    kept["category"] = _text(raw_frame["category"][keep]).fillna("Unknown") if "category" in raw_frame else "All products"
    if "margin" in raw_frame:
        margin = parse_numbers(raw_frame["margin"][keep], src.decimal)
        bad = margin.notna() & ~_plausible(margin, ABSURD_AMOUNT)
        ledger.note("transactions", "margin not finite or implausibly large: blanked", int(bad.sum()))
        kept["margin"] = margin.mask(bad)
    for col in ("channel", "brand") + CUSTOMER_ATTRIBUTES_ON_TRANSACTIONS:
        if col in raw_frame:
            kept[col] = _clean_text(raw_frame[col][keep])
    kept = kept.reset_index(drop=True)
    for col in ("customer_id", "order_id", "product_id", "category"):
        kept[col] = _as_str(kept[col])
    return kept, _set_aside_frame(original, reasons), {"returns": returns}


def _nothing_kept_error(reasons: pd.Series, ts: pd.Series, cfg: RunConfig) -> ConfigError:
    """Why no order line survived, with the fix for the usual cause (``as_of`` before the data)."""
    counts = reasons.value_counts()
    shown = ", ".join(f"{n:,} {reason}" for reason, n in counts.items())
    head = f"transactions: none of the {len(reasons):,} rows could be kept ({shown})."
    dated = ts.dropna()
    if counts.get("after_as_of", 0) and not dated.empty and dated.min() > pd.Timestamp(cfg.as_of):
        return ConfigError(
            f"{head} as_of is {cfg.as_of}, before every transaction: they run from {dated.min():%Y-%m-%d} "
            f"to {dated.max():%Y-%m-%d}. Set as_of in {cfg.display_path()} to {dated.max():%Y-%m-%d} or later "
            f"(the day after the last purchase is usual)."
        )
    if counts.get("before_min_date", 0) and not dated.empty and dated.max() < pd.Timestamp(cfg.min_date):
        return ConfigError(
            f"{head} min_date is {cfg.min_date}, after every transaction (they run from {dated.min():%Y-%m-%d} "
            f"to {dated.max():%Y-%m-%d}). Lower min_date in {cfg.display_path()}."
        )
    if counts.index[0] == "unparseable_timestamp":
        return ConfigError(
            f"{head} Check that columns.transactions.timestamp maps the order date, and set "
            f"sources.transactions.date_format in {cfg.display_path()} if dates are written unusually."
        )
    return ConfigError(
        f"{head} Check the column mapping under columns.transactions in {cfg.display_path()}; the rows "
        f"and their reasons are listed by source row in the run's set_aside/transactions.csv."
    )


def prepare_customers(raw_frame: pd.DataFrame, original: pd.DataFrame, cfg: RunConfig, ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate the customer table; return (kept, set aside with reasons)."""
    src = cfg.sources["customers"]
    reasons = pd.Series([None] * len(raw_frame), index=raw_frame.index, dtype=object)
    customer_id = _id_text(raw_frame["customer_id"])
    _assign(reasons, customer_id.isna(), "missing_customer_id")
    _assign(reasons, customer_id.duplicated(keep="first") & customer_id.notna(), "duplicate_customer_id")
    ledger.record("customers", reasons)
    keep = reasons.isna()
    kept = pd.DataFrame({"customer_id": _as_str(customer_id[keep])})
    for col in raw_frame.columns:
        if col == "customer_id":
            continue
        if col in NUMERIC_CUSTOMER_COLUMNS:
            numbers = parse_numbers(raw_frame[col][keep], src.decimal)
            bad = numbers.notna() & ~_plausible(numbers, ABSURD_AMOUNT)
            ledger.note("customers", f"{col}: values not finite or implausibly large blanked", int(bad.sum()))
            kept[col] = numbers.mask(bad)
        elif col == "signup_date":
            kept[col] = parse_datetimes(raw_frame[col], src.date_format, src.dayfirst)[keep]
            _note_utc_offsets(ledger, "customers", raw_frame[col][keep])
        else:
            kept[col] = _clean_text(raw_frame[col][keep])
    if "birth_year" in kept and "age" not in kept:
        kept["age"] = float(cfg.as_of.year) - kept["birth_year"]
    if "age" in kept:
        bad = (kept["age"] < 0) | (kept["age"] > 110)
        ledger.note("customers", "implausible age (outside 0-110) blanked", int(bad.sum()))
        kept.loc[bad, "age"] = np.nan
    for col, lo, hi in (("latitude", -90, 90), ("longitude", -180, 180)):
        if col in kept:
            bad = (kept[col] < lo) | (kept[col] > hi)
            ledger.note("customers", f"{col} outside {lo}..{hi} blanked", int(bad.sum()))
            kept.loc[bad, col] = np.nan
    if "children" in kept:
        bad = kept["children"] < 0
        ledger.note("customers", "negative children count blanked", int(bad.sum()))
        kept.loc[bad, "children"] = np.nan
    return kept.reset_index(drop=True), _set_aside_frame(original, reasons)


def prepare_survey(raw_frame: pd.DataFrame, original: pd.DataFrame, cfg: RunConfig, ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate survey answers: Likert items numeric in range (else blanked), reverse items flipped."""
    scfg = cfg.survey
    items = list(scfg.items) or [c for c in raw_frame.columns if c not in ("customer_id", "response_date")]
    answers = pd.DataFrame({item: parse_numbers(raw_frame[item]) for item in items}, index=raw_frame.index)
    # text answers ("agree", "n/a") are not on the scale either: blank and count them, not as "missing"
    not_numbers = pd.DataFrame({item: answers[item].isna() & _text(raw_frame[item]).notna() for item in items}, index=raw_frame.index)
    out_of_range = (answers < scfg.likert_min) | (answers > scfg.likert_max) | (answers.notna() & (answers % 1 != 0)) | not_numbers
    answers = answers.mask(out_of_range)
    reasons = pd.Series([None] * len(raw_frame), index=raw_frame.index, dtype=object)
    customer_id = _id_text(raw_frame["customer_id"])
    _assign(reasons, customer_id.isna(), "missing_customer_id")
    _assign(reasons, answers.isna().all(axis=1), "no_answers")
    _assign(reasons, customer_id.duplicated(keep="first") & customer_id.notna(), "duplicate_response")
    ledger.record("survey", reasons)
    keep = reasons.isna()
    ledger.note("survey", f"answers outside {scfg.likert_min}..{scfg.likert_max}, not whole numbers or not numbers blanked", int(out_of_range[keep].sum().sum()))
    ledger.note("survey", "missing answers (partial responses)", int((answers[keep].isna() & ~out_of_range[keep]).sum().sum()))
    for item in scfg.reverse:
        answers[item] = scfg.likert_min + scfg.likert_max - answers[item]
    kept = pd.concat([pd.DataFrame({"customer_id": _as_str(customer_id[keep])}), answers[keep]], axis=1)
    if "response_date" in raw_frame:
        src = cfg.sources["survey"]
        kept["response_date"] = parse_datetimes(raw_frame["response_date"], src.date_format, src.dayfirst)[keep]
    return kept.reset_index(drop=True), _set_aside_frame(original, reasons)


def prepare_events(raw_frame: pd.DataFrame, original: pd.DataFrame, cfg: RunConfig, ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate web/app analytics events (sessions, views, carts, e-mail opens and clicks)."""
    if "timestamp" not in raw_frame or "event_type" not in raw_frame:
        raise ConfigError(
            f"events: map 'timestamp' and 'event_type' under columns.events in {cfg.display_path()}. "
            f"Found: {list(original.columns)[:40]}."
        )
    src = cfg.sources["events"]
    reasons = pd.Series([None] * len(raw_frame), index=raw_frame.index, dtype=object)
    customer_id = _id_text(raw_frame["customer_id"])
    ts = parse_datetimes(raw_frame["timestamp"], src.date_format, src.dayfirst)
    _note_utc_offsets(ledger, "events", raw_frame["timestamp"])
    event_type = _text(raw_frame["event_type"])
    _assign(reasons, customer_id.isna(), "missing_customer_id")
    _time_window_reasons(reasons, ts, raw_frame["timestamp"], cfg)
    _assign(reasons, event_type.isna(), "missing_event_type")
    ledger.record("events", reasons)
    keep = reasons.isna()
    kept = pd.DataFrame({"customer_id": _as_str(customer_id[keep]), "timestamp": ts[keep], "event_type": _as_str(event_type[keep].astype(str).str.lower())})
    for col in ("product_id", "channel"):
        if col in raw_frame:
            kept[col] = _clean_text(raw_frame[col][keep])
    return kept.reset_index(drop=True), _set_aside_frame(original, reasons)


LOCATION_COLUMNS = ("country", "region", "state", "city", "postal_code")


def _modal_rows(transactions: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Per customer, the most frequent combination of ``cols`` (ties: the most recent order)."""
    known = transactions.dropna(subset=cols, how="all")
    counts = known.groupby(["customer_id", *cols], observed=True, dropna=False).agg(n=("order_id", "size"), last=("timestamp", "max")).reset_index()
    counts = counts.sort_values(["customer_id", "n", "last"], ascending=[True, False, False], kind="stable")
    return counts.drop_duplicates("customer_id")[["customer_id", *cols]]


def customers_from_transactions(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per customer from order lines: each attribute's most frequent value.

    Location columns are taken together (the customer's most frequent country/region/state/city
    combination), so a customer who ships to several addresses gets a consistent one, not the
    modal state of one address and the modal city of another.
    """
    out = pd.DataFrame({"customer_id": np.sort(transactions["customer_id"].unique())})
    location = [c for c in LOCATION_COLUMNS if c in transactions]
    groups = ([location] if location else []) + [[c] for c in CUSTOMER_ATTRIBUTES_ON_TRANSACTIONS if c in transactions and c not in location]
    for cols in groups:  # one vectorised groupby per attribute group
        modal = _modal_rows(transactions, cols).rename(columns={"customer_name": "name"})
        out = out.merge(modal, on="customer_id", how="left")
    return out


# ------------------------------------------------------------------------------------------
# Personal data: kept out of the validated tables and the set-aside rows (see analysis.privacy)
# ------------------------------------------------------------------------------------------

#: Id columns: pseudonymised where a value looks like an e-mail address or a phone number.
_ID_PREFIXES = {"customer_id": "c_", "order_id": "x_", "product_id": "x_"}


def _without_pii_columns(frame: pd.DataFrame, mapping: dict[str, str], findings: privacy.PiiFindings, cfg: RunConfig) -> pd.DataFrame:
    """The contract-named frame without columns that are personal data (the id always stays)."""
    pii = privacy.contract_pii(cfg.pii_columns)
    drop = [c for c, user in mapping.items() if c != "customer_id" and c in frame.columns and (c in pii or user in findings.columns)]
    return frame.drop(columns=drop)


def _private_table(frame: pd.DataFrame, findings: privacy.PiiFindings | None, cfg: RunConfig) -> pd.DataFrame:
    """A kept table with personal ids pseudonymised and e-mail addresses cut out of text values.

    Counts go to ``findings`` (None for tables derived from one already counted).
    """
    out = frame.copy(deep=False)  # columns are replaced below, never written into
    for column in privacy.text_columns(out):
        if column in _ID_PREFIXES:
            values, n = privacy.pseudonymise(out[column], cfg.name, _ID_PREFIXES[column])
        else:
            values, n = privacy.scrub_emails(out[column])
        if not n:
            continue
        dtype = frame[column].dtype
        out[column] = values.astype("category" if isinstance(dtype, pd.CategoricalDtype) else dtype)
        if findings is not None and column in _ID_PREFIXES:
            findings.pseudonymised_ids += n
        elif findings is not None:
            findings.scrubbed_values += n
    return out


def _private_set_aside(aside: pd.DataFrame, mapping: dict[str, str], findings: privacy.PiiFindings, cfg: RunConfig) -> pd.DataFrame:
    """Set-aside rows keep their source row, reason and every field that is not personal data.

    Personal-data columns are dropped; ids that look like e-mail addresses or phone numbers get
    the same pseudonym as in the validated tables; e-mail addresses in other text are cut out.
    """
    out = aside.drop(columns=[c for c in findings.columns if c in aside.columns])
    contract_of = {user: contract for contract, user in mapping.items()}
    for column in privacy.text_columns(out):
        if column in ("source_row", "reason"):
            continue
        contract = contract_of.get(column)
        if contract in _ID_PREFIXES:
            ids = normalize_ids(out[column])
            pseudo, n = privacy.pseudonymise(ids, cfg.name, _ID_PREFIXES[contract])
            if n:
                changed = pseudo.ne(ids) & pseudo.notna()
                out[column] = out[column].astype(object).where(~changed, pseudo)
        else:
            values, n = privacy.scrub_emails(out[column])
            if n:
                out[column] = values
                findings.scrubbed_values += n
    return out


_PREPARERS = {
    "customers": prepare_customers,
    "transactions": prepare_transactions,
    "survey": prepare_survey,
    "events": prepare_events,
}


def _release_arrow_memory() -> None:
    """Hand back to the system the memory Arrow's allocator keeps after reading and cleaning a table.

    Reading Parquet and cleaning text free their intermediate Arrow buffers, but the allocator
    keeps them for its own later use (several hundred MB for millions of order lines), while
    pandas and NumPy allocate elsewhere.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def prepare(raw: dict[str, Any], cfg: RunConfig) -> Prepared:
    """Validate every raw table of a run.

    Parameters
    ----------
    raw : dict
        Table name -> :class:`analysis.io.RawTable`.
    cfg : RunConfig

    Returns
    -------
    Prepared
        Validated tables (``customers`` always present), set-aside rows and the ledger.
    """
    ledger = Ledger()
    tables: dict[str, pd.DataFrame] = {}
    set_aside: dict[str, pd.DataFrame] = {}
    pii: dict[str, dict[str, str]] = {}
    for table in ("customers", "transactions", "survey", "events"):
        if table not in raw:
            continue
        files = raw[table].files
        check_values(raw[table].frame, raw[table].mapping, cfg, table, os.path.basename(files[0]["path"]) if files else table)
        for note, count in raw[table].notes:
            ledger.note(table, note, count)
        findings = privacy.PiiFindings.of_source(table, raw[table].original, raw[table].mapping, cfg.pii_columns)
        frame = _without_pii_columns(raw[table].frame, raw[table].mapping, findings, cfg)
        kept, aside, *derived = _PREPARERS[table](frame, raw[table].original, cfg, ledger)
        _release_arrow_memory()
        tables[table] = _private_table(kept, findings, cfg)
        set_aside[table] = _private_set_aside(aside, raw[table].mapping, findings, cfg)
        for extra in derived:
            tables.update({name: _private_table(t, None, cfg) for name, t in extra.items()})
        for note, count in findings.ledger_notes():
            ledger.note(table, note, count)
        pii[table] = dict(findings.columns)
    if "transactions" in tables:
        tx = tables["transactions"]
        derived = customers_from_transactions(tx)
        if "customers" not in tables:
            tables["customers"] = derived
        else:
            cust = tables["customers"]
            stubs = derived[~derived["customer_id"].isin(cust["customer_id"])][["customer_id"]]
            ledger.note("customers", "customers seen only in transactions (added with no attributes)", len(stubs))
            extra = [c for c in derived.columns if c not in cust.columns]
            merged = pd.concat([cust, stubs], ignore_index=True)
            if extra:
                merged = merged.merge(derived[["customer_id"] + extra], on="customer_id", how="left")
            tables["customers"] = merged
    if "survey" in tables and "customers" in tables:
        unknown = ~tables["survey"]["customer_id"].isin(tables["customers"]["customer_id"])
        ledger.note("survey", "respondents not in the customer table (kept, not joined to value)", int(unknown.sum()))
    from pandera.errors import SchemaErrors

    for name, frame in tables.items():
        if name not in schemas():
            continue
        try:
            # inplace: pandera would otherwise validate a deep copy; the shallow one keeps the
            # schema it attaches off the table (it coerces nothing: coerce is off)
            schemas()[name].validate(frame.copy(deep=False), lazy=True, inplace=True)
        except SchemaErrors as exc:  # a bug in the preparers, not in the user's data
            raise AssertionError(f"validated {name} table breaks its schema: {exc.failure_cases.head()}") from exc
    return Prepared(tables=tables, set_aside=set_aside, ledger=ledger, mappings={t: r.mapping for t, r in raw.items()}, pii=pii)


def date_ranges(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """First and last timestamp per dated table."""
    rows = []
    for name, col in (("transactions", "timestamp"), ("events", "timestamp"), ("customers", "signup_date"), ("survey", "response_date")):
        frame = tables.get(name)
        if frame is not None and col in frame and frame[col].notna().any():
            rows.append({"table": name, "column": col, "first": frame[col].min(), "last": frame[col].max(), "rows": int(frame[col].notna().sum())})
    return pd.DataFrame(rows, columns=["table", "column", "first", "last", "rows"])


def coverage(frame: pd.DataFrame) -> pd.DataFrame:
    """Share of non-missing values and distinct values per column."""
    return pd.DataFrame(
        {
            "column": frame.columns,
            "filled_pct": (frame.notna().mean() * 100).round(1).to_numpy(),
            "distinct": [int(frame[c].nunique(dropna=True)) for c in frame.columns],
        }
    )


__all__ = [
    "Ledger",
    "Prepared",
    "coverage",
    "customers_from_transactions",
    "date_ranges",
    "normalize_ids",
    "parse_datetimes",
    "parse_numbers",
    "prepare",
]


def summary_lines(prepared: Prepared) -> dict[str, Any]:
    """Headline facts about the validated data, for the run's front page."""
    tables = prepared.tables
    totals = prepared.ledger.totals().set_index("table")
    lines = [f"{len(tables['customers']):,} customers."]
    tx = tables.get("transactions")
    if tx is not None:
        lines.append(
            f"{tx['order_id'].nunique():,} orders ({len(tx):,} order lines) from {tx['timestamp'].min():%d %b %Y} "
            f"to {tx['timestamp'].max():%d %b %Y}, revenue {tx['amount'].sum():,.0f}."
        )
    for table in totals.index:
        row = totals.loc[table]
        if row["set_aside"]:
            lines.append(f"{table}: {row['set_aside']:,} of {row['read']:,} rows set aside ({100 * row['set_aside'] / row['read']:.1f}%).")
    if "survey" in tables:
        lines.append(f"{len(tables['survey']):,} survey respondents.")
    return {"title": "Data", "lines": lines}
