"""The persona page's charts draw the numbers they are given, next to the labels they belong to.

Read back from the Matplotlib artists, as ``tests/test_plots.py`` does for :mod:`analysis.plots`.
A helper added to :mod:`analysis.personas.plots` without a check here fails
:func:`test_every_persona_plot_helper_is_checked`.
"""

from __future__ import annotations

import inspect

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis.personas import plots as persona_plots

from .test_plots import grouped_hbars, hbars


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _labels_at_bars(ax: plt.Axes) -> dict[str, str]:
    """Tick label -> the text written next to the bar at that tick."""
    ticks = list(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]))
    return {min(ticks, key=lambda t: abs(t[0] - text.xy[1]))[1]: text.get_text() for text in ax.texts}


ALLOCATION = pd.DataFrame({
    # priorities interleaved, so seaborn's hue order (high first) differs from the rows' order
    "persona": ["Big baskets", "Frequent", "Lapsed", "New"],
    "budget_priority": ["medium", "high", "medium", "low"],
    "suggested_budget_share": [0.37, 0.31, 0.26, 0.06],
})


def check_allocation_bars():
    ax = persona_plots.allocation_bars(ALLOCATION, "t")
    assert hbars(ax) == pytest.approx({"Big baskets": 37.0, "Frequent": 31.0, "Lapsed": 26.0, "New": 6.0})
    assert _labels_at_bars(ax) == {"Big baskets": "37%", "Frequent": "31%", "Lapsed": "26%", "New": "6%"}
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["high", "low", "medium"]


def check_share_bars():
    personas = pd.DataFrame({"name": ["A", "B"], "customers_share": [0.6, 0.4], "revenue_share": [0.2, 0.8]})
    drawn = grouped_hbars(persona_plots.share_bars(personas, "t"))
    assert drawn == pytest.approx({("A", "customers"): 60.0, ("B", "customers"): 40.0, ("A", "revenue"): 20.0, ("B", "revenue"): 80.0})
    plt.close("all")
    no_value = personas.assign(revenue_share=np.nan, clv_share=np.nan)
    ax = persona_plots.share_bars(no_value, "t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["customers"], "no empty value entry in the legend"


def check_value_grid_heatmap():
    grid = pd.DataFrame({"value_tier": ["Top 20%", "Top 20%", "Rest", "Rest"], "rfm_segment": ["Champions", "Lost", "Champions", "Lost"],
                         "customers": [50, 40, 300, 600], "value_share": [0.30, 0.05, 0.40, 0.25]})
    grid.attrs.update(rows="value_tier", columns="rfm_segment")
    ax = persona_plots.value_grid_heatmap(grid, "t")
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    cells = {}
    for text in ax.texts:
        x, y = text.get_position()
        cells[(rows[int(y)], cols[int(x)])] = text.get_text()
    assert cells == {("Rest", "Lost"): "25", ("Rest", "Champions"): "40", ("Top 20%", "Lost"): "5", ("Top 20%", "Champions"): "30"}


def _helpers() -> list[str]:
    return sorted(name for name, fn in inspect.getmembers(persona_plots, inspect.isfunction)
                  if fn.__module__ == persona_plots.__name__ and not name.startswith("_"))


def test_every_persona_plot_helper_is_checked():
    missing = [name for name in _helpers() if f"check_{name}" not in globals()]
    assert not missing, f"persona plot helpers without a check: {missing}"


@pytest.mark.parametrize("name", _helpers())
def test_persona_plot_draws_the_data_it_is_given(name):
    globals()[f"check_{name}"]()
