"""The one HTML path: Jinja2 templates with autoescaping, for every page fragment the package builds.

Client cards, the persona executive summary, the run's index and a page that could not be
rendered are all templates under ``analysis/templates/``. Autoescaping is on for HTML templates,
so data strings (names, reasons, error messages) render as text; nothing builds HTML with
f-strings. This module imports nothing from the analysis: any layer may render a template.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .text import literal

TEMPLATE_DIR = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The package's Jinja2 environment: templates from ``analysis/templates``, HTML autoescaped.

    ``*.html.j2`` (and ``*.html``) templates are autoescaped. The filter ``md`` makes a value
    literal text in Markdown templates (:func:`analysis.text.literal`).
    """
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
    )
    env.filters["md"] = literal
    return env


def render_template(name: str, /, **context: Any) -> str:
    """Render the template ``name`` (relative to ``analysis/templates``) with ``context``.

    Examples
    --------
    >>> render_template("personas/summary.html.j2", title="<b>T</b>", lines=["a & b"])
    '<div class="callout"><b>&lt;b&gt;T&lt;/b&gt;</b><ul style="padding-left:18px;margin:4px 0"><li>a &amp; b</li></ul></div>'
    """
    return environment().get_template(name).render(**context)
