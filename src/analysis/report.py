"""The run's front page (``index.html``): summary, pages, data ledger, exports.

Rendered with Jinja2 with autoescaping on, so data strings (file names, reasons, notes) show as
text. The page is self-contained: inline CSS, no scripts, no external requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import io

TEMPLATE_DIR = Path(__file__).parent / "templates"

PAGE_TITLES = {
    "00_data_prep": "Data preparation: what came in, what was kept",
    "10_demographic": "Demographic segments",
    "11_geographic": "Geographic segments",
    "12_psychographic": "Psychographic segments",
    "13_behavioral": "Behavioral segments and RFM",
    "14_value": "Customer value (CLV) and profitability",
    "20_personas": "Personas and strategies",
    "30_clienteling": "Clienteling: who to contact, with what",
}


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(["html", "j2"]))


def render_index(folder: io.RunFolder, manifest: dict[str, Any]) -> Path:
    """Write ``index.html`` into the run folder and return its path."""
    ledger = manifest.get("ledger") or {"rows": [], "notes": [], "totals": []}
    set_aside_files = [p.name for p in folder.set_aside_files()]
    export_files = [p.name for p in folder.export_files()]
    summaries = [v for k, v in sorted(manifest.get("facts", {}).items()) if k.startswith("summary_") and isinstance(v, dict)]
    pages = [dict(nb, title=PAGE_TITLES.get(nb["name"], nb["name"].split("_", 1)[-1].replace("_", " ").capitalize())) for nb in manifest["notebooks"]]
    html = _env().get_template("index.html.j2").render(
        m=manifest,
        pages=pages,
        ledger=ledger,
        set_aside_files=set_aside_files,
        export_files=export_files,
        summaries=summaries,
        css=(TEMPLATE_DIR / "nbconvert" / "clientele" / "report.css").read_text(encoding="utf-8"),
    )
    path = folder.index_path
    path.write_text(html, encoding="utf-8")
    return path
