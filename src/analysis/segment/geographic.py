"""Geographic segmentation: where customers are, what they are worth there, and spatial clusters.

* **Rollups** by country / region / state / city (:func:`rollup`): customers, revenue, revenue
  per customer, growth (last 12 months against the 12 before, when the transactions cover both
  windows) and penetration (customers per 100,000 residents, when a population is known). An
  area is its full path (country -> region -> state -> city): the two Columbuses, or a US and a
  Canadian "West", are totalled apart and named apart ("Columbus, GA", "West, Canada";
  :func:`area_labels`).
* **Locations** come from the customer table as validated (for order-line data, the contract's
  one address per customer), the table ``exports/customers.csv`` carries, so a customer's
  segment never contradicts the location exported beside it.
* **Splits** by urban/rural and climate zone, from data columns or, for US states, from the lookup
  table shipped with the package (``analysis/data/us_states.yaml``: census region and division,
  dominant climate, 2020 population), see :func:`enrich_from_lookup`.
* **Segments** (``geographic_segment``): with latitude/longitude, k-means on the coordinates
  placed on the unit sphere (straight-line distance there is monotone in great-circle distance,
  so clusters respect haversine geometry at any scale), k chosen by
  :mod:`analysis.segment.selection`, each cluster named from its dominant region (and city when
  two clusters share a region). Without coordinates, the finest rollup with enough customers
  per area (:func:`rollup_segments`): e.g. states, with small states pooled within their parent
  ("Other West"), never across countries: a country outside the reference data stays its own group.

No map tiles or downloads: charts are ranked bars and heatmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from .base import BaseSegmenter, InfeasibleK, SegmentationResult, Verdict, rules_verdict
from .common import MISSING, add_shares, customer_value, segment_sizes, unique_names

#: Administrative levels, coarsest first.
LEVELS: tuple[str, ...] = ("country", "region", "state", "city")
#: Attribute splits shown when present (data columns or lookup).
SPLITS: tuple[str, ...] = ("urban_rural", "climate_zone", "census_region")
EARTH_RADIUS_KM = 6371.0088
UNKNOWN_LOCATION = "(location unknown)"
#: Transaction columns :func:`segment_geographic` reads: revenue per customer and its growth
#: (:func:`revenue_windows`).
TRANSACTION_COLUMNS = ("customer_id", "timestamp", "amount")

#: Columns of the segment profiles (``exports/segments.csv`` rows of basis ``geographic``).
PROFILE_COLUMNS: dict[str, str] = {
    "segment": "segment name: dominant region (and city), or the area of a rollup",
    "customers": "customers in the segment",
    "customers_pct": "% of customers",
    "revenue": "purchase value of the segment's customers",
    "revenue_pct": "% of all purchase value",
    "revenue_per_customer": "purchase value per customer",
    "growth_pct": "revenue growth, last 12 months vs the 12 before (%), when transactions cover both",
    "dominant_country / dominant_region / dominant_state / dominant_city": "most common value and its share",
    "urban_pct": "% of customers living in urban areas (when urban_rural is known)",
    "dominant_climate": "most common climate zone",
    "centre_latitude / centre_longitude": "centre of a spatial cluster",
    "radius_km": "median distance of the cluster's customers to its centre (km)",
    "description": "the segment in words: main city, settlement type, climate, spread",
}


# ------------------------------------------------------------------------------------------
# Lookup enrichment
# ------------------------------------------------------------------------------------------


def lookup_frame(lookup: dict[str, Any]) -> pd.DataFrame:
    """The rows of a lookup (as read from ``analysis/data/us_states.yaml``) as a DataFrame."""
    return pd.DataFrame(lookup["rows"], columns=lookup["columns"])


def enrich_from_lookup(customers: pd.DataFrame, lookup: dict[str, Any] | None, *, min_match: float = 0.8) -> tuple[pd.DataFrame, list[str]]:
    """Add lookup attributes (e.g. climate zone, census region) the customer table lacks.

    The lookup's ``key`` column (e.g. ``state``) is matched case-insensitively on names and on
    codes. With a ``country`` column, it applies country by country: to the countries where at
    least ``min_match`` of the customers with a key value match (e.g. the United States), and
    not to the others (e.g. Canadian provinces), whose customers keep blank attributes and their
    own areas. Without one, it applies when ``min_match`` of all key values match. Columns
    already in the data are kept as they are. A ``population`` column of the lookup becomes
    ``<key>_population`` and the ``code`` column ``<key>_code`` (short names, "GA").

    Returns
    -------
    customers : DataFrame
        A copy with the added columns.
    notes : list of str
    """
    if not lookup:
        return customers, []
    key = lookup.get("key", "state")
    if key not in customers or customers[key].notna().sum() == 0:
        return customers, []
    table = lookup_frame(lookup)
    text = customers[key].astype("string").str.strip().str.lower()
    by_name = table.set_index(table[key].str.lower())
    code_col = lookup.get("code")
    by_code = table.set_index(table[code_col].str.lower()) if code_col in table else None
    row = pd.Series(by_name.index.get_indexer(text.fillna("")), index=customers.index)
    if by_code is not None:
        row = row.where(row >= 0, pd.Series(by_code.index.get_indexer(text.fillna("")), index=customers.index))
    has_key = text.notna()
    hit = (row >= 0) & has_key
    country = (customers["country"].astype(object).where(customers["country"].notna(), MISSING)
               if "country" in customers and customers["country"].notna().any() else pd.Series("", index=customers.index))
    share = hit.groupby(country).sum() / has_key.groupby(country).sum().clip(lower=1)
    covered = share.index[share >= min_match]
    matched = hit & country.isin(covered)
    if not matched.any():
        return customers, [f"The {key} lookup was not applied: only {100 * hit.sum() / max(has_key.sum(), 1):.0f}% of {key} values match it."]
    out = customers.copy()
    added = []
    for col in table.columns:
        if col == key:
            continue
        target = f"{key}_population" if col == "population" else f"{key}_code" if col == code_col else col
        if target in out and out[target].notna().any():
            continue
        values = table[col].to_numpy(dtype=object if col != "population" else float)
        out[target] = np.where(matched, values[row.clip(lower=0).to_numpy()], None if col != "population" else np.nan)
        if col == "population":
            out[target] = out[target].astype(float)
        added.append(target)
    notes = [f"Added {added} from the package's {key} lookup ({matched.sum():,} of {has_key.sum():,} customers matched)."] if added else []
    outside = [c for c in share.index if c not in covered and c != ""]
    if outside:
        notes.append(f"Countries not in the {key} lookup keep their own areas and blank lookup attributes: {sorted(map(str, outside))[:10]}.")
    if (~hit & has_key & country.isin(covered)).any():
        unknown = sorted(customers.loc[~hit & has_key & country.isin(covered), key].astype(str).unique())[:10]
        notes.append(f"{key} values not in the lookup (attributes left blank): {unknown}.")
    return out, notes


# ------------------------------------------------------------------------------------------
# Rollups
# ------------------------------------------------------------------------------------------


def levels_present(customers: pd.DataFrame) -> list[str]:
    """Administrative levels with at least one value, coarsest first."""
    return [lvl for lvl in LEVELS if lvl in customers and customers[lvl].notna().any()]


def revenue_windows(transactions: pd.DataFrame | str | Path | None, as_of: str | pd.Timestamp,
                    months: int = 12) -> tuple[pd.DataFrame | None, str]:
    """Revenue per customer in the last ``months`` before ``as_of`` and in the ``months`` before that.

    Lines after the end of ``as_of`` fall in neither window (the data contract sets them aside
    anyway). Returns (None, reason) when the transactions do not cover the earlier window. ``transactions`` may
    be the path of the order lines' Parquet file: DuckDB then sums the windows where the file lies.

    Returns
    -------
    DataFrame or None
        Indexed by ``customer_id``: ``revenue_recent``, ``revenue_previous``.
    str
        A note on the windows, e.g. ``"01 Jan 2024-31 Dec 2024 vs 01 Jan 2023-31 Dec 2023"``.
    """
    in_place = transactions is not None and not isinstance(transactions, pd.DataFrame)
    if transactions is None or (not in_place and transactions.empty):
        return None, "growth needs transactions"
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    mid = end - pd.DateOffset(months=months)
    start = mid - pd.DateOffset(months=months)
    if in_place:
        return _revenue_windows_in_place(transactions, start, mid, end, months)
    first = transactions["timestamp"].min()
    if first > start + pd.Timedelta(days=31):
        return None, _late_start(first, start, months)
    ts = transactions["timestamp"]
    window = np.where(ts >= end, None, np.where(ts >= mid, "revenue_recent", np.where(ts >= start, "revenue_previous", None)))
    frame = transactions.assign(window=window).dropna(subset=["window"])
    wide = frame.pivot_table(index="customer_id", columns="window", values="amount", aggfunc="sum", fill_value=0.0)
    for col in ("revenue_recent", "revenue_previous"):
        if col not in wide:
            wide[col] = 0.0
    return wide[["revenue_recent", "revenue_previous"]], _window_label(start, mid, end)


def _late_start(first: pd.Timestamp, start: pd.Timestamp, months: int) -> str:
    return (f"growth not shown: the transactions start on {first:%d %b %Y}, after the start of the earlier "
            f"{months}-month window ({start:%d %b %Y})")


def _window_label(start: pd.Timestamp, mid: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"{mid:%d %b %Y}-{end - pd.Timedelta(days=1):%d %b %Y} vs {start:%d %b %Y}-{mid - pd.Timedelta(days=1):%d %b %Y}"


def _revenue_windows_in_place(path: str | Path, start: pd.Timestamp, mid: pd.Timestamp, end: pd.Timestamp,
                              months: int) -> tuple[pd.DataFrame | None, str]:
    """:func:`revenue_windows` of a Parquet file, summed by DuckDB (exact decimals: the same on any thread count)."""
    from ..engines import DuckDBEngine, exact

    with DuckDBEngine() as engine:
        engine.register("tx", path)
        n_lines, first = engine.con_.execute('SELECT count(*), min("timestamp") FROM tx').fetchone()
        if not n_lines:
            return None, "growth needs transactions"
        if pd.Timestamp(first) > start + pd.Timedelta(days=31):
            return None, _late_start(pd.Timestamp(first), start, months)
        amount = exact("amount")
        wide = engine.con_.execute(
            f"""SELECT customer_id,
                       CAST(coalesce(sum({amount}) FILTER (WHERE "timestamp" >= $mid), 0) AS DOUBLE) AS revenue_recent,
                       CAST(coalesce(sum({amount}) FILTER (WHERE "timestamp" < $mid), 0) AS DOUBLE) AS revenue_previous
                FROM tx WHERE "timestamp" >= $start AND "timestamp" < $end GROUP BY 1 ORDER BY 1""",
            {"mid": mid.to_datetime64(), "start": start.to_datetime64(), "end": end.to_datetime64()}).df()
    if wide["customer_id"].dtype == object:  # text ids as pandas reads them from Parquet; others keep their type
        wide["customer_id"] = wide["customer_id"].astype("str")
    return wide.set_index("customer_id").rename_axis(columns="window"), _window_label(start, mid, end)


def level_keys(level: str, present: Sequence[str]) -> list[str]:
    """Columns that identify an area of ``level``: its full path, every level present from the
    coarsest down to it, so same-named areas under different parents stay apart.

    Examples
    --------
    >>> level_keys("city", ["country", "region", "state", "city"])
    ['country', 'region', 'state', 'city']
    """
    return [lvl for lvl in present if LEVELS.index(lvl) <= LEVELS.index(level)]


def area_labels(customers: pd.DataFrame, level: str) -> pd.Series:
    """Each customer's area at ``level`` by name, disambiguated where a name repeats under
    different parents: "Columbus, GA" and "Columbus, OH", "West, Canada" and "West, United States".

    The nearest parent that tells the paths apart is added (a state by its code when the lookup
    gave one, ``state_code``); a name that is unique stays as it is.

    Returns
    -------
    Series
        Aligned with ``customers`` (same index); missing values show as "(missing)".

    Examples
    --------
    >>> c = pd.DataFrame({"state": ["Georgia", "Ohio", "Ohio"], "state_code": ["GA", "OH", "OH"],
    ...                   "city": ["Columbus", "Columbus", "Dayton"]})
    >>> area_labels(c, "city").tolist()
    ['Columbus, GA', 'Columbus, OH', 'Dayton']
    """
    keys = level_keys(level, levels_present(customers)) or [level]
    paths = _as_text(customers[keys]).reset_index(drop=True)
    short = {}
    if "state" in keys and "state_code" in customers:
        codes = customers["state_code"].astype(object).where(customers["state_code"].notna()).reset_index(drop=True)
        short["state"] = codes.where(codes.notna(), paths["state"])
    qualifiers = paths.assign(**short)
    first = ~paths.duplicated()
    unique, qual = paths[first], qualifiers[first]
    names = unique[level].astype(str)
    for parent in reversed(keys[:-1]):  # nearest parent first; a handful of levels
        repeated = names.duplicated(keep=False)
        if not repeated.any():
            break
        known = qual[parent].astype(str).ne(MISSING)
        names = names.where(~(repeated & known), names + ", " + qual[parent].astype(str))
    names = unique_names(names)
    lookup = unique.assign(_name=names.to_numpy())
    out = paths.merge(lookup, on=keys, how="left")["_name"]
    return pd.Series(out.to_numpy(dtype=object), index=customers.index, name=level)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), MISSING).astype(str)


def rollup(
    customers: pd.DataFrame,
    by: str | Sequence[str],
    value: pd.Series | None = None,
    windows: pd.DataFrame | None = None,
    *,
    population: str | None = None,
    population_level: str | None = None,
) -> pd.DataFrame:
    """Customers, revenue, growth and penetration per area.

    Parameters
    ----------
    customers : DataFrame
        Customers with the geographic columns (``customer_id`` and the ``by`` columns).
    by : str or list of str
        Column(s) to group by. A level of :data:`LEVELS` is keyed by its full path
        (:func:`level_keys`), so same-named areas (two Springfields) are totalled apart.
    value : Series, optional
        Purchase value per customer (index ``customer_id``).
    windows : DataFrame, optional
        From :func:`revenue_windows`; adds ``revenue_recent``, ``revenue_previous`` and ``growth_pct``.
    population : str, optional
        Column holding the population of the customer's area at ``population_level``; adds
        ``population`` and ``penetration_per_million`` (customers per million residents) when the
        rollup is at that level or coarser. A coarser area's population is the sum over the
        areas assigned to it (each area to the coarser area most of its customers are in).
    population_level : str, optional
        The level the population refers to (default: the finest level present).

    Returns
    -------
    DataFrame sorted by revenue (customers when there is no value), one row per area: ``area``
    (its name, disambiguated by :func:`area_labels`), the key columns, ``customers``, ``customers_pct``, ``revenue``, ``revenue_pct``,
    ``revenue_per_customer`` and, where available, ``revenue_recent``, ``revenue_previous``,
    ``growth_pct``, ``population``, ``penetration_per_million``.

    Examples
    --------
    >>> cust = pd.DataFrame({"customer_id": ["a", "b", "c"], "region": ["N", "N", "S"]})
    >>> rollup(cust, "region", pd.Series([10.0, 30.0, 20.0], index=["a", "b", "c"]))[["area", "customers", "revenue_per_customer"]].values.tolist()
    [['N', 2, 20.0], ['S', 1, 20.0]]
    """
    by = [by] if isinstance(by, str) else list(by)
    present = levels_present(customers)
    is_level = len(by) == 1 and by[0] in present
    keys = level_keys(by[0], present) if is_level else by
    frame = pd.concat([customers[["customer_id"]].reset_index(drop=True), _as_text(customers[keys]).reset_index(drop=True)], axis=1)
    frame["area"] = (area_labels(customers, by[0]).to_numpy() if is_level
                     else frame[keys].astype(str).agg(", ".join, axis=1).to_numpy())
    ids = frame["customer_id"].astype(str)
    frame["value"] = value.reindex(ids).to_numpy(dtype=float) if value is not None else np.nan
    aggs = {"customers": ("customer_id", "size"), "revenue": ("value", "sum")}
    if windows is not None:
        frame["revenue_recent"] = windows["revenue_recent"].reindex(ids).fillna(0.0).to_numpy()
        frame["revenue_previous"] = windows["revenue_previous"].reindex(ids).fillna(0.0).to_numpy()
        aggs.update(revenue_recent=("revenue_recent", "sum"), revenue_previous=("revenue_previous", "sum"))
    out = frame.groupby([*keys, "area"], sort=False).agg(**aggs).reset_index()
    add_shares(out, len(frame), has_value=value is not None)
    if windows is not None:
        out["growth_pct"] = 100.0 * (out["revenue_recent"] / out["revenue_previous"].where(out["revenue_previous"] > 0) - 1.0)
    pop_level = population_level or (present[-1] if present else None)
    if (is_level and population and population in customers and customers[population].notna().any()
            and pop_level in present and LEVELS.index(by[0]) <= LEVELS.index(pop_level)):
        area_keys = level_keys(pop_level, present)
        areas = _as_text(customers[list(dict.fromkeys(area_keys + keys))]).reset_index(drop=True)
        areas["population"] = customers[population].to_numpy(dtype=float)
        area_pop = areas.groupby(area_keys, sort=False)["population"].median()
        # each area belongs to the group most of its customers are in
        home = areas.groupby(area_keys + [k for k in keys if k not in area_keys], sort=False).size().rename("n").reset_index()
        home = home.sort_values("n", ascending=False, kind="stable").drop_duplicates(area_keys)
        home = home.merge(area_pop.reset_index(), on=area_keys, how="left")
        pop = home.groupby(keys, sort=False)["population"].sum(min_count=1).reset_index()
        out = out.merge(pop, on=keys, how="left")
        out["penetration_per_million"] = 1e6 * out["customers"] / out["population"].where(out["population"] > 0)
    sort = "revenue" if value is not None else "customers"
    order = ["area", *keys, "customers", "customers_pct", "revenue", "revenue_pct", "revenue_per_customer", "revenue_recent",
             "revenue_previous", "growth_pct", "population", "penetration_per_million"]
    out = out[[c for c in order if c in out.columns]]
    return out.sort_values([sort, "customers"], ascending=False, kind="stable").reset_index(drop=True)


def rollup_segments(customers: pd.DataFrame, min_segment_size: int = 30, *, min_covered: float = 0.5) -> tuple[pd.Series, str, str]:
    """Geographic segments without coordinates: the finest rollup with enough customers per area.

    The level is the finest of :data:`LEVELS` at which at least ``min_covered`` of customers live
    in areas (full paths) with ``min_segment_size`` or more customers (else the coarsest level).
    Smaller areas are pooled within their parent ("Other West"); a pool still smaller than
    ``min_segment_size`` moves up to the next parent, up to the country, and pools never cross
    countries. A pool holding every customer of its parent is named after the parent itself, so
    a country with no area of its own ("Canada") stays one group. Names repeat-proof as in
    :func:`area_labels` ("Other West, Canada").

    Returns
    -------
    labels : Series
        Segment per customer (index ``customer_id``); missing location is ``"(location unknown)"``.
    level : str
    reason : str

    Examples
    --------
    >>> cust = pd.DataFrame({"customer_id": list("abcdef"), "region": ["N"] * 4 + ["S"] * 2,
    ...                      "state": ["X", "X", "X", "Y", "Z", "Z"]})
    >>> labels, level, _ = rollup_segments(cust, min_segment_size=2)
    >>> level, labels.tolist()
    ('state', ['X', 'X', 'X', 'Other N', 'Z', 'Z'])
    """
    present = levels_present(customers)
    index = pd.Index(customers["customer_id"].astype(str), name="customer_id")
    if not present:
        raise ValueError("no geographic columns (country, region, state, city) in the customer table")
    text = _as_text(customers[present]).reset_index(drop=True)
    chosen = present[0]
    for level in reversed(present):
        sizes = text.groupby(level_keys(level, present))[level].transform("size")
        if (sizes >= min_segment_size).mean() >= min_covered:
            chosen = level
            break
    keys = level_keys(chosen, present)
    known = text[chosen].ne(MISSING).to_numpy()
    sizes = text.groupby(keys)[chosen].transform("size").to_numpy()
    labels = pd.Series(np.where(known, area_labels(customers, chosen).to_numpy(dtype=object), UNKNOWN_LOCATION), dtype=object)
    pending = known & (sizes < min_segment_size)
    ancestors = keys[:-1][::-1]  # nearest parent first
    for position, parent in enumerate(ancestors):  # a handful of levels, each vectorised
        parent_keys = level_keys(parent, present)
        pool = pd.Series(pending).groupby([text[k] for k in parent_keys]).transform("sum").to_numpy()
        everyone = text.groupby(parent_keys)[parent].transform("size").to_numpy()
        top = position == len(ancestors) - 1 or parent == "country"
        assign = pending & ((pool >= min_segment_size) | top)
        names = area_labels(customers, parent).to_numpy(dtype=object)
        labels[assign] = np.where(pool[assign] == everyone[assign], names[assign], "Other " + names[assign].astype(str))
        pending &= ~assign
        if parent == "country":
            break
    labels[pending] = "Other"
    n_areas = int(pd.Series(sizes[known] >= min_segment_size).groupby([text.loc[known, k] for k in keys]).first().sum()) if known.any() else 0
    parent_word = f" within their {keys[-2]} (or a coarser area when still small, never across countries)" if len(keys) > 1 else ""
    reason = (f"No latitude/longitude in the data, so segments are areas: the {chosen} level is the finest where at least "
              f"{100 * min_covered:.0f}% of customers live in areas with {min_segment_size}+ customers ({n_areas} such areas); "
              f"smaller areas are pooled{parent_word}.")
    return pd.Series(labels.to_numpy(dtype=object), index=index, name="geographic_segment"), chosen, reason


def segment_mix(geography: pd.Series, segments: pd.Series, *, top: int = 12) -> pd.DataFrame:
    """Share (%) of each area's customers in each segment of another basis (rows sum to 100).

    Parameters
    ----------
    geography : Series
        Area per customer (index ``customer_id``).
    segments : Series
        Segment of another basis per customer (same index; customers without one are left out).
    top : int
        Keep the largest areas.
    """
    frame = pd.DataFrame({"area": geography, "segment": segments.reindex(geography.index)}).dropna()
    keep = frame["area"].value_counts().head(top).index
    frame = frame[frame["area"].isin(keep)]
    table = pd.crosstab(frame["area"], frame["segment"], normalize="index") * 100.0
    return table.loc[[a for a in keep if a in table.index]]


#: Other segmentations to cross with geography, in order of preference (label columns / data columns).
OTHER_SEGMENTS: tuple[str, ...] = ("demographic_segment", "psychographic_segment", "behavioral_segment", "customer_segment")


def other_segmentation(customers: pd.DataFrame, labels: dict[str, pd.DataFrame]) -> tuple[str, pd.Series] | None:
    """The first available segmentation of another basis (labels saved by earlier pages of the run,
    or the data's own ``customer_segment``), as (column name, Series indexed by ``customer_id``)."""
    columns: dict[str, pd.Series] = {}
    for frame in labels.values():
        for col in frame.columns:
            if col in OTHER_SEGMENTS:
                columns[col] = pd.Series(frame[col].to_numpy(), index=frame["customer_id"].astype(str))
    if "customer_segment" in customers and customers["customer_segment"].notna().any():
        columns.setdefault("customer_segment", pd.Series(customers["customer_segment"].to_numpy(), index=customers["customer_id"].astype(str)))
    for col in OTHER_SEGMENTS:
        if col in columns:
            return col, columns[col]
    return None


# ------------------------------------------------------------------------------------------
# Spatial clusters
# ------------------------------------------------------------------------------------------


def to_unit_sphere(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Coordinates in degrees -> points on the unit sphere (n x 3).

    Examples
    --------
    >>> to_unit_sphere(np.array([90.0]), np.array([0.0])).round(6).tolist()
    [[0.0, 0.0, 1.0]]
    """
    lat, lon = np.radians(latitude), np.radians(longitude)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def from_unit_sphere(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points in 3-D (not necessarily unit length) -> latitude, longitude in degrees."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km (vectorised).

    Examples
    --------
    >>> round(float(haversine_km(np.array([51.5074]), np.array([-0.1278]), np.array([48.8566]), np.array([2.3522]))[0]))
    344
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


class SpatialClusters(BaseSegmenter):
    """k-means on customer coordinates placed on the unit sphere, k chosen from evidence.

    Parameters
    ----------
    n_clusters : int or None
        Fixed k; None chooses from ``k_range`` (:func:`analysis.segment.selection.choose_k`).
    k_range : tuple of int
        Candidate k (inclusive).
    n_bootstrap : int
        Refits per k for stability.
    sample_size : int
        Rows used to evaluate each k (silhouette on the same sample).
    min_segment_pct : float
        k whose smallest cluster is under this % of customers are not chosen.
    random_state : int, optional

    Attributes
    ----------
    k_choice_ : KChoice
    kmeans_ : KMeans
    labels_ : ndarray of int (0 = largest cluster)
    centres_ : DataFrame
        ``latitude``, ``longitude`` of each cluster's centre (index: cluster).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> coords = pd.DataFrame({"latitude": np.r_[rng.normal(51.5, .1, 50), rng.normal(40.4, .1, 30)],
    ...                        "longitude": np.r_[rng.normal(-0.1, .1, 50), rng.normal(-3.7, .1, 30)]})
    >>> model = SpatialClusters(k_range=(2, 4), n_bootstrap=2, random_state=0).fit(coords)
    >>> model.k_choice_.k, np.bincount(model.labels_).tolist()
    (2, [50, 30])
    """

    basis = "geographic"
    notebook = "11_geographic"
    _distinct_what = "locations"

    def __init__(self, n_clusters: int | None = None, k_range: tuple[int, int] = (2, 10), n_bootstrap: int = 5,
                 sample_size: int = 3000, min_segment_pct: float = 2.0, n_reference: int = 3, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.n_bootstrap = n_bootstrap
        self.sample_size = sample_size
        self.min_segment_pct = min_segment_pct
        self.n_reference = n_reference
        self.random_state = random_state

    @staticmethod
    def _points(coords: pd.DataFrame) -> np.ndarray:
        return to_unit_sphere(coords["latitude"].to_numpy(dtype=float), coords["longitude"].to_numpy(dtype=float))

    def _encode(self, coords: pd.DataFrame, fit: bool) -> np.ndarray:
        return self._points(coords)

    @property
    def selection_size(self) -> int:
        """k is evaluated on a random sample of ``sample_size`` locations; the final model is fitted on all."""
        return self.sample_size

    def _make_model(self, k: int, seed: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=4, random_state=seed)

    def fit(self, coords: pd.DataFrame, y: Any = None) -> SpatialClusters:
        """Fit on ``latitude`` / ``longitude`` (degrees, no missing values)."""
        super().fit(coords)
        order = np.argsort(self._order)  # raw cluster of each segment id, largest first
        lat, lon = from_unit_sphere(self.model_.cluster_centers_[order])
        self.centres_ = pd.DataFrame({"latitude": lat, "longitude": lon}, index=pd.RangeIndex(len(order), name="cluster"))
        return self

    @property
    def kmeans_(self) -> KMeans:
        return self.model_


def _dominant(values: pd.Series, groups: pd.Series) -> pd.DataFrame:
    """Most common value per group and its share (%)."""
    frame = pd.DataFrame({"g": groups.to_numpy(), "v": values.astype(object).where(values.notna(), MISSING).to_numpy()})
    counts = frame.groupby(["g", "v"]).size().rename("n").reset_index()
    counts["share"] = 100.0 * counts["n"] / counts.groupby("g")["n"].transform("sum")
    top = counts.sort_values(["g", "n", "v"], ascending=[True, False, True]).drop_duplicates("g").set_index("g")
    return top[["v", "share"]]


def name_clusters(customers: pd.DataFrame, clusters: pd.Series) -> pd.Series:
    """A name per cluster from its dominant region (or the finest level present), plus its dominant
    city when clusters share a region; unique."""
    present = levels_present(customers)
    groups = pd.Series(clusters.to_numpy())
    if not present:
        names = pd.Series([f"Area {c + 1}" for c in sorted(groups.unique())], index=sorted(groups.unique()))
        return names
    base_level = "region" if "region" in present else present[-1]
    base = _dominant(area_labels(customers, base_level).reset_index(drop=True), groups)["v"]
    names = base.astype(str)
    finer = [lvl for lvl in present if LEVELS.index(lvl) > LEVELS.index(base_level)]
    if finer and names.duplicated(keep=False).any():
        sub = _dominant(area_labels(customers, finer[-1]).reset_index(drop=True), groups)["v"].astype(str)
        dup = names.duplicated(keep=False)
        names = names.where(~dup, names + ": " + sub)
    return unique_names(names.sort_index())


def profile_segments(customers: pd.DataFrame, labels: pd.Series, value: pd.Series | None = None,
                     windows: pd.DataFrame | None = None, model: SpatialClusters | None = None,
                     clusters: pd.Series | None = None) -> pd.DataFrame:
    """Profiles with the columns of :data:`PROFILE_COLUMNS`, one row per segment (largest first)."""
    out = segment_sizes(labels, value)
    by_customer = customers.set_index(customers["customer_id"].astype(str)).reindex(labels.index)
    if windows is not None:
        recent = windows["revenue_recent"].reindex(labels.index).fillna(0.0).groupby(labels.to_numpy()).sum()
        previous = windows["revenue_previous"].reindex(labels.index).fillna(0.0).groupby(labels.to_numpy()).sum()
        out["growth_pct"] = out["segment"].map(100.0 * (recent / previous.where(previous > 0) - 1.0))
    for level in levels_present(customers):
        dom = _dominant(area_labels(by_customer, level), labels)
        out[f"dominant_{level}"] = out["segment"].map(dom["v"] + " (" + dom["share"].round(0).astype(int).astype(str) + "%)")
    if "urban_rural" in by_customer and by_customer["urban_rural"].notna().any():
        urban = by_customer["urban_rural"].astype(str).str.lower().eq("urban").groupby(labels.to_numpy()).mean() * 100.0
        out["urban_pct"] = out["segment"].map(urban)
    if "climate_zone" in by_customer and by_customer["climate_zone"].notna().any():
        out["dominant_climate"] = out["segment"].map(_dominant(by_customer["climate_zone"], labels)["v"])
    if model is not None and clusters is not None:
        centre = model.centres_.reindex(clusters.to_numpy())
        dist = haversine_km(by_customer["latitude"].to_numpy(dtype=float), by_customer["longitude"].to_numpy(dtype=float),
                            centre["latitude"].to_numpy(), centre["longitude"].to_numpy())
        radius = pd.Series(dist).groupby(labels.to_numpy()).median()
        names = pd.Series(labels.to_numpy()).groupby(clusters.to_numpy()).first()
        centres = model.centres_.assign(segment=names.reindex(model.centres_.index).to_numpy()).set_index("segment")
        out["centre_latitude"] = out["segment"].map(centres["latitude"])
        out["centre_longitude"] = out["segment"].map(centres["longitude"])
        out["radius_km"] = out["segment"].map(radius)
    out["description"] = _describe(out)
    return out


def _describe(profiles: pd.DataFrame) -> pd.Series:
    """One phrase per segment from its profile columns (vectorised over segments)."""
    finest = next((lvl for lvl in reversed(LEVELS) if f"dominant_{lvl}" in profiles), None)
    text = (f"largest {finest}: " + profiles[f"dominant_{finest}"].astype(str)) if finest else pd.Series("", index=profiles.index)
    if "urban_pct" in profiles:
        text = text + "; " + profiles["urban_pct"].round(0).astype("Int64").astype(str) + "% urban"
    if "dominant_climate" in profiles:
        text = text + "; " + profiles["dominant_climate"].astype(str) + " climate"
    if "radius_km" in profiles:
        text = text + "; half within " + profiles["radius_km"].round(0).astype("Int64").astype(str) + " km of the centre"
    return text.str.strip("; ")


# ------------------------------------------------------------------------------------------
# One call for a notebook
# ------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class GeographicResult(SegmentationResult):
    """Everything the geographic page shows and saves (``available`` False with ``message`` when
    the data hold no location). ``model`` is the fitted :class:`SpatialClusters` when segments are
    clusters of coordinates, None when they are areas."""

    basis: ClassVar[str] = "geographic"
    title: ClassVar[str] = "Geographic segments"

    method: str = ""
    reason: str = ""
    customers: pd.DataFrame = field(default_factory=pd.DataFrame)
    levels: list[str] = field(default_factory=list)
    rollups: dict[str, pd.DataFrame] = field(default_factory=dict)
    splits: dict[str, pd.DataFrame] = field(default_factory=dict)
    labels: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["customer_id", "geographic_segment"]))
    model: SpatialClusters | None = None
    growth_note: str = ""
    value_source: str = ""

    def _rules_verdict(self) -> Verdict | None:
        return rules_verdict(f"{self.method}, small areas pooled")

    @property
    def main_level(self) -> str:
        """The level to lead with: the finest with 2 to 12 areas (else the finest present)."""
        candidates = [lvl for lvl in self.levels if 2 <= len(self.rollups[lvl]) <= 12]
        return candidates[-1] if candidates else self.levels[-1]

    def area(self, level: str | None = None) -> pd.Series:
        """Area of each customer at ``level`` (default :attr:`main_level`), by its disambiguated name
        (:func:`area_labels`), indexed by ``customer_id``."""
        level = level or self.main_level
        values = area_labels(self.customers, level)
        return pd.Series(values.to_numpy(), index=pd.Index(self.customers["customer_id"].astype(str), name="customer_id"), name=level)

    def growth_table(self, level: str | None = None) -> pd.DataFrame | None:
        """Areas at ``level`` with growth, fastest first (None when growth is not available)."""
        table = self.rollups.get(level or self.main_level)
        if table is None or "growth_pct" not in table:
            return None
        return table.dropna(subset=["growth_pct"]).sort_values("growth_pct", ascending=False)

    def penetration_table(self, min_customers: int = 10) -> tuple[str, pd.DataFrame] | None:
        """(level, rollup) of the finest level with penetration (customers per million residents),
        keeping areas with at least ``min_customers`` (rates on a handful of customers are noise); or None."""
        with_pop = [lvl for lvl in self.levels if "penetration_per_million" in self.rollups[lvl]]
        if not with_pop:
            return None
        table = self.rollups[with_pop[-1]]
        return with_pop[-1], table[table["customers"] >= min_customers]

    def interpretation(self, level: str | None = None) -> str:
        """A sentence on the rollup at ``level`` (default: the coarsest with 2+ areas)."""
        if not self.available:
            return self.message
        level = level or self.main_level
        table = self.rollups[level]
        top = table.iloc[0]
        has_value = table["revenue"].notna().any() and table["revenue"].sum() > 0
        text = f"By {level.replace('_', ' ')}, {top.area} leads with {top.customers_pct:.0f}% of customers"
        sizable = table[table["customers"] >= max(5, 0.02 * table["customers"].sum())]
        if has_value:
            text += f" and {top.revenue_pct:.0f}% of revenue"
            if len(sizable) > 1:
                b = sizable.loc[sizable["revenue_per_customer"].idxmax()]
                avg = table["revenue"].sum() / table["customers"].sum()
                who = "it also" if b.area == top.area else b.area
                text += f"; {who} has the highest revenue per customer ({b.revenue_per_customer / avg:.2f}x the average)"
        if "growth_pct" in sizable and sizable["growth_pct"].notna().sum() > 1:
            g = sizable.loc[sizable["growth_pct"].idxmax()]
            text += f"; {g.area} grew fastest ({g.growth_pct:+.0f}% in the last 12 months against the 12 before)"
        return text + "."

    def summary_lines(self) -> list[str]:
        how = (f"spatial clusters of customers' coordinates, k={self.k_choice.k} chosen from evidence" if self.model is not None
               else f"areas ({self.method.split(': ')[-1]} level, small areas pooled)")
        lines = [f"{len(self.profiles)} geographic segments: {how}. {self.interpretation()}"]
        lines += [f"{r.segment}: {r.customers_pct:.0f}% of customers" + (f", {r.revenue_pct:.0f}% of revenue" if pd.notna(r.revenue_pct) else "")
                  for r in self.profiles.head(8).itertuples()]
        return lines

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"method": self.method, "reason": self.reason, "levels": self.levels}
        if self.model is not None:
            payload["centres"] = self.model.centres_.reset_index().to_dict(orient="records")
        return payload


def segment_geographic(
    customers: pd.DataFrame,
    transactions: pd.DataFrame | str | Path | None = None,
    *,
    as_of: str | pd.Timestamp,
    spend: pd.Series | None = None,
    lookup: dict[str, Any] | None = None,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 10),
    min_segment_size: int = 30,
    n_bootstrap: int = 5,
    sample_size: int = 3000,
    random_state: int | None = 42,
) -> GeographicResult:
    """Rollups, splits and geographic segments of a customer table.

    Parameters
    ----------
    customers : DataFrame
        Validated customers (country, region, state, city, latitude, longitude, urban_rural,
        climate_zone, population where present).
    transactions : DataFrame or path to Parquet, optional
        For revenue and growth; only :data:`TRANSACTION_COLUMNS` are read. The page passes the run's
        file (``run.parquet("transactions")``), summed by DuckDB where it lies.
    as_of : date-like
        Analysis date (growth windows end on it).
    spend : Series, optional
        Value per customer when there are no transactions.
    lookup : dict, optional
        A lookup table as read from ``analysis/data/us_states.yaml`` (see :func:`enrich_from_lookup`).
    k, k_range, n_bootstrap, sample_size
        Spatial clusters (see :class:`SpatialClusters`).
    min_segment_size : int
        Smallest area kept on its own in rollup segments; smallest useful spatial cluster.
    random_state : int, optional

    Returns
    -------
    GeographicResult
    """
    customers, notes = enrich_from_lookup(customers, lookup)
    present = levels_present(customers)
    has_coords = {"latitude", "longitude"} <= set(customers.columns) and customers[["latitude", "longitude"]].notna().all(axis=1).any()
    if not present and not has_coords:
        return GeographicResult(available=False, message=(
            "Geographic segmentation is not available in this data: the customer table has no country, region, state, "
            "city or latitude/longitude. Map them under columns.customers (or columns.transactions) in the run config."), notes=notes)
    value, value_source = customer_value(customers, transactions, spend)
    windows, growth_note = revenue_windows(transactions, as_of)
    population, population_level = None, None
    if "population" in customers and customers["population"].notna().any():
        population, population_level = "population", (present[-1] if present else None)
    elif "state_population" in customers and customers["state_population"].notna().any():
        population, population_level = "state_population", "state"
    rollups = {lvl: rollup(customers, lvl, value, windows, population=population, population_level=population_level) for lvl in present}
    splits = {col: rollup(customers, col, value, windows) for col in SPLITS if col in customers and customers[col].notna().any()}
    ids = pd.Index(customers["customer_id"].astype(str), name="customer_id")
    model = None
    clusters = None
    if has_coords:
        located = customers[["latitude", "longitude"]].notna().all(axis=1).to_numpy()
        model = SpatialClusters(n_clusters=k, k_range=k_range, n_bootstrap=n_bootstrap, sample_size=sample_size,
                                min_segment_pct=max(2.0, 100.0 * min_segment_size / max(int(located.sum()), 1)),
                                random_state=random_state)
        try:
            model.fit(customers.loc[located, ["latitude", "longitude"]])
        except InfeasibleK:
            raise
        except ValueError as exc:
            notes.append(f"Spatial clusters not possible: {exc}; using areas instead.")
            model = None
    if model is not None:
        notes += model.notes_
        clusters = pd.Series(model.labels_, index=ids[located])
        names = name_clusters(customers.loc[located].reset_index(drop=True), clusters)
        labels = pd.Series(UNKNOWN_LOCATION, index=ids, dtype=object, name="geographic_segment")
        labels[ids[located]] = clusters.map(names).to_numpy()
        if (~located).any():
            notes.append(f"{int((~located).sum()):,} customers without coordinates are labelled '{UNKNOWN_LOCATION}'.")
        method = f"k-means on coordinates, k={model.k_choice_.k}"
        reason = model.k_choice_.reason
        profiles = profile_segments(customers, labels[ids[located]], value.reindex(ids[located]) if value is not None else None,
                                    windows, model, clusters)
    else:
        labels, level, reason = rollup_segments(customers, min_segment_size)
        method = f"areas: {level}"
        profiles = profile_segments(customers, labels, value.reindex(ids) if value is not None else None, windows)
    out_labels = pd.DataFrame({"customer_id": labels.index.to_numpy(), "geographic_segment": labels.to_numpy()})
    if windows is None:
        notes.append(growth_note[0].upper() + growth_note[1:] + ".")
    return GeographicResult(available=True, notes=notes, method=method, reason=reason, customers=customers, levels=present,
                            rollups=rollups, splits=splits, labels=out_labels, profiles=profiles, model=model,
                            growth_note=growth_note, value_source=value_source)
