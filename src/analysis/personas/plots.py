"""Charts of the persona page: each takes an optional ``ax``, draws, returns it (never shows or saves)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .combined import grid_matrix


def _ax(ax: plt.Axes | None, figsize: tuple[float, float]) -> plt.Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _wrap(text: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def _empty(ax: plt.Axes | None, title: str) -> plt.Axes:
    """A blank panel with only the title, for a chart with nothing to show."""
    ax = _ax(ax, (6, 1.5))
    ax.set_axis_off()
    ax.set_title(_wrap(title))
    return ax


def value_grid_heatmap(grid: pd.DataFrame, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of value (or customers) per cell of a :func:`~analysis.personas.combined.value_grid`."""
    measure = "value_share" if "value_share" in grid else "customers_share"
    mat = grid_matrix(grid, measure) * 100
    if mat.empty:
        return _empty(ax, title)
    ax = _ax(ax, (min(2.0 + 1.3 * mat.shape[1], 12), 1.2 + 0.55 * mat.shape[0]))
    sns.heatmap(mat, annot=True, fmt=".0f", cmap="crest", cbar_kws={"label": f"% of {'value' if measure == 'value_share' else 'customers'}"}, ax=ax)
    ax.set(title=_wrap(title), xlabel=grid.attrs["columns"].replace("_", " "), ylabel=grid.attrs["rows"].replace("_", " "))
    ax.set_xticklabels([_wrap(t.get_text(), 16) for t in ax.get_xticklabels()], rotation=35, ha="right", fontsize=8)
    ax.tick_params(axis="y", labelrotation=0)
    return ax


def share_bars(personas: pd.DataFrame, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of customers vs share of value, one pair of bars per persona (rows of ``book.personas``)."""
    if personas.empty:
        return _empty(ax, title)
    value_col = next((c for c in ("clv_share", "revenue_share") if c in personas and personas[c].notna().any()), None)
    cols = {"customers_share": "customers"}
    if value_col:
        cols[value_col] = "predicted value (CLV)" if value_col == "clv_share" else "revenue"
    long = personas.melt(id_vars=["name"], value_vars=list(cols), var_name="measure", value_name="share")
    long["measure"] = long["measure"].map(cols)
    long["share"] = 100 * long["share"]
    long["name"] = long["name"].map(lambda n: _wrap(n, 34))
    ax = _ax(ax, (9, 1.0 + 0.55 * len(personas)))
    sns.barplot(data=long, y="name", x="share", hue="measure", palette="crest", ax=ax)
    ax.set(title=_wrap(title), xlabel="% of all customers / of value", ylabel="")
    ax.legend(title="", loc="lower right")
    return ax


def allocation_bars(allocation: pd.DataFrame, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Suggested budget share per persona, coloured by budget priority."""
    if allocation.empty:
        return _empty(ax, title)
    frame = allocation.assign(
        pct=100 * allocation["suggested_budget_share"].astype(float), label=allocation["persona"].map(lambda n: _wrap(n, 34)),
        # a persona without actions (a split the data do not support) has no priority: say so in the legend
        budget_priority=allocation["budget_priority"].fillna("").astype(str).replace("", "not set"),
    )
    ax = _ax(ax, (9, 1.0 + 0.5 * len(frame)))
    sns.barplot(data=frame, y="label", x="pct", hue="budget_priority", dodge=False, palette="crest", ax=ax)
    # seaborn draws the bars hue level by hue level, not in the frame's order: label each bar with its own length
    for patch in ax.patches:
        width = patch.get_width()
        if np.isfinite(width) and width > 0:
            ax.annotate(f"{width:.0f}%", (width, patch.get_y() + patch.get_height() / 2), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=9)
    ax.set(title=_wrap(title), xlabel="suggested % of the marketing budget", ylabel="")
    ax.legend(title="budget priority", loc="lower right")
    return ax
