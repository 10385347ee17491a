"""Rendering of pages: data strings show as text, pages allow no scripts or outside requests."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from analysis import io, runner
from analysis.report import render_index

CSP = '<meta content="default-src \'none\'; img-src data:'


def _executed(path, outputs):
    nb = new_notebook(cells=[new_markdown_cell("# Page\n\nSome <b>authored</b> markup."), new_code_cell("x", outputs=outputs)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_markdown_as_text_escapes_tags_and_keeps_markdown():
    assert runner.markdown_as_text("**Top**: <script>alert(1)</script> a < b, 3<4") == \
        "**Top**: &lt;script>alert(1)&lt;/script> a < b, 3<4"
    assert runner.markdown_as_text("<!-- x --> <?php ?> <img src=x onerror=alert(1)>") == \
        "&lt;!-- x --> &lt;?php ?> &lt;img src=x onerror=alert(1)>"


def test_markdown_output_built_from_data_renders_as_text(tmp_path):
    executed = _executed(tmp_path / "10_page.ipynb", [
        new_output("display_data", data={"text/markdown": "Top product: **<img src=x onerror=alert(2)>**", "text/plain": "md"}),
        new_output("display_data", data={"application/javascript": "alert(3)", "text/plain": "js"}),
        new_output("stream", name="stdout", text="<script>alert(4)</script>\n"),
    ])
    runner.render_html(executed, tmp_path / "10_page.html")
    html = (tmp_path / "10_page.html").read_text(encoding="utf-8")
    assert "<strong>&lt;img src=x onerror=alert(2)&gt;</strong>" in html
    assert "alert(3)" not in html, "javascript outputs are dropped"
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in html
    assert "&lt;b" not in html, "authored Markdown cells are left as written"
    assert CSP in html and "script-src" not in html.split("Content-Security-Policy")[0][-400:]
    assert "<script" not in html


def test_page_that_cannot_be_rendered_is_replaced_by_a_plain_one(tmp_path):
    runner._render_failure_page(tmp_path / "10_x.html", "10_x", ValueError("bad <output>"))
    html = (tmp_path / "10_x.html").read_text(encoding="utf-8")
    assert "ValueError: bad &lt;output&gt;" in html and 'href="index.html"' in html and 'href="10_x.ipynb"' in html


def test_index_escapes_config_strings_and_carries_the_policy(tmp_path):
    folder = io.RunFolder(tmp_path)
    manifest = {
        "run_id": "r1", "status": "complete", "seconds": 1.0, "created_utc": "now", "git_commit": None,
        "config": {"name": "n", "as_of": "2024-01-01", "description": "<script>alert(1)</script>"},
        "notebooks": [{"name": "00_data_prep", "status": "ok", "seconds": 1.0, "error": "", "html": "00_data_prep.html", "failed_cell": None}],
        "ledger": None, "inputs": {"transactions": [{"path": "/x/<img src=x onerror=alert(2)>.csv", "rows": 3, "sha256": "a" * 64}]},
        "facts": {}, "versions": {"clientele": "0"},
    }
    html = render_index(folder, manifest).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;.csv" in html
    assert CSP in html.replace("\n", " ") or "Content-Security-Policy" in html
