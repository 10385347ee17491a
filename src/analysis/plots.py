"""Plot functions for the notebooks: each takes an optional ``ax``, draws, and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = "crest"


def setup_style() -> None:
    """House style for report figures and tables (called once per notebook).

    Also shows every DataFrame through the one table renderer (:func:`analysis.tables.install`).
    """
    from . import tables

    tables.install()
    sns.set_theme(style="whitegrid", context="notebook", rc={"figure.figsize": (9, 4.2), "figure.dpi": 96, "axes.titleweight": "bold"})


def _ax(ax: plt.Axes | None, figsize: tuple[float, float] | None = None) -> plt.Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


#: Bar colours of the row ledger by outcome.
LEDGER_COLOURS = {"kept": "#2f855a", "set aside": "#c05621"}


def ledger_bars(ledger: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Rows kept and set aside by reason, one bar per table x outcome, each labelled with its own count.

    Bars are drawn row by row in the ledger's order (not grouped by outcome, which would pair
    labels with other rows' bars), so bar ``i`` is ledger row ``i``.
    """
    ax = _ax(ax, (9, max(2.5, 0.4 * len(ledger) + 1)))
    labels = np.where(ledger["outcome"] == "kept", ledger["table"] + ": kept",
                      ledger["table"] + ": " + ledger["reason"].astype(str).str.replace("_", " "))
    rows = ledger["rows"].to_numpy(dtype=float)
    positions = np.arange(len(ledger))
    bars = ax.barh(positions, rows, color=[LEDGER_COLOURS.get(o, "#888") for o in ledger["outcome"]])
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()  # first ledger row on top, as in the table beside it
    ax.set(xlabel="rows", ylabel="", title="Rows kept and set aside, by reason")
    ax.set_xscale("symlog")
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in rows], padding=4, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for o, c in LEDGER_COLOURS.items() if (ledger["outcome"] == o).any()]
    ax.legend(handles, [o for o in LEDGER_COLOURS if (ledger["outcome"] == o).any()], loc="lower right")
    return ax


def monthly_activity(transactions: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Revenue (bars) and active customers (line) per month."""
    ax = _ax(ax)
    month = transactions["timestamp"].dt.to_period("M").dt.to_timestamp()
    agg = transactions.assign(month=month).groupby("month").agg(revenue=("amount", "sum"), customers=("customer_id", "nunique"))
    ax.bar(agg.index, agg["revenue"], width=20, color="#4c78a8", label="revenue")
    ax.set(ylabel="revenue", xlabel="month", title="Revenue and active customers per month")
    twin = ax.twinx()
    twin.plot(agg.index, agg["customers"], color="#e45756", marker="o", label="active customers")
    twin.set_ylabel("active customers")
    twin.grid(False)
    ax.legend(loc="upper left")
    twin.legend(loc="upper right")
    return ax


def histogram(values: pd.Series, title: str, xlabel: str, log: bool = False, ax: plt.Axes | None = None) -> plt.Axes:
    """Distribution of one numeric variable (optionally on a log axis)."""
    ax = _ax(ax)
    data = values.dropna()
    if log:
        data = data[data > 0]
    sns.histplot(x=data, bins=40, log_scale=log, color="#4c78a8", ax=ax)
    ax.set(title=title, xlabel=xlabel, ylabel="count")
    return ax


def top_counts(values: pd.Series, title: str, top: int = 12, ax: plt.Axes | None = None) -> plt.Axes:
    """Most frequent values of a categorical variable (missing shown as its own bar)."""
    ax = _ax(ax, (9, 0.35 * min(top, values.nunique(dropna=False)) + 1.2))
    counts = values.fillna("(missing)").astype(str).value_counts().head(top)
    sns.barplot(x=counts.to_numpy(), y=counts.index, color="#4c78a8", ax=ax)
    ax.set(title=title, xlabel="customers", ylabel="")
    return ax


def coverage_bars(coverage: pd.DataFrame, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of filled values per column."""
    ax = _ax(ax, (9, 0.3 * len(coverage) + 1.2))
    sns.barplot(data=coverage, y="column", x="filled_pct", color="#72b7b2", ax=ax)
    ax.set(xlim=(0, 100), xlabel="% of rows filled", ylabel="", title=title)
    return ax


def k_selection(evidence: pd.DataFrame, title: str = "Choosing the number of segments") -> plt.Figure:
    """Cost (elbow), silhouette and bootstrap stability per k, the chosen k marked."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    chosen = int(evidence.loc[evidence["chosen"], "k"].iloc[0]) if "chosen" in evidence and evidence["chosen"].any() else None
    for ax, col, label in zip(axes, ("cost", "silhouette", "stability_ari"), ("cost (lower = tighter)", "silhouette (higher = better separated)", "stability (ARI of refits)")):
        ax.plot(evidence["k"], evidence[col], marker="o", color="#4c78a8")
        if chosen is not None:
            ax.axvline(chosen, color="#e45756", linestyle="--", label=f"chosen k={chosen}")
            ax.legend(loc="best", fontsize=8)
        ax.set(xlabel="k (number of segments)", title=label)
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def share_bars(summary: pd.DataFrame, share_cols: dict[str, str], title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Side-by-side % bars per segment, e.g. share of customers vs share of revenue."""
    ax = _ax(ax, (9, 0.45 * len(summary) + 1.5))
    long = summary[list(share_cols)].rename(columns=share_cols).reset_index(names="segment").melt(id_vars="segment", var_name="measure", value_name="pct")
    sns.barplot(data=long, y="segment", x="pct", hue="measure", palette=["#9ecae9", "#1f77b4", "#2ca02c"][: len(share_cols)], ax=ax)
    ax.set(xlabel="% of total", ylabel="", title=title)
    ax.legend(loc="lower right", fontsize=9)
    return ax


def rfm_grid(scores: pd.DataFrame, values: pd.Series, title: str = "Customers by recency and frequency score",
             ax: plt.Axes | None = None, names: pd.DataFrame | None = None) -> plt.Axes:
    """Heatmap of customer counts by R and F score, annotated with the count (and, given ``names``
    from :func:`analysis.segment.behavioral.rule_grid`, the segment each cell gets)."""
    ax = _ax(ax, (9, 6) if names is not None else (7, 5))
    grid = scores.assign(v=values).pivot_table(index="f_score", columns="r_score", values="v", aggfunc="size")
    if names is not None:
        grid = grid.reindex(index=names.index, columns=names.columns)
    grid = grid.fillna(0).sort_index(ascending=False)
    annot = grid.astype(int).astype(str)
    if names is not None:
        labels = names.reindex(index=grid.index, columns=grid.columns).fillna("")
        annot = annot + "\n" + labels.apply(lambda col: col.str.replace(" / ", " /\n", regex=False))
    sns.heatmap(grid, annot=annot, fmt="", cmap="Blues", cbar_kws={"label": "customers"}, ax=ax,
                annot_kws={"fontsize": 7 if names is not None else 10})
    ax.set(xlabel="recency score (5 = most recent)", ylabel="frequency score (5 = most orders)", title=title)
    return ax


def lorenz(curves: dict[str, pd.DataFrame], title: str = "Concentration of value (Pareto curve)", ax: plt.Axes | None = None) -> plt.Axes:
    """Cumulative share of value by share of customers (best first), one line per measure."""
    ax = _ax(ax, (7, 5))
    for label, curve in curves.items():
        ax.plot(curve["customers_pct"], curve["value_pct"], label=label)
    ax.plot([0, 100], [0, 100], color="grey", linestyle=":", label="equal shares")
    ax.axvline(20, color="#999", linewidth=0.8)
    ax.set(xlabel="% of customers (highest value first)", ylabel="% of total", title=title)
    ax.legend(loc="lower right")
    return ax


def holdout_bars(comparison: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Actual vs predicted mean holdout purchases by calibration-period purchase count."""
    ax = _ax(ax)
    frame = comparison.reset_index()
    bucket = frame.columns[0]
    long = frame.melt(id_vars=bucket, value_vars=["actual_mean", "predicted_mean"], var_name="series", value_name="purchases")
    long["series"] = long["series"].map({"actual_mean": "actual", "predicted_mean": "model"})
    sns.barplot(data=long, x=bucket, y="purchases", hue="series", palette=["#4c78a8", "#f58518"], ax=ax)
    ax.set(xlabel="repeat purchases in the calibration period", ylabel="mean purchases in the holdout period",
           title="Model check: predicted vs actual purchases in the holdout period")
    return ax


def heatmap(matrix: pd.DataFrame, title: str, xlabel: str, ylabel: str, fmt: str = ".2f", cmap: str = "viridis", ax: plt.Axes | None = None) -> plt.Axes:
    """A labelled heatmap of a small matrix (e.g. P(alive) by frequency x recency)."""
    ax = _ax(ax, (8, 5.5))
    annot = matrix.shape[0] * matrix.shape[1] <= 150
    sns.heatmap(matrix, annot=annot, fmt=fmt, cmap=cmap, ax=ax, cbar_kws={"shrink": 0.8})
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def ranked_bars(table: pd.DataFrame, label: str, value: str, title: str, xlabel: str, top: int = 15, ax: plt.Axes | None = None) -> plt.Axes:
    """Horizontal bars of the ``top`` rows of ``table`` ranked by ``value`` (largest on top).

    One bar per row, its length the row's value: nothing is averaged, so ``table`` must hold one
    row per label (e.g. areas named by their full path, "Columbus, GA" and "Columbus, OH").
    """
    data = table.nlargest(top, value)[[label, value]].dropna()
    ax = _ax(ax, (9, 0.32 * len(data) + 1.3))
    positions = np.arange(len(data))
    ax.barh(positions, data[value].to_numpy(dtype=float), color="#4c78a8")
    ax.set_yticks(positions, data[label].astype(str).to_numpy())
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel, ylabel="")
    return ax


def diverging_heatmap(matrix: pd.DataFrame, title: str, xlabel: str, ylabel: str, center: float = 0.0, fmt: str = ".2f",
                      annot: pd.DataFrame | None = None, colorbar_label: str = "", ax: plt.Axes | None = None) -> plt.Axes:
    """A heatmap coloured around ``center`` (blue below, red above), e.g. factor loadings or lift.

    ``annot`` optionally gives the numbers to print (e.g. lift values when colours show log lift).
    """
    ax = _ax(ax, (max(6, 1.1 * matrix.shape[1] + 3), 0.38 * matrix.shape[0] + 1.6))
    labels = annot if annot is not None else matrix
    show = matrix.shape[0] * matrix.shape[1] <= 200
    reach = float(np.nanmax(np.abs(matrix.to_numpy(dtype=float) - center))) if matrix.size else 1.0
    sns.heatmap(matrix, center=center, vmin=center - reach, vmax=center + reach, cmap="RdBu_r", annot=labels.to_numpy() if show else False,
                fmt=fmt, cbar_kws={"shrink": 0.8, "label": colorbar_label}, ax=ax)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def location_scatter(latitude: pd.Series, longitude: pd.Series, labels: pd.Series, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Customers' coordinates coloured by segment (no map tiles: longitude vs latitude)."""
    ax = _ax(ax, (8, 6))
    frame = pd.DataFrame({"longitude": longitude.to_numpy(), "latitude": latitude.to_numpy(), "segment": labels.to_numpy()}).dropna()
    sns.scatterplot(data=frame, x="longitude", y="latitude", hue="segment", s=12, alpha=0.6, linewidth=0, ax=ax)
    mid = np.radians(frame["latitude"].mean()) if len(frame) else 0.0
    ax.set_aspect(1 / max(np.cos(mid), 0.2))  # equal distances along both axes near the middle latitude
    ax.set(title=title, xlabel="longitude", ylabel="latitude")
    ax.legend(loc="best", fontsize=8, markerscale=2)
    return ax


def scree(eigenvalues: np.ndarray, n_factors: int, reference: np.ndarray | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Eigenvalues per factor and the number of factors kept, against the Kaiser line at 1 or, when
    ``reference`` is given, against the same eigenvalues in random data (parallel analysis)."""
    ax = _ax(ax, (8, 3.6))
    k = np.arange(1, len(eigenvalues) + 1)
    ax.plot(k, eigenvalues, marker="o", color="#4c78a8", label="these answers")
    if reference is None:
        ax.axhline(1.0, color="#999", linestyle=":", label="eigenvalue 1 (Kaiser rule)")
        title, ylabel = "How many factors? Eigenvalues of the item correlations", "eigenvalue"
    else:
        ax.plot(k, reference, color="#999", linestyle=":", marker=".", label="random data of the same size (95th percentile)")
        title, ylabel = "How many factors? Parallel analysis", "eigenvalue (common variance)"
    ax.axvline(n_factors + 0.5, color="#e45756", linestyle="--", label=f"{n_factors} factor(s) kept")
    ax.set(title=title, xlabel="factor", ylabel=ylabel)
    ax.legend(loc="upper right", fontsize=9)
    return ax


def alpha_bars(reliability: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Cronbach's alpha per scale against the usual 0.7 ("acceptable") line."""
    ax = _ax(ax, (8, 0.45 * len(reliability) + 1.4))
    colors = ["#2f855a" if a >= 0.7 else "#c05621" for a in reliability["alpha"].fillna(0)]
    ax.barh(reliability["scale"].astype(str), reliability["alpha"].fillna(0), color=colors)
    ax.axvline(0.7, color="#999", linestyle=":", label="0.7: acceptable")
    ax.set(xlim=(0, 1), title="Reliability of each scale (Cronbach's alpha)", xlabel="alpha", ylabel="")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=9)
    return ax


def rollup_bars(rollups: dict[str, pd.DataFrame], value: str, xlabel: str, title: str, top: int = 12) -> plt.Figure:
    """One ranked-bar panel per geographic level (levels with a single area are skipped): one bar
    per area, its total, labelled by the rollup's ``area`` name when it has one."""
    shown = {level: table for level, table in rollups.items() if len(table) > 1 and table[value].notna().any()}
    if not shown:
        fig, ax = plt.subplots(figsize=(9, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "Only one area at every level: nothing to rank.", ha="center", va="center")
        return fig
    heights = [0.3 * min(top, len(t)) + 1.0 for t in shown.values()]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, sum(heights) + 0.6), gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (level, table) in zip(axes[:, 0], shown.items()):
        label = "area" if "area" in table else level  # disambiguated names ("Columbus, GA") when the rollup has them
        ranked_bars(table, label, value, f"by {level.replace('_', ' ')} (top {min(top, len(table))})", xlabel, top=top, ax=ax)
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def split_bars(splits: dict[str, pd.DataFrame], title: str) -> plt.Figure:
    """Share of customers vs share of revenue for each attribute split (urban/rural, climate, ...)."""
    fig, axes = plt.subplots(1, max(len(splits), 1), figsize=(4.6 * max(len(splits), 1) + 1, 3.6), squeeze=False)
    for ax, (column, table) in zip(axes[0], splits.items()):
        cols = {"customers_pct": "customers"} | ({"revenue_pct": "revenue"} if table["revenue_pct"].notna().any() else {})
        share_bars(table.set_index(column), {c: f"% of {label}" for c, label in cols.items()}, column.replace("_", " "), ax=ax)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def size_vs_value(segments: pd.DataFrame, title: str = "Share of customers vs share of revenue", ax: plt.Axes | None = None) -> plt.Axes:
    """Small index chart: for each segment, its share of customers next to its share of revenue.

    ``segments`` has ``segment``, ``customers_pct`` and ``revenue_pct`` (one basis's profiles).
    """
    data = segments.dropna(subset=["customers_pct"]).head(8)
    ax = _ax(ax, (5.2, 0.42 * len(data) + 1.1))
    positions = np.arange(len(data))
    height = 0.4
    revenue = data["revenue_pct"].fillna(0).to_numpy(dtype=float) if "revenue_pct" in data else np.zeros(len(data))
    ax.barh(positions - height / 2, data["customers_pct"].to_numpy(dtype=float), height, color="#9ecae9", label="% of customers")
    ax.barh(positions + height / 2, revenue, height, color="#1f77b4", label="% of revenue")
    ax.set_yticks(positions, data["segment"].astype(str))
    ax.invert_yaxis()
    ax.set(xlabel="% of total", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return ax


def pareto(values: pd.Series, title: str = "How concentrated is value?", ax: plt.Axes | None = None) -> plt.Axes:
    """Small index chart: cumulative % of ``values`` held by the top x% of customers."""
    ax = _ax(ax, (5.2, 3.2))
    ordered = np.sort(values.fillna(0).clip(lower=0).to_numpy(dtype=float))[::-1]
    total = ordered.sum()
    share = np.cumsum(ordered) / total * 100 if total > 0 else np.zeros(len(ordered))
    customers = np.arange(1, len(ordered) + 1) / max(len(ordered), 1) * 100
    ax.plot(np.r_[0, customers], np.r_[0, share], color="#1f77b4")
    ax.plot([0, 100], [0, 100], color="grey", linestyle=":")
    top20 = float(np.interp(20, customers, share)) if len(ordered) else 0.0
    ax.axvline(20, color="#999", linewidth=0.8)
    ax.annotate(f"top 20% hold {top20:.0f}%", (20, top20), xytext=(6, -12), textcoords="offset points", fontsize=8)
    ax.set(xlabel="% of customers (highest first)", ylabel="% of value", title=title, xlim=(0, 100), ylim=(0, 100))
    return ax


def level_mix(levels: pd.Series, order: list[str] | None = None, title: str = "Churn risk mix", ax: plt.Axes | None = None) -> plt.Axes:
    """Small index chart: % of customers at each level (e.g. churn risk low / medium / high)."""
    ax = _ax(ax, (5.2, 2.2))
    counts = levels.dropna().astype(str).value_counts()
    order = [o for o in (order or []) if o in counts.index] + [o for o in counts.index if o not in (order or [])]
    pct = counts.reindex(order) / max(counts.sum(), 1) * 100
    colours = {"low": "#2f855a", "medium": "#d69e2e", "high": "#c05621"}
    bars = ax.barh(np.arange(len(pct)), pct.to_numpy(dtype=float), color=[colours.get(o, "#4c78a8") for o in order])
    ax.set_yticks(np.arange(len(pct)), order)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:.0f}%" for v in pct], padding=3, fontsize=8)
    ax.set(xlabel="% of customers", title=title, xlim=(0, 100))
    return ax


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def migration_flow(counts: pd.DataFrame, title: str = "Where customers moved", ax: plt.Axes | None = None) -> plt.Axes:
    """Flow chart of a migration matrix: previous segments on the left, current on the right, a
    band from each to each whose thickness is the number of customers who made that move.

    ``counts`` has previous segments as rows and current segments as columns (customers in both
    runs, :func:`analysis.monitoring.migration_matrix`). Each side's node is labelled with its
    segment and customers; bands take the colour of the segment they leave, and each band's
    label (``artist.get_label()``) is ``"<previous> -> <current>"``.
    """
    counts = counts.fillna(0)
    rows, cols = [str(r) for r in counts.index], [str(c) for c in counts.columns]
    values = counts.to_numpy(dtype=float)
    ax = _ax(ax, (9, max(3.0, 0.45 * max(len(rows), len(cols)) + 1.2)))
    total = values.sum()
    gap = 0.02 * total if total else 1.0
    names = list(dict.fromkeys(rows + cols))
    palette = dict(zip(names, sns.color_palette("tab20", len(names))))
    width, x = 0.06, np.linspace(0.06, 0.94, 60)

    def tops(sizes: np.ndarray) -> np.ndarray:
        return np.r_[0.0, np.cumsum(sizes + gap)[:-1]]

    left, right = values.sum(axis=1), values.sum(axis=0)
    left_top, right_top = tops(left), tops(right)
    for name, y0, size in zip(rows, left_top, left):  # one node per segment (a dozen at most)
        ax.add_patch(plt.Rectangle((0, y0), width, size, color=palette[name]))
        ax.text(-0.01, y0 + size / 2, f"{name} ({size:,.0f})", ha="right", va="center", fontsize=8)
    for name, y0, size in zip(cols, right_top, right):
        ax.add_patch(plt.Rectangle((1 - width, y0), width, size, color=palette[name]))
        ax.text(1.01, y0 + size / 2, f"{name} ({size:,.0f})", ha="left", va="center", fontsize=8)
    out_offset, in_offset = left_top.copy(), right_top.copy()
    shape = _smooth((x - x[0]) / (x[-1] - x[0]))
    for i, j in zip(*np.nonzero(values)):  # one band per non-empty cell, vectorised along its length
        size = values[i, j]
        start, end = out_offset[i], in_offset[j]
        lower = start + (end - start) * shape
        ax.fill_between(x, lower, lower + size, color=palette[rows[i]], alpha=0.45, linewidth=0, label=f"{rows[i]} -> {cols[j]}")
        out_offset[i] += size
        in_offset[j] += size
    height = max(left_top[-1] + left[-1] if len(rows) else 0, right_top[-1] + right[-1] if len(cols) else 0, 1.0)
    ax.set(xlim=(-0.02, 1.02), ylim=(height, 0), title=title)
    ax.text(width / 2, -0.01 * height, "previous", ha="center", va="bottom", fontsize=8, color="#52606d")
    ax.text(1 - width / 2, -0.01 * height, "now", ha="center", va="bottom", fontsize=8, color="#52606d")
    ax.axis("off")
    return ax


def migration_flows(matrices: dict[str, pd.DataFrame], title: str = "Where customers moved, by segmentation") -> plt.Figure:
    """One :func:`migration_flow` panel per segmentation (name -> counts matrix), two per row."""
    if not matrices:
        fig, ax = plt.subplots(figsize=(9, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No segmentation in both runs: no migration to draw.", ha="center", va="center")
        return fig
    ncols = 1 if len(matrices) == 1 else 2
    nrows = -(-len(matrices) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(9 * ncols, 4.2 * nrows), squeeze=False)
    for ax, (name, counts) in zip(axes.ravel(), matrices.items()):
        migration_flow(counts, name[:1].upper() + name[1:].replace("_", " "), ax=ax)
    for ax in axes.ravel()[len(matrices):]:
        ax.axis("off")
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig
