"""Data values as literal text: in Markdown sentences, in rendered Markdown outputs, in spreadsheets.

Data are never markup. A product, region or survey-scale name such as
``[Urgent](https://evil.example/login) ![t](https://evil.example/t.png)`` or ``<img src=x>`` must
show as exactly those characters wherever the report puts it:

* **Markdown sentences** built from data go through :func:`sentence` (or :func:`literal` for one
  value): the template's own Markdown (``**bold**``) stays live, the values render as text.
* **Rendered Markdown outputs** of notebooks pass :func:`disarm_markdown` at render time, a second
  line of defence for sentences built without the helper: raw HTML, links, images and bare URLs
  cannot become markup or requests. The report emits no Markdown links of its own.
* **HTML** is rendered by Jinja2 with autoescaping (:mod:`analysis.templating`): values are text.
* **CSV cells** a spreadsheet would run as a formula are neutralised by :func:`spreadsheet_safe`.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import pandas as pd

MISSING = "\u2013"  # an en dash, as tables show a missing value

# Markdown punctuation that can start or close inline syntax (emphasis, code, links, images,
# math, strikethrough, tables) or a block (headings, lists, quotes) when it opens a line.
_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$^=:])")
# "<" that could open an HTML tag, comment, declaration or autolink.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# "[" or "]" not already escaped: preceded by an even number (0, 2, ...) of backslashes.
_LIVE_BRACKET = re.compile(r"(?<!\\)((?:\\\\)*)([\[\]])")
# A URL scheme right before "//": autolinked as a bare URL by the report's Markdown renderer.
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(?=//)")


def literal(value: Any) -> str:
    """A data value as Markdown that renders as exactly its text.

    HTML special characters become entities, Markdown punctuation is escaped with a backslash,
    and line breaks become spaces (a value cannot start a heading, list or table). Missing
    values (None, NaN) show as an en dash.

    Examples
    --------
    >>> literal("[Urgent](https://evil.example/login)")
    '\\\\[Urgent\\\\]\\\\(https\\\\://evil\\\\.example/login\\\\)'
    >>> literal("<b>A & B</b>")
    '&lt;b&gt;A &amp; B&lt;/b&gt;'
    >>> literal(None)
    '–'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return MISSING
    out = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _MD_PUNCTUATION.sub(r"\\\1", out)
    return " ".join(out.split())


class _LiteralFormatter(string.Formatter):
    """``str.format`` that formats each field as asked, then makes it :func:`literal`."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        return literal(super().format_field(value, format_spec))


_FORMATTER = _LiteralFormatter()


def sentence(template: str, /, *args: Any, **values: Any) -> str:
    """A Markdown sentence: ``template`` is Markdown, every value filled in is literal text.

    Fields take the usual format specs (``{n:,}``, ``{share:.0%}``); the formatted value is then
    passed through :func:`literal`.

    Examples
    --------
    >>> sentence("Top region: **{region}** ({n:,} customers).", region="<b>[x](https://e.example)</b>", n=1234)
    'Top region: **&lt;b&gt;\\\\[x\\\\]\\\\(https\\\\://e\\\\.example\\\\)&lt;/b&gt;** (1,234 customers).'
    """
    return _FORMATTER.format(template, *args, **values)


def disarm_markdown(markdown: str) -> str:
    """Markdown built from data with its live markup disarmed; emphasis, code and lists still work.

    * ``<`` that could open a tag, comment or autolink becomes ``&lt;`` (raw HTML shows as text);
    * ``[`` and ``]`` not already escaped get a backslash, so no link, image or link reference
      definition can form (``![t](https://evil.example/t.png)`` shows as those characters);
    * the colon of a URL scheme before ``//`` is escaped, so a bare ``https://...`` is not
      turned into a link.

    Already-escaped text (from :func:`literal`) passes through unchanged. Inside code spans the
    escapes show as written; the report puts no brackets, tags or URLs in code spans.

    Examples
    --------
    >>> disarm_markdown("**Top**: [Urgent](https://evil.example) ![t](x.png) <img src=x>")
    '**Top**: \\\\[Urgent\\\\](https\\\\://evil.example) !\\\\[t\\\\](x.png) &lt;img src=x>'
    """
    out = _TAG_START.sub("&lt;", markdown)
    out = _LIVE_BRACKET.sub(r"\1\\\2", out)
    return _URL_SCHEME.sub(r"\1\\:", out)


# ------------------------------------------------------------------------------------------
# Spreadsheet (CSV) cells
# ------------------------------------------------------------------------------------------

#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_cell(value: Any) -> Any:
    """One CSV cell made safe to open in a spreadsheet.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
    leading single quote (``'=HYPERLINK(...)``), as the OWASP CSV-injection guidance recommends,
    so Excel, LibreOffice and Google Sheets show it as text instead of running it. Numbers are
    left alone, and so is text that is a plain number (``"-5"``, ``"+1.5e3"``): a spreadsheet
    reads it as that number, never as a formula, and a negative amount stays a number.

    Examples
    --------
    >>> [spreadsheet_cell(v) for v in ('=HYPERLINK("https://evil.example/x","Click me")', "-5", -5, "@SUM(A1)", "a=b")]
    ['\\'=HYPERLINK("https://evil.example/x","Click me")', '-5', -5, "'@SUM(A1)", 'a=b']
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_TRIGGERS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are :func:`spreadsheet_cell`-safe.

    Only text columns (object, string, category) are touched; numeric, boolean and datetime
    columns are written as they are.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        elif not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
            continue
        starts = values.astype("string").str.startswith(FORMULA_TRIGGERS).fillna(False).astype(bool)
        if starts.any():
            values = values.astype(object)
            out[column] = values.mask(starts, values[starts].map(spreadsheet_cell))
        elif values is not out[column]:
            out[column] = values
    out.columns = [spreadsheet_cell(c) for c in out.columns]
    return out
