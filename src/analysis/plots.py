"""Plot functions for the notebooks: each takes an optional ``ax``, draws, and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = "crest"


def setup_style() -> None:
    """House style for report figures (called once per notebook)."""
    sns.set_theme(style="whitegrid", context="notebook", rc={"figure.figsize": (9, 4.2), "figure.dpi": 96, "axes.titleweight": "bold"})


def _ax(ax: plt.Axes | None, figsize: tuple[float, float] | None = None) -> plt.Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def ledger_bars(ledger: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Rows kept and set aside by reason, one bar per table x outcome."""
    ax = _ax(ax, (9, max(2.5, 0.4 * len(ledger) + 1)))
    frame = ledger.assign(label=np.where(ledger["outcome"] == "kept", ledger["table"] + ": kept", ledger["table"] + ": " + ledger["reason"].str.replace("_", " ")))
    sns.barplot(data=frame, y="label", x="rows", hue="outcome", dodge=False, palette={"kept": "#2f855a", "set aside": "#c05621"}, ax=ax)
    ax.set(xlabel="rows", ylabel="", title="Rows kept and set aside, by reason")
    ax.set_xscale("symlog")
    for patch, value in zip(ax.patches, frame["rows"]):
        ax.annotate(f"{value:,}", (patch.get_width(), patch.get_y() + patch.get_height() / 2), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
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
