"""One PDF of a run, printed by headless Chromium, holds every page's title (read back with pypdf)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import pdf

pypdf = pytest.importorskip("pypdf")


def _chromium_or_skip() -> None:
    try:
        pdf.find_chromium()
    except pdf.PdfError as exc:
        if os.environ.get("CLIENTELE_REQUIRE_BROWSER"):
            raise
        pytest.skip(str(exc))


def test_combined_html_keeps_every_page_once_with_page_breaks(tmp_path):
    for name, title in [("index.html", "Run overview"), ("10_demographic.html", "Demographic"), ("00_data_prep.html", "Data prep")]:
        (tmp_path / name).write_text(f"<html><head><title>{title}</title><style>p{{color:red}}</style></head>"
                                     f'<body><nav class="clientele-nav"><a href="index.html">back</a></nav><h1>{title}</h1></body></html>')
    pages = pdf.run_pages(tmp_path)
    assert [p.name for p in pages] == ["index.html", "00_data_prep.html", "10_demographic.html"]
    html = pdf.combined_html(pages)
    assert html.count('class="pdf-page"') == 3 and html.count("p{color:red}") == 1 and "back</a>" not in html


def test_a_missing_run_is_one_sentence(tmp_path):
    with pytest.raises(pdf.PdfError, match="no run pages found"):
        pdf.write_pdf(tmp_path / "nope")


@pytest.mark.slow
@pytest.mark.browser
def test_pdf_of_the_sample_run_has_every_page_title(sample_run, tmp_path):
    _chromium_or_skip()
    proc, reports = sample_run
    run_dir = reports / "ci-sample"
    out = tmp_path / "run.pdf"
    cli = subprocess.run([sys.executable, "-m", "analysis", "pdf", "--run", str(run_dir), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, check=False)
    assert cli.returncode == 0, cli.stderr
    reader = pypdf.PdfReader(str(out))
    pages = sorted(run_dir.glob("*.html"))
    assert len(reader.pages) >= len(pages)
    text = " ".join(page.extract_text() for page in reader.pages)
    squashed = re.sub(r"\s+", " ", text)
    for page in pages:
        heading = re.search(r"<h1[^>]*>(.*?)</h1>", page.read_text(encoding="utf-8"), re.S)
        assert heading, page.name
        title = re.sub(r"<[^>]+>", "", heading.group(1)).replace("¶", "").strip()
        assert re.sub(r"\s+", " ", title)[:40] in squashed, f"{page.name}: {title!r} not in the PDF"


def test_a_run_made_without_pages_says_so(tmp_path):
    from analysis import io

    io.RunFolder(tmp_path).write_manifest({"run_id": "r", "status": "complete", "pages_rendered": False})
    with pytest.raises(pdf.PdfError, match="made with --no-html"):
        pdf.write_pdf(tmp_path)
    io.RunFolder(tmp_path).write_manifest({"run_id": "r", "status": "complete", "pages_rendered": True})
    with pytest.raises(pdf.PdfError, match="no run pages found"):
        pdf.write_pdf(tmp_path)
