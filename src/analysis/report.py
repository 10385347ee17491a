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
    "40_monitoring": "Monitoring: what changed since the last run",
}


def page_title(name: str) -> str:
    """The title of a run page: ``10_demographic`` -> "Demographic segments"; a page scored with
    saved models (``10_demographic_scored``) says so."""
    if name.endswith("_scored"):
        return f"{page_title(name.removesuffix('_scored'))}: scored with saved models"
    return PAGE_TITLES.get(name, name.split("_", 1)[-1].replace("_", " ").capitalize())


def _png(fig: Any) -> str:
    """A Matplotlib figure as a ``data:`` URI (the page allows no other image source)."""
    import base64
    import io as _bytes

    import matplotlib.pyplot as plt

    buffer = _bytes.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def index_charts(folder: io.RunFolder) -> list[dict[str, str]]:
    """A few small charts for the index, from what the run saved: segment sizes against value
    share (RFM segments, else the first basis with revenue), how concentrated past revenue is,
    and the churn-risk mix. Charts whose data the run lacks are left out.

    Returns
    -------
    list of dict
        ``{"title", "alt", "src"}`` with ``src`` a ``data:`` PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plots

    charts: list[dict[str, str]] = []
    segments = folder.segments_tables()
    order = ["rfm", *[b for b in segments if b != "rfm"]]
    for basis in order:
        table = segments.get(basis)
        if table is None or "revenue_pct" not in table or not table["revenue_pct"].notna().any() or len(table) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5.2, 0.42 * min(len(table), 8) + 1.1))
        title = f"{'RFM' if basis == 'rfm' else basis.capitalize()} segments: customers vs revenue"
        plots.size_vs_value(table.sort_values("customers", ascending=False), title=title, ax=ax)
        charts.append({"title": title, "alt": f"Share of customers and of revenue per {basis} segment", "src": _png(fig)})
        break
    features = folder.read_table("features")
    if features is not None and "total_spend" in features and len(features) > 1:
        fig, ax = plt.subplots(figsize=(5.2, 3.2))
        plots.pareto(features["total_spend"], title="How concentrated is revenue?", ax=ax)
        charts.append({"title": "How concentrated is revenue?", "alt": "Cumulative share of revenue by share of customers",
                       "src": _png(fig)})
    value = folder.read_labels().get("value")
    if value is not None and "churn_risk" in value and value["churn_risk"].notna().any():
        fig, ax = plt.subplots(figsize=(5.2, 2.2))
        plots.level_mix(value["churn_risk"], order=["low", "medium", "high"], title="Churn risk mix", ax=ax)
        charts.append({"title": "Churn risk mix", "alt": "Share of customers at each churn-risk level", "src": _png(fig)})
    return charts


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(["html", "j2"]))


def render_index(folder: io.RunFolder, manifest: dict[str, Any]) -> Path:
    """Write ``index.html`` into the run folder and return its path."""
    ledger = manifest.get("ledger") or {"rows": [], "notes": [], "totals": []}
    set_aside_files = [p.name for p in folder.set_aside_files()]
    export_files = [p.name for p in folder.export_files()]
    summaries = [v for k, v in sorted(manifest.get("facts", {}).items()) if k.startswith("summary_") and isinstance(v, dict)]
    pages = [dict(nb, title=page_title(nb["name"])) for nb in manifest["notebooks"]]
    html = _env().get_template("index.html.j2").render(
        m=manifest,
        pages=pages,
        ledger=ledger,
        set_aside_files=set_aside_files,
        export_files=export_files,
        summaries=summaries,
        charts=index_charts(folder),
        css=(TEMPLATE_DIR / "nbconvert" / "clientele" / "report.css").read_text(encoding="utf-8"),
    )
    path = folder.index_path
    path.write_text(html, encoding="utf-8")
    return path
