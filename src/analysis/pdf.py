"""One PDF of a run: every page in order, printed by headless Chromium.

The run's pages are self-contained HTML (inline CSS, embedded images). :func:`combined_html`
joins their bodies into one document with a page break before each, keeping one copy of the
styles; :func:`write_pdf` prints it with Chromium's ``--print-to-pdf`` (the print stylesheet in
``report.css`` keeps tables whole and hides navigation). Nothing is fetched from the network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Where Chromium is looked for, in order (``CLIENTELE_CHROMIUM`` first).
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)
_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.S | re.I)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)
_NAV = re.compile(r'<nav class="clientele-nav">.*?</nav>', re.S)


class PdfError(RuntimeError):
    """The PDF could not be made (no run folder, no Chromium, or Chromium failed)."""


def find_chromium() -> str:
    """Path of a Chromium executable, or a :class:`PdfError` saying how to get one."""
    candidates = [os.environ.get("CLIENTELE_CHROMIUM", ""), *CHROMIUM_CANDIDATES, shutil.which("chromium") or ""]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    raise PdfError("Chromium not found: install it (Debian: apt-get install -y chromium) or set CLIENTELE_CHROMIUM "
                   "to its path, then run analysis pdf again.")


def run_pages(run_dir: Path) -> list[Path]:
    """The run's pages in reading order: the index, then the notebooks' pages by number."""
    pages = sorted(p for p in run_dir.glob("[0-9][0-9]_*.html"))
    index = run_dir / "index.html"
    return ([index] if index.exists() else []) + pages


def combined_html(pages: list[Path]) -> str:
    """One HTML document holding every page's body, a page break before each, styles once each."""
    styles: list[str] = []
    bodies: list[str] = []
    for page in pages:
        source = page.read_text(encoding="utf-8")
        for style in _STYLE.findall(source):
            if style not in styles:
                styles.append(style)
        match = _BODY.search(source)
        body = _NAV.sub("", match.group(1) if match else source)
        title = _TITLE.search(source)
        label = title.group(1) if title else page.stem
        bodies.append(f'<section class="pdf-page" data-page="{page.name}" aria-label="{label}">{body}</section>')
    css = "<style>.pdf-page { page-break-before: always; } .pdf-page:first-child { page-break-before: auto; }</style>"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Clientele run</title>"
            + "".join(styles) + css + "</head><body>" + "".join(bodies) + "</body></html>")


def write_pdf(run_dir: str | Path, out: str | Path | None = None, *, timeout: int = 300) -> Path:
    """Print every page of a run into one PDF.

    Parameters
    ----------
    run_dir : path
        A run folder (``reports/<run_id>``).
    out : path, optional
        The PDF to write; default ``<run_dir>/<run_id>.pdf``.
    timeout : int
        Seconds Chromium may take.

    Returns
    -------
    Path of the PDF.

    Raises
    ------
    PdfError
        With what is missing and how to fix it.
    """
    run_dir = Path(run_dir).resolve()
    pages = run_pages(run_dir) if run_dir.is_dir() else []
    if not pages:
        from .io import RunFolder

        if (RunFolder(run_dir).read_manifest() or {}).get("pages_rendered") is False:
            raise PdfError(f"{run_dir}: this run was made with --no-html, so it has no pages to print. "
                           f"Run it again without --no-html.")
        raise PdfError(f"{run_dir}: no run pages found. Pass a run folder such as reports/latest "
                       f"(made by `analysis run`).")
    out = Path(out) if out else run_dir / f"{run_dir.name}.pdf"
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="clientele-pdf-") as tmp:
        source = Path(tmp) / "run.html"
        source.write_text(combined_html(pages), encoding="utf-8")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={Path(tmp) / 'profile'}",
               "--no-pdf-header-footer", f"--print-to-pdf={out.resolve()}", source.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise PdfError(f"Chromium could not print {run_dir.name} (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return out
