"""Every chart helper draws the numbers it is given, next to the labels they belong to.

Each check reads the drawing back from the Matplotlib artists (bar widths and heights, tick
labels, annotation texts, line data) and compares it with the data passed in. A helper added to
:mod:`analysis.plots` without a check here fails :func:`test_every_plot_helper_is_checked`.
"""

from __future__ import annotations

import inspect

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import plots


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def hbars(ax: plt.Axes) -> dict[str, float]:
    """Tick label -> width of the bar drawn at that tick (horizontal bars)."""
    ticks = {round(t, 6): label.get_text() for t, label in zip(ax.get_yticks(), ax.get_yticklabels())}
    out = {}
    for patch in ax.patches:
        if patch.get_height() <= 0 or not np.isfinite(patch.get_width()):
            continue
        centre = round(patch.get_y() + patch.get_height() / 2, 6)
        nearest = min(ticks, key=lambda t: abs(t - centre))
        out.setdefault(ticks[nearest], []).append(patch.get_width())
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def grouped_hbars(ax: plt.Axes) -> dict[tuple[str, str], float]:
    """(tick label, legend entry) -> bar width, for seaborn's hue-grouped horizontal bars."""
    ticks = list(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]))
    out = {}
    for container, handle_label in zip(ax.containers, [t.get_text() for t in ax.get_legend().get_texts()]):
        for patch in container:
            centre = patch.get_y() + patch.get_height() / 2
            tick = min(ticks, key=lambda t: abs(t[0] - centre))[1]
            out[(tick, handle_label)] = patch.get_width()
    return out


def bar_label_texts(ax: plt.Axes) -> dict[str, str]:
    """Tick label -> the number written at the end of its bar."""
    ticks = list(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]))
    out = {}
    for text in ax.texts:
        y = text.xy[1] if hasattr(text, "xy") else text.get_position()[1]
        tick = min(ticks, key=lambda t: abs(t[0] - y))[1]
        out[tick] = text.get_text()
    return out


LEDGER = pd.DataFrame({
    "table": ["survey", "events", "transactions", "transactions", "transactions"],
    "outcome": ["kept", "kept", "set aside", "set aside", "kept"],
    "reason": ["", "", "return", "duplicate_line", ""],
    "rows": [714, 136, 1530, 43022, 70000],
})


def check_ledger_bars():
    ax = plots.ledger_bars(LEDGER)
    drawn = hbars(ax)
    assert drawn == {"survey: kept": 714, "events: kept": 136, "transactions: return": 1530,
                     "transactions: duplicate line": 43022, "transactions: kept": 70000}
    assert bar_label_texts(ax) == {"survey: kept": "714", "events: kept": "136", "transactions: return": "1,530",
                                   "transactions: duplicate line": "43,022", "transactions: kept": "70,000"}


def check_monthly_activity():
    tx = pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-02-03"]),
                       "amount": [10.0, 5.0, 7.0], "customer_id": ["a", "b", "a"]})
    ax = plots.monthly_activity(tx)
    assert sorted(p.get_height() for p in ax.patches) == [7.0, 15.0]  # sums per month, not means
    twin = [a for a in ax.figure.axes if a is not ax][0]
    assert twin.lines[0].get_ydata().tolist() == [2, 1]


def check_histogram():
    values = pd.Series([1.0, 2.0, 2.0, 3.0, np.nan])
    ax = plots.histogram(values, "t", "x")
    assert sum(p.get_height() for p in ax.patches) == 4


def check_top_counts():
    ax = plots.top_counts(pd.Series(["a", "b", "b", None, "b"]), "t")
    assert hbars(ax) == {"b": 3, "a": 1, "(missing)": 1}


def check_coverage_bars():
    cov = pd.DataFrame({"column": ["age", "income"], "filled_pct": [90.0, 40.0]})
    assert hbars(plots.coverage_bars(cov, "t")) == {"age": 90.0, "income": 40.0}


def check_k_selection():
    ev = pd.DataFrame({"k": [2, 3, 4], "cost": [9.0, 5.0, 4.0], "silhouette": [0.3, 0.5, 0.4],
                       "stability_ari": [0.9, 1.0, 0.8], "chosen": [False, True, False]})
    fig = plots.k_selection(ev)
    for ax, col in zip(fig.axes, ("cost", "silhouette", "stability_ari")):
        assert ax.lines[0].get_xdata().tolist() == [2, 3, 4]
        assert ax.lines[0].get_ydata().tolist() == ev[col].tolist()
        assert ax.lines[1].get_xdata()[0] == 3  # the chosen k marked


def check_share_bars():
    summary = pd.DataFrame({"customers_pct": [60.0, 40.0], "revenue_pct": [20.0, 80.0]}, index=["Small", "Big"])
    drawn = grouped_hbars(plots.share_bars(summary, {"customers_pct": "customers", "revenue_pct": "revenue"}, "t"))
    assert drawn == {("Small", "customers"): 60.0, ("Big", "customers"): 40.0, ("Small", "revenue"): 20.0, ("Big", "revenue"): 80.0}


def check_rfm_grid():
    scores = pd.DataFrame({"r_score": [1, 1, 5], "f_score": [1, 1, 5], "m_score": [1, 2, 5]})
    names = pd.DataFrame([["Champions", "Champions"], ["Lost", "New"]], index=[5, 1], columns=[1, 5])
    ax = plots.rfm_grid(scores, pd.Series([1.0, 2.0, 3.0]), names=names)
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0\nChampions", "0\nNew", "1\nChampions", "2\nLost"]


def check_lorenz():
    curve = pd.DataFrame({"customers_pct": [0.0, 50.0, 100.0], "value_pct": [0.0, 80.0, 100.0]})
    ax = plots.lorenz({"revenue": curve})
    assert ax.lines[0].get_ydata().tolist() == [0.0, 80.0, 100.0] and ax.lines[0].get_label() == "revenue"


def check_holdout_bars():
    comparison = pd.DataFrame({"actual_mean": [0.2, 1.5], "predicted_mean": [0.3, 1.2]}, index=pd.Index([0, 1], name="frequency"))
    ax = plots.holdout_bars(comparison)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    drawn = {(ticks[i], legend[j]): p.get_height() for j, c in enumerate(ax.containers) for i, p in enumerate(c)}
    assert drawn == {("0", "actual"): 0.2, ("1", "actual"): 1.5, ("0", "model"): 0.3, ("1", "model"): 1.2}


def _annotations(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def check_heatmap():
    m = pd.DataFrame([[0.25, 0.5], [0.75, 1.0]], index=["a", "b"], columns=["x", "y"])
    ax = plots.heatmap(m, "t", "x", "y")
    assert _annotations(ax) == ["0.25", "0.50", "0.75", "1.00"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]


def check_ranked_bars():
    table = pd.DataFrame({"city": ["A", "B", "C"], "revenue": [5.0, 50.0, 20.0]})
    ax = plots.ranked_bars(table, "city", "revenue", "t", "revenue", top=2)
    assert hbars(ax) == {"B": 50.0, "C": 20.0}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["B", "C"]


def check_diverging_heatmap():
    m = pd.DataFrame([[1.0, -1.0]], index=["r"], columns=["a", "b"])
    ax = plots.diverging_heatmap(m, "t", "x", "y", annot=pd.DataFrame([[2.0, 0.5]], index=["r"], columns=["a", "b"]))
    assert _annotations(ax) == ["2.00", "0.50"]


def check_location_scatter():
    ax = plots.location_scatter(pd.Series([51.5, 40.4]), pd.Series([-0.1, -3.7]), pd.Series(["London", "Madrid"]), "t")
    offsets = np.vstack([c.get_offsets() for c in ax.collections])
    assert sorted(map(tuple, offsets.round(1).tolist())) == [(-3.7, 40.4), (-0.1, 51.5)]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["London", "Madrid"]


def check_scree():
    ax = plots.scree(np.array([3.0, 1.5, 0.5]), 2)
    assert ax.lines[0].get_ydata().tolist() == [3.0, 1.5, 0.5]


def check_alpha_bars():
    rel = pd.DataFrame({"scale": ["adventure", "eco"], "alpha": [0.9, 0.6]})
    assert hbars(plots.alpha_bars(rel)) == {"adventure": 0.9, "eco": 0.6}


def check_rollup_bars():
    rollups = {"country": pd.DataFrame({"country": ["UK", "FR"], "revenue": [100.0, 30.0]}),
               "city": pd.DataFrame({"city": ["London", "Paris", "Lyon"], "revenue": [90.0, 20.0, 10.0]})}
    fig = plots.rollup_bars(rollups, "revenue", "revenue", "t")
    assert hbars(fig.axes[0]) == {"UK": 100.0, "FR": 30.0}
    assert hbars(fig.axes[1]) == {"London": 90.0, "Paris": 20.0, "Lyon": 10.0}


def check_split_bars():
    splits = {"urban_rural": pd.DataFrame({"urban_rural": ["urban", "rural"], "customers_pct": [70.0, 30.0], "revenue_pct": [60.0, 40.0]})}
    fig = plots.split_bars(splits, "t")
    assert grouped_hbars(fig.axes[0]) == {("urban", "% of customers"): 70.0, ("rural", "% of customers"): 30.0,
                                          ("urban", "% of revenue"): 60.0, ("rural", "% of revenue"): 40.0}


def check_size_vs_value():
    seg = pd.DataFrame({"segment": ["Loyal", "Lost"], "customers_pct": [30.0, 70.0], "revenue_pct": [80.0, 20.0]})
    ax = plots.size_vs_value(seg)
    drawn = hbars(ax)
    assert drawn == {"Loyal": [30.0, 80.0], "Lost": [70.0, 20.0]}


def check_pareto():
    ax = plots.pareto(pd.Series([80.0, 10.0, 5.0, 5.0, 0.0]))
    x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    assert x.tolist() == [0, 20, 40, 60, 80, 100] and y.round(6).tolist() == [0, 80, 90, 95, 100, 100]
    assert "top 20% hold 80%" in [t.get_text() for t in ax.texts]


def check_level_mix():
    ax = plots.level_mix(pd.Series(["low"] * 6 + ["high"] * 3 + ["medium"]), order=["low", "medium", "high"])
    assert hbars(ax) == {"low": 60.0, "medium": 10.0, "high": 30.0}
    assert bar_label_texts(ax) == {"low": "60%", "medium": "10%", "high": "30%"}


def _band_thickness(ax: plt.Axes) -> dict[str, float]:
    """Band label -> its thickness where it leaves the previous segment (left end)."""
    out = {}
    for band in ax.collections:
        verts = band.get_paths()[0].vertices
        start = verts[np.isclose(verts[:, 0], verts[:, 0].min())]
        out[band.get_label()] = round(float(np.ptp(start[:, 1])), 6)
    return out


MIGRATION = pd.DataFrame([[8, 2, 0], [0, 5, 1]], index=["Loyal", "Lapsed"], columns=["Loyal", "Lapsed", "New"])


def check_migration_flow():
    ax = plots.migration_flow(MIGRATION, "t")
    assert _band_thickness(ax) == {"Loyal -> Loyal": 8, "Loyal -> Lapsed": 2, "Lapsed -> Lapsed": 5, "Lapsed -> New": 1}
    assert sorted(_annotations(ax)) == sorted(["Loyal (10)", "Lapsed (6)", "Loyal (8)", "Lapsed (7)", "New (1)", "previous", "now"])


def check_migration_flows():
    fig = plots.migration_flows({"rfm_segment": MIGRATION, "value_tier": MIGRATION.iloc[:1, :2]})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["Rfm segment", "Value tier"]
    assert _band_thickness(fig.axes[1]) == {"Loyal -> Loyal": 8, "Loyal -> Lapsed": 2}
    assert "Loyal (10)" in _annotations(fig.axes[1])


CHECKS = {name.removeprefix("check_"): fn for name, fn in dict(globals()).items() if name.startswith("check_")}


def _helpers() -> list[str]:
    return sorted(name for name, fn in inspect.getmembers(plots, inspect.isfunction)
                  if fn.__module__ == plots.__name__ and not name.startswith("_") and name != "setup_style")


def test_every_plot_helper_is_checked():
    missing = [name for name in _helpers() if name not in CHECKS]
    assert not missing, f"plot helpers without a label check in tests/test_plots.py: {missing}"


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_plot_draws_the_data_it_is_given(name):
    CHECKS[name]()


def test_the_old_ledger_defect_is_caught():
    """Grouping bars by outcome (seaborn hue) and labelling them in ledger order pairs numbers with other rows."""
    import seaborn as sns

    fig, ax = plt.subplots()
    frame = LEDGER.assign(label=LEDGER["table"] + ": " + LEDGER["reason"].where(LEDGER["reason"] != "", "kept"))
    sns.barplot(data=frame, y="label", x="rows", hue="outcome", dodge=False, ax=ax)
    for patch, value in zip(ax.patches, frame["rows"]):
        ax.annotate(f"{value:,}", (patch.get_width(), patch.get_y() + patch.get_height() / 2))
    with pytest.raises(AssertionError):
        assert bar_label_texts(ax)["transactions: return"] == "1,530"
