"""Charts of the value page: each takes an optional ``ax``, draws on it and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["holdout_chart", "interval_bars"]


def _ax(ax: plt.Axes | None, figsize: tuple[float, float] = (9, 4.2)) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def holdout_chart(table: pd.DataFrame, title: str = "Repeat purchases in the holdout period", ax: plt.Axes | None = None) -> plt.Axes:
    """Actual, model and naive mean holdout purchases by calibration frequency (the classic chart).

    ``table`` is :func:`analysis.clv.holdout_comparison` (``actual_mean``, ``predicted_mean``,
    ``naive_mean`` by ``frequency_bucket``).
    """
    ax = _ax(ax)
    positions = np.arange(len(table))
    series = [("actual_mean", "actual", "#333333", "o", "-"), ("predicted_mean", "model", "#2a788e", "s", "--"),
              ("naive_mean", "naive (same rate)", "#c97b2a", "^", ":")]
    for column, label, color, marker, style in series:
        if column in table:
            ax.plot(positions, table[column].to_numpy(), label=label, color=color, marker=marker, linestyle=style)
    ax.set_xticks(positions, table.index.astype(str))
    ax.set(xlabel="repeat purchases in the calibration period", ylabel="mean purchases per customer in the holdout",
           title=title)
    ax.legend(loc="upper left")
    return ax


def interval_bars(table: pd.DataFrame, value: str, low: str, high: str, title: str, xlabel: str,
                  ax: plt.Axes | None = None) -> plt.Axes:
    """Horizontal bars of ``value`` per row with ``low``-``high`` interval whiskers."""
    ax = _ax(ax, (8, 0.5 * len(table) + 1.5))
    positions = np.arange(len(table))
    centre = table[value].to_numpy(dtype=float)
    errors = np.vstack([centre - table[low].to_numpy(dtype=float), table[high].to_numpy(dtype=float) - centre])
    ax.barh(positions, centre, color="#2a788e", xerr=np.clip(errors, 0, None), capsize=4)
    ax.set_yticks(positions, table.index.astype(str))
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    return ax
