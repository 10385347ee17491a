"""Pages read like reports: formatted tables, no DataFrame dumps, no machine paths.

Scans every page of the sample run and of a full run on Online Retail (public data).
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis import tables

from .conftest import PROJECT_ROOT

_HEADER = re.compile(r"<th\b[^>]*>(.*?)</th>", re.DOTALL)
_CELL = re.compile(r"<td\b[^>]*>(.*?)</td>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_RAW_VALUES = {"NaN", "nan", "None", "True", "False", "NaT", "<NA>"}
_ABSOLUTE = re.compile(r"(?<![\w.])/(?:work|tmp|home|root|Users|var|private)/[\w./-]+")


def _text(fragment: str) -> str:
    return html_lib.unescape(_TAG.sub(" ", fragment)).strip()


def page_problems(page: Path, extra_paths: tuple[str, ...] = ()) -> list[str]:
    """What on ``page`` a marketing director should never see."""
    source = page.read_text(encoding="utf-8")
    body = source.split("<body", 1)[-1]
    problems = [f"snake_case header {h!r}" for h in map(_text, _HEADER.findall(body)) if tables.is_snake_case(h)]
    problems += [f"raw cell {c!r}" for c in map(_text, _CELL.findall(body)) if c in _RAW_VALUES]
    visible = _text(re.sub(r"<(style|script)\b.*?</\1>", "", body, flags=re.DOTALL))
    if re.search(r"\d+ rows × \d+ columns", visible):
        problems.append("a 'rows × columns' DataFrame dump")
    problems += [f"machine path {p!r}" for p in _ABSOLUTE.findall(visible)]
    problems += [f"machine path {p!r}" for p in extra_paths if p and p in visible]
    return problems


def test_the_scan_catches_a_raw_dataframe(tmp_path):
    raw = pd.DataFrame({"customers_pct": [2.97, None], "flag": [True, False]})
    page = tmp_path / "raw.html"
    page.write_text(f"<html><body>{raw.to_html()}<p>{len(raw)} rows × 2 columns</p><p>/work/main/config/x.yaml</p></body></html>")
    problems = page_problems(page)
    assert any("snake_case header 'customers_pct'" in p for p in problems)
    assert any("raw cell 'True'" in p for p in problems) and any("rows × columns" in p for p in problems)
    assert any("machine path" in p for p in problems)
    formatted = tmp_path / "formatted.html"
    formatted.write_text(f"<html><body>{tables.table(raw).to_html()}</body></html>")
    assert page_problems(formatted) == []


def test_table_formats_and_labels():
    frame = pd.DataFrame({"segment": ["A", "B"], "customers": [1234, 5], "customers_pct": [2.9703, 97.0297],
                          "revenue": [1064657.7, float("nan")], "median_recency_days": [12.4, -0.2], "flag": [True, False]})
    html = tables.table(frame).to_html()
    for text in ("Segment", "% of customers", "Median days since last order", "1,234", "3.0%", "97%", "1,064,658", "–", "yes", "no"):
        assert text in html, text
    assert "customers_pct" not in html and ">-0<" not in html and ">True<" not in html
    assert "<th" in html and "row_heading" not in html  # no index column


def test_long_tables_are_cut_and_point_at_the_export():
    frame = pd.DataFrame({"segment": [f"s{i}" for i in range(129)], "customers": range(129)})
    html = tables.table(frame, csv="persona_profiles.csv").to_html()
    assert html.count("<tr>") <= 26 and "Showing 25 of 129 rows" in html and "exports/persona_profiles.csv" in html


def test_values_are_text_never_markup():
    html = tables.table(pd.DataFrame({"city": ['<img src=x onerror="alert(1)">'], "customers": [3]})).to_html()
    assert "<img" not in html and "&lt;img" in html


@pytest.mark.slow
def test_sample_pages_read_like_reports(sample_run):
    proc, reports = sample_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = reports / "ci-sample"
    problems = {p.name: page_problems(p, (str(PROJECT_ROOT), str(reports))) for p in sorted(run_dir.glob("*.html"))}
    assert len(problems) >= 9
    assert not {k: v for k, v in problems.items() if v}, problems


@pytest.mark.slow
def test_index_opens_with_small_charts(sample_run):
    _, reports = sample_run
    index = (reports / "ci-sample" / "index.html").read_text(encoding="utf-8")
    glance = index.split("At a glance", 1)[1].split("<h2", 1)[0]
    alts = re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)"', glance)
    assert len(alts) == 3, alts
    assert any("revenue per rfm segment" in a for a in alts) and any("churn-risk" in a for a in alts)


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_pages_read_like_reports(online_retail_run):
    proc, reports = online_retail_run
    run_dir = reports / "retail"
    assert run_dir.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    problems = {p.name: page_problems(p, (str(PROJECT_ROOT), str(reports))) for p in sorted(run_dir.glob("*.html"))}
    assert not {k: v for k, v in problems.items() if v}, problems
