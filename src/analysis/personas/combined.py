"""Combined segmentation: where value concentrates across bases, and named target groups.

* :func:`value_grid` crosses two segmentations (by default value tier x behavior) and reports,
  per cell, customers and the share of value they hold;
* :func:`target_groups` ranks cells of up to three segmentations by the value they hold, so a
  user can pick "Top 20% / At risk / Affluent professionals" as one target group;
* :func:`target_group_labels` turns conditions on any attributes ("value tier in Top 1%/Top 20%,
  churn risk high, urban") into a labelled group that can be profiled like any segment.

Defaults enumerate the registry of bases (:mod:`analysis.segment.registry`): the value basis's
tiers, the behavioral basis's segmentations (rules first: RFM), and the other, descriptive bases in
registry order. A segmentation whose split the data do not support (verdict ``weak`` or ``none``)
is never picked by default.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..segment import registry
from ..segment.value import value_at_risk
from .bases import CAVEAT_LEVELS
from .population import Population

OTHER_CUSTOMERS = "All other customers"


def _roles() -> tuple[list[str], list[str], list[str]]:
    """Segmentation columns by role, from the registry: (value, behavior, descriptive)."""
    value, behavior = registry.get("value"), registry.get("behavioral")
    descriptive = [c for b in registry.BASES.values() if b.name not in (value.name, behavior.name) for c in b.segment_columns]
    return list(value.segment_columns), [*behavior.extra_segment_columns, behavior.segment_column], descriptive


def _supported(population: Population) -> list[str]:
    """Segmentations whose split the data support (verdict not weak / none), in population order."""
    return [c for c, spec in population.segmentations.items() if spec.verdict is None or spec.verdict.level not in CAVEAT_LEVELS]


def default_grid_columns(population: Population) -> tuple[str | None, str | None]:
    """Value tier x behavior (RFM segments, else behavioral clusters) where present and supported."""
    segs = _supported(population)
    value, behavior, _ = _roles()
    rows = next((c for c in value if c in segs), segs[0] if segs else None)
    cols = next((c for c in behavior if c in segs and c != rows), None)
    if cols is None:
        cols = next((c for c in segs if c != rows), None)
    return rows, cols


def _cells(pop: Population, by: list[str], min_size: int) -> pd.DataFrame:
    frame = pop.frame
    value_col = pop.value_column
    known = frame[by].notna().all(axis=1)
    sub = frame.loc[known]
    data = {"customers": sub.groupby(by, observed=True).size()}
    if value_col:
        total = frame[value_col].sum()
        data["value"] = sub.groupby(by, observed=True)[value_col].sum()
        data["value_share"] = data["value"] / total if total else np.nan
    if "churn_risk" in frame:
        data["high_churn_share"] = sub.assign(_h=sub["churn_risk"].eq("high")).groupby(by, observed=True)["_h"].mean()
    at_risk = value_at_risk(sub) if value_col else None
    if at_risk is not None:
        data["value_at_risk"] = at_risk.groupby([sub[c] for c in by], observed=True).sum()
    cells = pd.DataFrame(data).reset_index()
    cells["customers_share"] = cells["customers"] / len(frame)
    if "value_share" in cells:
        cells["value_index"] = cells["value_share"] / cells["customers_share"]
    cells["suppressed"] = cells["customers"] < min_size
    # below the minimum size a cell's value would describe a handful of customers: counts only
    hidden = [c for c in ("value", "value_share", "value_index", "high_churn_share", "value_at_risk") if c in cells]
    cells.loc[cells["suppressed"], hidden] = np.nan
    return cells


def value_grid(population: Population, rows: str | None = None, columns: str | None = None, *, min_size: int = 30) -> pd.DataFrame:
    """Customers and value per cell of two segmentations (long form, one row per cell).

    Parameters
    ----------
    population : Population
    rows, columns : str, optional
        Segmentation (or category attribute) columns; default :func:`default_grid_columns`.
    min_size : int
        Cells with fewer customers are flagged ``suppressed``: their customers are counted, their
        value columns are left empty (they would describe a handful of customers).

    Returns
    -------
    DataFrame
        ``rows`` and ``columns`` values, ``customers``, ``customers_share``, and where the run has a
        value measure ``value``, ``value_share``, ``value_index``; ``high_churn_share`` and
        ``value_at_risk`` where churn information exists.
    """
    drows, dcols = default_grid_columns(population)
    if (rows is None and drows is None) or (columns is None and dcols is None):
        empty = pd.DataFrame(columns=["customers", "customers_share"])
        empty.attrs.update(rows=None, columns=None)
        return empty  # fewer than two segmentations: nothing to cross
    rows, columns = rows or drows, columns or dcols
    if rows == columns:
        raise ValueError(f"a grid needs two different segmentations, got '{rows}' twice; this run has {list(population.segmentations)}.")
    for col in (rows, columns):
        if col not in population.frame:
            raise ValueError(f"'{col}' is not a column of this run's customers; choose from {list(population.segmentations)}.")
    cells = _cells(population, [rows, columns], min_size)
    cells.attrs.update(rows=rows, columns=columns)
    return cells


def grid_matrix(grid: pd.DataFrame, values: str = "value_share") -> pd.DataFrame:
    """A :func:`value_grid` as a matrix (rows x columns) of one measure, largest rows/columns first.

    Suppressed cells (and value measures of empty cells) are NaN; customer counts of empty cells are 0.
    """
    rows, columns = grid.attrs.get("rows"), grid.attrs.get("columns")
    if grid.empty or rows is None:
        return pd.DataFrame()
    measure = values if values in grid else "customers"
    mat = grid.pivot(index=rows, columns=columns, values=measure)
    if measure == "customers":
        mat = mat.fillna(0).astype(int)
    row_order = grid.groupby(rows)["customers"].sum().sort_values(ascending=False).index
    col_order = grid.groupby(columns)["customers"].sum().sort_values(ascending=False).index
    return mat.reindex(index=row_order, columns=col_order)


def crosstab(population: Population, a: str | None = None, b: str | None = None, *, min_size: int = 30) -> pd.DataFrame:
    """Cross-tab of any two bases: customers, share and value per cell (same shape as :func:`value_grid`).

    Defaults to :func:`crosstab_defaults`; empty when the run has fewer than two segmentations.
    """
    da, db = crosstab_defaults(population)
    a, b = a or da, b or db
    if a is None or b is None:
        empty = pd.DataFrame(columns=["customers", "customers_share"])
        empty.attrs.update(rows=None, columns=None)
        return empty
    return value_grid(population, a, b, min_size=min_size)


def default_target_bases(population: Population) -> list[str]:
    """Value tier, a behavioral segmentation and one descriptive basis, where the run has them (and
    the data support them); at least two, or none: a "group" of one basis would repeat its segments."""
    segs = _supported(population)
    value, behavior, descriptive = _roles()
    out = [c for c in value if c in segs][:1]
    out += [c for c in behavior if c in segs][:1]
    out += [c for c in descriptive if c in segs][:1]
    if len(out) < 2:
        out += [c for c in segs if c not in out][: 2 - len(out)]
    return out if len(out) >= 2 else []


def target_groups(population: Population, by: list[str] | None = None, *, min_size: int = 30, top: int = 8) -> pd.DataFrame:
    """Cells of up to three segmentations with at least ``min_size`` customers, most valuable first.

    Returns
    -------
    DataFrame
        ``name`` ("Top 20% / At risk / Affluent professionals"), the segment of each basis,
        ``customers``, ``customers_share``, ``value_share``, ``value_index`` (and churn columns
        where present). Cells worth more than average per customer (``value_index >= 1``) come
        first, each group by value share (by customers when the run has no value measure).
    """
    by = by or default_target_bases(population)
    if not by:
        return pd.DataFrame(columns=["name", "customers", "customers_share"])
    cells = _cells(population, by, min_size)
    cells = cells[~cells["suppressed"] & ~_whole_segments(population, cells, by)].drop(columns="suppressed")
    # str.cat works on an empty frame too (every cell below min_size), unlike a row-wise join
    names = cells[by[0]].astype(str)
    for col in by[1:]:
        names = names.str.cat(cells[col].astype(str), sep=" / ")
    cells.insert(0, "name", names)
    if "value_share" in cells:
        cells = cells.assign(_above=cells["value_index"] >= 1).sort_values(["_above", "value_share", "name"], ascending=[False, False, True])
        cells = cells.drop(columns="_above")
    else:
        cells = cells.sort_values(["customers", "name"], ascending=[False, True])
    cells = cells.head(top).reset_index(drop=True)
    cells.attrs["by"] = by
    return cells


def _whole_segments(population: Population, cells: pd.DataFrame, by: list[str]) -> pd.Series:
    """Cells that hold every customer of one of their segments: a group that only repeats a persona
    the page already shows (e.g. all of "Top 1%" falls in one demographic segment)."""
    whole = pd.Series(False, index=cells.index)
    for col in by:
        sizes = population.frame[col].value_counts()
        whole |= cells["customers"].to_numpy() == cells[col].map(sizes).to_numpy()
    return whole


def conditions_from_row(row: pd.Series, by: list[str]) -> dict[str, list[str]]:
    """The conditions that select one :func:`target_groups` row."""
    return {col: [str(row[col])] for col in by}


def top_target_group(groups: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """The most valuable row of :func:`target_groups` as ``{name: conditions}`` (empty when none)."""
    if groups.empty or not groups.attrs.get("by"):
        return {}
    row = groups.iloc[0]
    return {str(row["name"]): conditions_from_row(row, groups.attrs["by"])}


def crosstab_defaults(population: Population) -> tuple[str | None, str | None]:
    """Two bases to cross-tabulate: descriptive ones (demographic, geographic, psychographic) first,
    never the pair the value grid already crosses (:func:`default_grid_columns`); (None, None) when
    no other pair exists, so a page never shows the same cross twice."""
    value, behavior, descriptive = _roles()
    order = [*descriptive, *behavior, *value]
    supported = _supported(population)
    segs = [c for c in order if c in supported] + [c for c in supported if c not in order]
    grid = set(default_grid_columns(population))
    pairs = [(a, b) for i, a in enumerate(segs) for b in segs[i + 1:] if {a, b} != grid]
    return pairs[0] if pairs else (None, None)


def target_group_labels(population: Population, groups: dict[str, dict[str, Any]]) -> pd.Series:
    """Label customers by named target groups (first matching group wins; others: "All other customers").

    Parameters
    ----------
    groups : dict
        Group name -> conditions ``{column: value or list of values}`` (all must hold), e.g.
        ``{"High-value at-risk urban professionals": {"value_tier": ["Top 1%", "Top 20%"],
        "churn_risk": "high", "urban_rural": "urban"}}``.

    Raises
    ------
    ValueError
        When a condition names a column the run does not have.
    """
    frame = population.frame
    labels = pd.Series(OTHER_CUSTOMERS, index=frame.index, dtype=object)
    assigned = pd.Series(False, index=frame.index)
    for name, cond in groups.items():
        mask = pd.Series(True, index=frame.index)
        for col, wanted in cond.items():
            if col not in frame:
                raise ValueError(
                    f"target group '{name}': column '{col}' not found. Available: {sorted(population.attributes)[:40]}. "
                    f"Fix params.20_personas.target_groups in the run config."
                )
            values = wanted if isinstance(wanted, list) else [wanted]
            mask &= frame[col].astype(object).isin([str(v) for v in values] + list(values))
        new = mask & ~assigned
        labels[new] = name
        assigned |= new
    return labels.rename("target_group")
