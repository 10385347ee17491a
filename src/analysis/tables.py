"""One table renderer for every page: labelled columns, formatted numbers, no raw DataFrame.

A table on a page is a presentation object (the Great Tables idea, built on the pandas Styler
so pages stay self-contained): human column labels from one glossary
(``analysis/data/glossary.yaml``), thousands separators, percentages and currency formatted,
no index column, missing values shown as "–", True/False as yes/no, prose left-aligned, and long
tables cut to their first rows with a note pointing at the full CSV in ``exports/``. Every
value is HTML-escaped: data is never markup.

:func:`install` registers the renderer as the notebook's HTML formatter for DataFrames, so a
DataFrame left at the end of a cell is shown the same way; :func:`table` takes options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

GLOSSARY_PATH = Path(__file__).parent / "data" / "glossary.yaml"

#: Shown for a missing value.
MISSING = "–"

#: Rows shown before a table is cut (the rest is in the linked CSV).
MAX_ROWS = 25

_MONEY_WORDS = ("revenue", "spend", "clv", "value", "margin", "price", "amount", "profit", "income", "budget")
_SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")
_NEGATIVE_ZERO = re.compile(r"^-0(\.0+)?%?$")  # "-0", "-0.00", "-0.0%": a rounding artefact, shown without the sign
_COUNTER = iter(range(1, 1 << 30))  # table ids: deterministic within a page


@lru_cache(maxsize=1)
def glossary() -> dict[str, dict[str, str]]:
    """Column -> ``{"label", "kind"}`` from the package glossary."""
    return yaml.safe_load(GLOSSARY_PATH.read_text(encoding="utf-8")) or {}


def label_for(column: Any) -> str:
    """The human label of a column: the glossary's, else its name in words (``median_age`` -> "Median age")."""
    name = str(column)
    entry = glossary().get(name)
    if entry:
        return entry["label"]
    if name.startswith("share_") or name.endswith("_share"):
        words = name.removeprefix("share_").removesuffix("_share").replace("_", " ")
        return f"Share: {words}"
    if name.endswith("_pct"):
        return "% " + name.removesuffix("_pct").replace("_", " ")
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def kind_for(column: Any, values: pd.Series) -> str:
    """How to format a column: the glossary's kind, else guessed from its name and values."""
    name = str(column)
    entry = glossary().get(name)
    if entry:
        return entry["kind"]
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if not pd.api.types.is_numeric_dtype(values):
        return "text"
    if name.endswith("_pct") or name.startswith("pct_"):
        return "pct"
    if name.endswith("_share") or name.startswith(("share_", "p_")):
        return "share"
    if name.endswith("_days"):
        return "days"
    if any(word in name for word in _MONEY_WORDS):
        return "money"
    finite = values.dropna().to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) and np.allclose(finite, np.round(finite)):
        return "count"
    return "number"


def _fmt(kind: str):
    def money(v: float) -> str:
        return f"{v:,.0f}"

    def pct(v: float) -> str:
        return f"{v:,.1f}%" if abs(v) < 10 else f"{v:,.0f}%"

    formats = {
        "count": lambda v: f"{v:,.0f}",
        "money": money,
        "money2": lambda v: f"{v:,.2f}",
        "pct": pct,
        "share": lambda v: pct(100.0 * v),
        "ratio": lambda v: f"{v:,.2f}",
        "days": lambda v: f"{v:,.0f}",
        "number": lambda v: f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}",
        "bool": lambda v: "yes" if v else "no",
        "date": lambda v: pd.Timestamp(v).strftime("%Y-%m-%d"),
        "text": lambda v: str(v),
    }
    base = formats.get(kind, formats["text"])

    def safe(value: Any) -> str:
        if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NA or value is pd.NaT:
            return MISSING
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        try:
            text = base(value)
        except (TypeError, ValueError):
            text = str(value)
        return text[1:] if _NEGATIVE_ZERO.match(text) else text

    return safe


@dataclass
class Table:
    """A formatted table; Jupyter shows it through :meth:`_repr_html_`.

    Build it with :func:`table`.
    """

    frame: pd.DataFrame
    kinds: dict[str, str]
    labels: dict[str, str]
    total_rows: int
    csv: str | None = None
    caption: str | None = None
    note: str | None = None
    collapsed: str | None = None
    empty: str | None = None

    def to_html(self) -> str:
        if self.total_rows == 0 or not len(self.frame.columns):  # never an empty table: say why instead
            return f'<p class="table-note">{_escape(self.empty or "Nothing to show here for this run.")}</p>'
        frame = self.frame
        styler = frame.style.hide(axis="index").set_uuid(f"t{next(_COUNTER)}")
        for column in frame.columns:
            styler = styler.format(_fmt(self.kinds[column]), subset=[column], escape="html")
        styler = styler.relabel_index([_escape(self.labels[c]) for c in frame.columns], axis="columns")
        text_cols = [c for c in frame.columns if self.kinds[c] == "text"]
        styler = styler.set_table_attributes('class="clientele-table"')
        if text_cols:
            styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
        num_cols = [c for c in frame.columns if c not in text_cols]
        if num_cols:
            styler = styler.set_properties(subset=num_cols, **{"text-align": "right", "white-space": "nowrap"})
        if self.caption:
            styler = styler.set_caption(_escape(self.caption))
        html = styler.to_html()
        notes = []
        if self.total_rows > len(frame):
            where = f" The full table is in <code>exports/{_escape(self.csv)}</code>." if self.csv else ""
            notes.append(f"Showing {len(frame):,} of {self.total_rows:,} rows.{where}")
        if self.note:
            notes.append(_escape(self.note))
        foot = "".join(f'<p class="table-note">{n}</p>' for n in notes)
        out = f'<div class="table-wrap">{html}</div>{foot}'
        if self.collapsed:
            out = (f'<details class="table-details"><summary style="cursor:pointer;padding:4px 0">{_escape(self.collapsed)}'
                   f"</summary>{out}</details>")
        return out

    def _repr_html_(self) -> str:
        return self.to_html()


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))


def table(
    frame: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    labels: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
    max_rows: int = MAX_ROWS,
    csv: str | None = None,
    caption: str | None = None,
    note: str | None = None,
    collapsed: str | None = None,
    empty: str | None = None,
) -> Table:
    """A DataFrame as a page table.

    Parameters
    ----------
    frame : DataFrame
        A named or non-default index becomes the first column; a default RangeIndex is dropped.
    columns : list of str, optional
        Columns to show, in order (default all).
    labels, kinds : dict, optional
        Per-table overrides of the glossary's labels and formats.
    max_rows : int
        Rows shown; longer tables are cut with a note (pass ``csv`` to point at the full data).
    csv : str, optional
        Name of the file in the run's ``exports/`` that holds the full table.
    caption, note : str, optional
        Shown above / below the table (as text).
    collapsed : str, optional
        Show the table closed, inside a ``<details>`` whose summary line is this text (a reader
        opens it with a click; the page stays short).
    empty : str, optional
        The sentence shown instead of a table with no rows (default: a generic one). A page never
        shows an empty table.

    Returns
    -------
    Table

    Examples
    --------
    >>> t = table(pd.DataFrame({"segment": ["A"], "customers_pct": [2.9703], "revenue": [1064657.7]}))
    >>> html = t.to_html()
    >>> "% of customers" in html and "3.0%" in html and "1,064,658" in html
    True
    """
    data = frame.copy()
    if isinstance(data.columns, pd.MultiIndex):
        data.columns = [" ".join(str(p) for p in col if str(p)) for col in data.columns]
    if not isinstance(data.index, pd.RangeIndex) or data.index.name is not None:
        names = [n if n is not None else "" for n in (data.index.names or [None])]
        if any(names) or not _is_default_index(data.index):
            data = data.reset_index(names=[n or "item" for n in names])
    data = data.reset_index(drop=True)
    data.columns = [str(c) for c in data.columns]
    if columns is not None:
        data = data[[str(c) for c in columns]]
    total = len(data)
    shown = data.head(max_rows)
    kinds = {c: (kinds or {}).get(c) or kind_for(c, data[c]) for c in data.columns}
    labels = {c: (labels or {}).get(c) or label_for(c) for c in data.columns}
    return Table(shown, kinds, labels, total, csv, caption, note, collapsed, empty)


def _is_default_index(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def is_snake_case(text: str) -> bool:
    """True for identifiers such as ``customers_pct`` (what no header on a page may look like)."""
    return bool(_SNAKE.match(text.strip()))


def install() -> None:
    """Show every DataFrame and Series displayed in this notebook kernel through :func:`table`."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the kernel
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(pd.DataFrame, lambda df: table(df).to_html())
    formatter.for_type(pd.Series, lambda s: table(s.to_frame(s.name if s.name is not None else "value")).to_html())
