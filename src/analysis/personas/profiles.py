"""Segment profiles: size, worth, typical member and distinguishing traits, as one tidy table.

For every segment of every segmentation in a :class:`~analysis.personas.population.Population`:

* **size** and **worth**: customers, share of customers, share of revenue / profit / predicted
  value (CLV) and value per customer, against all customers;
* **numeric attributes**: segment mean and median against the segmentation's base (the
  customers it labels), standardized difference (Cohen's d, pooled SD, segment vs the rest) and
  a Welch t-test;
* **category attributes**: each level's share in the segment against the base, lift
  (share / overall share), Cohen's h (segment vs the rest) and a 2x2 chi-square test (Fisher's
  exact test when an expected count is below 5).

p-values are adjusted for the many tests with Benjamini-Hochberg (``q_value``). Segments smaller
than ``min_size`` are **suppressed**: only their size and worth (aggregates) are reported, no
traits, typical member or narrative detail.

**Definition, not discovery.** The attributes a segmentation was formed from
(:attr:`~analysis.personas.population.Segmentation.defined_by`: a behavioral cluster's inputs,
the RFM scores behind an RFM segment, a demographic clustering's attributes, the factor scores
behind a psychographic segment, the value a tier ranks) differ between its segments by
construction, so testing them would only return the clustering back with tiny p-values. They are
marked ``defines``: described (values, effect size, ``definition_rank``) but not tested (no
p-value), and they are left out of the Benjamini-Hochberg family. Significance is claimed only for
attributes not used to form the segments.

**Names that hold** (``holds``). An attribute may name a segment only when it describes most of
its members (:data:`NAME_MAJORITY`, a clear majority):

* a category level when it is the segment's most common level of that attribute (modal) *and*
  at least half of the members hold it ("single" where 38% are single does not hold);
* a numeric "high" ("low") phrase when at least half of the members lie in the top (bottom)
  third of the segmentation's customers on that attribute, and that share is at least
  :data:`NAME_BAND_LIFT` times the share of all its customers in that third (ties can make a
  "third" larger than a third; the lift keeps a common value from naming anyone).

``holds_share`` is the share behind the rule (members holding the level / members in the third).

**Top traits** are picked greedily by absolute effect size (d and h share a scale: 0.2 small,
0.5 medium, 0.8 large) among significant, at least small effects, one per attribute family
(age and age band; country, region and city; recency and P(alive); ...). Category labels of
the segmentation's own basis (RFM segments for behavioral clusters, churn risk for value tiers)
are profiled but not traits: they restate how the segments were made. A candidate that says the
same thing as a trait already picked (member-level correlation >= ``duplicate_r``, or, within a
family, a numeric measure correlated >= 0.5 or a level that ``implied_share`` of the picked
level's holders hold) is folded into that trait (``also``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .population import Population, Segmentation

PROFILE_COLUMNS = [
    "persona_id", "segmentation", "basis", "segment", "kind", "attribute", "level", "label", "family",
    "customers", "n_valid", "segment_value", "overall_value", "segment_median", "overall_median",
    "effect_size", "lift", "p_value", "q_value", "test", "significant", "defines", "is_mode", "holds_share", "holds",
    "definition_rank", "trait_rank", "folded_into", "also", "suppressed", "min_size",
]

#: Share of a segment's members an attribute must describe to name the segment (a majority).
NAME_MAJORITY = 0.5
#: For numeric phrases: the members' share in the top / bottom third against all customers' share there.
NAME_BAND_LIFT = 1.5

_KIND_ORDER = {"size": 0, "worth": 1, "numeric": 2, "category": 2}


def persona_id(segmentation: str, segment: str) -> str:
    """Stable key of a persona: ``<segmentation column>=<segment>``."""
    return f"{segmentation}={segment}"


def benjamini_hochberg(p_values: np.ndarray | pd.Series) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok])
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    q = np.empty(m)
    q[order] = ranked
    out[ok] = q
    return out


def _numeric_rows(x: pd.Series, codes: np.ndarray, sizes: pd.Series) -> dict[str, object]:
    """Per segment: mean/median vs base, Cohen's d and Welch's t-test against the rest.

    ``codes`` gives each base customer's segment position in ``sizes`` (numpy, no groupby).
    """
    values = x.to_numpy(dtype=float, na_value=np.nan)
    valid = ~np.isnan(values)
    v, c = values[valid], codes[valid]
    g = len(sizes)
    center = v.mean()
    vc = v - center
    n1 = np.bincount(c, minlength=g).astype(float)
    sum1 = np.bincount(c, weights=vc, minlength=g)
    sq1 = np.bincount(c, weights=vc**2, minlength=g)
    n = float(len(vc))
    n2 = n - n1
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = np.where(n1 > 0, sum1 / n1, np.nan)
        m2 = np.where(n2 > 0, (vc.sum() - sum1) / n2, np.nan)
        v1 = np.clip(np.where(n1 > 1, (sq1 - n1 * m1**2) / (n1 - 1), np.nan), 0, None)
        v2 = np.clip(np.where(n2 > 1, ((vc**2).sum() - sq1 - n2 * m2**2) / (n2 - 1), np.nan), 0, None)
        se = np.sqrt(v1 / n1 + v2 / n2)
        t = (m1 - m2) / se
        df = se**4 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(t), df), np.nan)
        pooled = np.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
        d = np.where(pooled > 0, (m1 - m2) / pooled, np.nan)
    # the share of members in the top (bottom) third, for names that hold (module docstring)
    q_low, q_high = np.quantile(v, [1 / 3, 2 / 3])
    top, bottom = (v >= q_high).astype(float), (v <= q_low).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        top_share = np.bincount(c, weights=top, minlength=g) / n1
        bottom_share = np.bincount(c, weights=bottom, minlength=g) / n1
    high = np.nan_to_num(d) >= 0
    order = np.argsort(c, kind="stable")
    bounds = np.searchsorted(c[order], np.arange(g + 1))
    sorted_v = v[order]
    med = np.array([np.median(sorted_v[bounds[i]:bounds[i + 1]]) if bounds[i + 1] > bounds[i] else np.nan for i in range(g)])
    overall = float(v.mean())
    return {
            "segment": sizes.index.to_numpy(),
            "level": "",
            "n_valid": n1,
            "segment_value": m1 + center,
            "overall_value": overall,
            "segment_median": med,
            "overall_median": float(np.median(v)),
            "effect_size": d,
            "lift": (m1 + center) / overall if overall else np.nan,
            "p_value": p,
            "test": "welch_t",
            "holds_share": np.where(high, top_share, bottom_share),
            "_band_base": np.where(high, top.mean(), bottom.mean()),
        }


def _category_rows(x: pd.Series, codes: np.ndarray, sizes: pd.Series) -> dict[str, object] | None:
    """Per segment and level: share vs base, lift, Cohen's h, 2x2 chi-square (Fisher when sparse)."""
    level_codes, levels = pd.factorize(x, sort=True)
    valid = level_codes >= 0
    if not valid.any():
        return None
    g, k = len(sizes), len(levels)
    a = np.bincount(codes[valid] * k + level_codes[valid], minlength=g * k).reshape(g, k).astype(float)
    n1 = a.sum(axis=1, keepdims=True)
    col = a.sum(axis=0, keepdims=True)
    n = a.sum()
    n2 = n - n1
    b, c = n1 - a, col - a
    d = n2 - c
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = a / n1
        p2 = c / n2
        p_all = col / n
        denom = n1 * n2 * col * (n - col)
        chi2 = np.where(denom > 0, n * (a * d - b * c) ** 2 / denom, np.nan)
        p = stats.chi2.sf(chi2, 1)
        expected_min = np.minimum.reduce([n1 * col, n1 * (n - col), n2 * col, n2 * (n - col)]) / n
    h = 2 * np.arcsin(np.sqrt(np.clip(p1, 0, 1))) - 2 * np.arcsin(np.sqrt(np.clip(p2, 0, 1)))
    test = np.full(a.shape, "chi2", dtype=object)
    sparse = (expected_min < 5) & (denom > 0)
    for i, j in zip(*np.nonzero(sparse)):
        p[i, j] = stats.fisher_exact([[a[i, j], b[i, j]], [c[i, j], d[i, j]]])[1]
        test[i, j] = "fisher_exact"
    return {
            "segment": np.repeat(sizes.index.to_numpy(), k),
            "level": np.tile(np.asarray(levels, dtype=object).astype(str), g),
            "n_valid": np.repeat(n1.ravel(), k),
            "count": a.ravel(),
            "segment_value": p1.ravel(),
            "overall_value": np.tile(p_all.ravel(), g),
            "segment_median": np.nan,
            "overall_median": np.nan,
            "effect_size": h.ravel(),
            "lift": (p1 / p_all).ravel(),
            "p_value": p.ravel(),
            "test": test.ravel(),
            "holds_share": p1.ravel(),
            "_band_base": np.tile(p_all.ravel(), g),
        }


def _size_worth_rows(pop: Population, seg: pd.Series, sizes: pd.Series, suppressed: pd.Series) -> pd.DataFrame:
    n_all = len(pop.frame)
    rows = []
    value_col = pop.value_column
    for segment, n in sizes.items():
        rows.append({"segment": segment, "kind": "size", "attribute": "customers", "segment_value": n, "overall_value": n_all})
        rows.append({"segment": segment, "kind": "size", "attribute": "customers_share", "segment_value": n / n_all, "overall_value": 1.0})
        members = seg.index[seg == segment]
        for measure, col in pop.value_columns.items():
            values = pop.frame[col]
            total = values.sum()
            share = values.reindex(members).sum() / total if total else np.nan
            rows.append({"segment": segment, "kind": "worth", "attribute": f"{measure}_share", "segment_value": share, "overall_value": 1.0})
            rows.append({"segment": segment, "kind": "worth", "attribute": f"{measure}_per_customer",
                         "segment_value": values.reindex(members).mean(), "overall_value": values.mean()})
            if col == value_col:
                rows.append({"segment": segment, "kind": "worth", "attribute": "value_index",
                             "segment_value": share / (n / n_all) if n else np.nan, "overall_value": 1.0})
    out = pd.DataFrame(rows)
    labels = {"customers": "customers", "customers_share": "share of customers", "value_index": f"value per customer relative to average ({pop.value_label})"}
    for measure, col in pop.value_columns.items():
        word = {"revenue": "revenue", "profit": "gross profit", "clv": "predicted value (CLV)"}[measure]
        labels[f"{measure}_share"] = f"share of {word}"
        labels[f"{measure}_per_customer"] = f"{word} per customer"
    out["label"] = out["attribute"].map(labels)
    out["family"] = out["attribute"]
    out["level"] = ""
    return out


def _vector(pop: Population, base: pd.Index, attribute: str, level: str) -> np.ndarray:
    x = pop.frame.loc[base, attribute]
    if level == "":
        v = x.astype(float).rank().to_numpy().copy()
    else:
        v = (x == level).astype(float).to_numpy().copy()
        v[x.isna().to_numpy()] = np.nan
    mean = np.nanmean(v) if np.isfinite(v).any() else 0.0
    return np.where(np.isnan(v), mean, v)


def _corr(u: np.ndarray, v: np.ndarray) -> float:
    su, sv = u.std(), v.std()
    if su == 0 or sv == 0:
        return 0.0
    return float(((u - u.mean()) * (v - v.mean())).mean() / (su * sv))


def _select_traits(
    pop: Population, base: pd.Index, seg: pd.Series, segment: str, rows: pd.DataFrame, *,
    max_traits: int, duplicate_r: float, implied_share: float, family_r: float = 0.5, max_candidates: int = 30,
) -> tuple[dict[int, int], dict[int, int], dict[int, list[int]]]:
    """Greedy top traits of one segment: row index -> rank, folded row -> rank, rank -> folded rows."""
    order = rows.assign(_abs=rows["effect_size"].abs(), _levels=rows["_n_levels"]).sort_values(
        ["_abs", "_levels", "_attr_order"], ascending=[False, True, True], kind="stable"
    )
    chosen: list[tuple[int, pd.Series, np.ndarray]] = []
    folded: dict[int, int] = {}
    also: dict[int, list[int]] = {}
    members = seg.index[seg == segment]
    for idx, row in order.head(max_candidates).iterrows():  # a few dozen candidates per segment
        vec = _vector(pop, base, row["attribute"], row["level"])
        target = next((rank for rank, (_, _, cvec) in enumerate(chosen, start=1) if abs(_corr(vec, cvec)) >= duplicate_r), None)
        if target is None:
            for rank, (_, crow, cvec) in enumerate(chosen, start=1):
                if crow["family"] != row["family"]:
                    continue
                target = -rank  # same family: skipped; folded into it only if it says the same
                if row["level"] != "" and crow["level"] != "":
                    holders = (pop.frame.loc[members, crow["attribute"]] == crow["level"]).to_numpy()
                    held = pop.frame.loc[members[holders], row["attribute"]] == row["level"]
                    if len(held) and held.mean() >= implied_share:
                        target = rank  # implied by the chosen level (region -> country)
                elif row["level"] == "" and crow["level"] == "" and abs(_corr(vec, cvec)) >= family_r:
                    target = rank  # two measures of one thing (recency and P(alive))
                break
        if target is None:
            if len(chosen) < max_traits:
                chosen.append((idx, row, vec))
            continue
        if target > 0:
            folded[idx] = target
            also.setdefault(target, []).append(idx)
    return {idx: rank for rank, (idx, _, _) in enumerate(chosen, start=1)}, folded, also


def profile_segments(
    population: Population,
    *,
    segmentations: list[str] | None = None,
    min_size: int = 30,
    alpha: float = 0.05,
    min_effect: float = 0.2,
    min_cell: int = 5,
    max_traits: int = 5,
    duplicate_r: float = 0.9,
    implied_share: float = 0.95,
    exclude: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """The tidy profile table of every segment of every segmentation.

    Parameters
    ----------
    population : Population
    segmentations : list of str, optional
        Segmentation columns to profile (default: all in ``population``).
    min_size : int
        Segments with fewer customers are suppressed (only size and worth are reported).
    alpha : float
        Significance level for Benjamini-Hochberg adjusted p-values.
    min_effect : float
        Smallest absolute effect size (d or h) a top trait may have.
    min_cell : int
        Smallest number of segment members holding a category level for it to be a trait.
    max_traits : int
        Top traits ranked per segment.
    duplicate_r, implied_share : float
        Folding rules for near-duplicate and implied traits (module docstring).
    exclude : dict, optional
        Segmentation -> attributes not to profile for it.

    Returns
    -------
    DataFrame
        One row per (persona, attribute, level) with :data:`PROFILE_COLUMNS`. ``kind`` is
        ``size``, ``worth``, ``numeric`` or ``category``; shares are fractions (0..1).
        ``trait_rank`` is 1..``max_traits`` for the top traits (significant, among attributes
        that did not form the segments), ``definition_rank`` the same for the attributes that
        did (``defines``: no p-value), ``folded_into`` names the rank a folded trait belongs to,
        ``is_mode`` marks each category attribute's most common level, ``holds`` whether an
        attribute may name the segment (module docstring).

    Examples
    --------
    >>> from analysis.personas.population import build_population
    >>> rng = np.random.default_rng(0)
    >>> customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(200)],
    ...     "age": np.r_[rng.normal(25, 3, 100), rng.normal(70, 4, 100)]})
    >>> labels = {"demographic": pd.DataFrame({"customer_id": customers["customer_id"],
    ...     "demographic_segment": ["young"] * 100 + ["old"] * 100})}
    >>> table = profile_segments(build_population(customers, labels=labels))
    >>> table.query("segment == 'old' and trait_rank == 1")[["attribute", "level"]].values.tolist()
    [['age_band', '66+']]
    """
    pop = population
    chosen_cols = segmentations or list(pop.segmentations)
    unknown = [c for c in chosen_cols if c not in pop.segmentations]
    if unknown:
        raise ValueError(f"segmentations {unknown} not found; this run has {list(pop.segmentations)}.")
    attr_order = {name: i for i, name in enumerate(pop.attributes)}
    tables = []
    for col in chosen_cols:
        spec: Segmentation = pop.segmentations[col]
        seg = pop.frame[col].dropna()
        if seg.empty:
            continue
        base = seg.index
        sizes = seg.value_counts().sort_index()
        sizes = sizes.reindex(sorted(sizes.index, key=lambda s: (-sizes[s], str(s))))
        suppressed = sizes < min_size
        codes = pd.Index(sizes.index).get_indexer(seg.to_numpy())
        parts = [_size_worth_rows(pop, seg, sizes, suppressed)]
        skip = set((exclude or {}).get(col, []))
        defining = set(spec.defined_by)
        for attr, info in pop.attributes.items():
            if attr == col or attr in skip:
                continue
            x = pop.frame.loc[base, attr]
            if x.nunique() < 2:
                continue
            part = _numeric_rows(x, codes, sizes) if info.kind == "numeric" else _category_rows(x, codes, sizes)
            if part is None:
                continue
            part.update(kind=info.kind, attribute=attr, label=info.label, family=info.family, _trait=info.trait, defines=attr in defining,
                        _n_levels=1 if info.kind == "numeric" else x.nunique(), _attr_order=attr_order[attr])
            parts.append(pd.DataFrame(part))
        table = pd.concat(parts, ignore_index=True)
        table = table[~table["segment"].map(suppressed) | table["kind"].isin(["size", "worth"])].reset_index(drop=True)
        table["segmentation"] = col
        table["basis"] = spec.basis
        table["customers"] = table["segment"].map(sizes).astype(int)
        table["suppressed"] = table["segment"].map(suppressed).astype(bool)
        tables.append((spec, seg, table))
    if not tables:
        return pd.DataFrame(columns=PROFILE_COLUMNS)

    trait_rows = pd.concat([t for _, _, t in tables], ignore_index=True)
    is_trait = trait_rows["kind"].isin(["numeric", "category"])
    trait_rows["q_value"] = np.nan
    for col, default in (("p_value", np.nan), ("_trait", False), ("defines", False), ("holds_share", np.nan), ("_band_base", np.nan)):
        if col not in trait_rows:  # no attribute varies: size and worth only
            trait_rows[col] = default
    trait_rows["defines"] = trait_rows["defines"].fillna(False).astype(bool)
    # what formed the segments is described, not tested: no p-value, not in the BH family
    trait_rows.loc[trait_rows["defines"], ["p_value"]] = np.nan
    trait_rows.loc[trait_rows["defines"], "test"] = "none (defines the segments)"
    if is_trait.any():
        trait_rows.loc[is_trait, "q_value"] = benjamini_hochberg(trait_rows.loc[is_trait, "p_value"])
    trait_rows["significant"] = trait_rows["q_value"] < alpha
    out_tables = []
    offset = 0
    for spec, seg, table in tables:
        table = trait_rows.iloc[offset: offset + len(table)].copy()
        offset += len(table)
        table["is_mode"] = False
        cat = table["kind"] == "category"
        if cat.any():
            best = table[cat].sort_values(["segment_value", "overall_value"], ascending=False).groupby(
                ["segment", "attribute"], sort=False).head(1).index
            table.loc[best, "is_mode"] = True
        direction = np.sign(table["effect_size"].fillna(0))
        table["holds"] = (table["holds_share"] >= NAME_MAJORITY) & np.where(
            table["kind"] == "category", table["is_mode"] & (direction > 0),
            (direction != 0) & (table["holds_share"] >= NAME_BAND_LIFT * table["_band_base"]))
        table["definition_rank"] = np.nan
        table["trait_rank"] = np.nan
        table["folded_into"] = np.nan
        table["also"] = ""
        count = table.get("count", pd.Series(np.nan, index=table.index))
        # sibling labels of the segmentation's own basis (RFM segments for behavioral clusters,
        # churn risk for value tiers) restate how it was built: profiled, not distinguishing traits
        own_basis = [a for a, info in pop.attributes.items() if info.source == spec.basis and info.kind == "category"]
        describable = (
            is_trait.reindex(table.index).fillna(False).astype(bool)
            & table["_trait"].fillna(False).astype(bool)
            & ~table["attribute"].isin(own_basis)
            & (table["effect_size"].abs() >= min_effect)
            & ((table["kind"] == "numeric") | ((table["effect_size"] > 0) & (count >= min_cell)))
        )
        for rank_col, candidate in (("definition_rank", describable & table["defines"]),
                                    ("trait_rank", describable & ~table["defines"] & table["significant"])):
            for segment, rows in table[candidate].groupby("segment", sort=False):
                ranks, folded, also = _select_traits(
                    pop, seg.index, seg, segment, rows, max_traits=max_traits, duplicate_r=duplicate_r, implied_share=implied_share
                )
                for idx, rank in ranks.items():
                    table.loc[idx, rank_col] = rank
                    table.loc[idx, "also"] = "; ".join(
                        f"{table.at[j, 'attribute']}={table.at[j, 'level']}" if table.at[j, "level"] != "" else table.at[j, "attribute"]
                        for j in also.get(rank, [])
                    )
                if rank_col == "trait_rank":
                    for idx, rank in folded.items():
                        table.loc[idx, "folded_into"] = rank
        out_tables.append(table)
    out = pd.concat(out_tables, ignore_index=True)
    out["min_size"] = int(min_size)
    out["persona_id"] = [persona_id(s, g) for s, g in zip(out["segmentation"], out["segment"])]
    seg_order = {c: i for i, c in enumerate(chosen_cols)}
    out["_seg_order"] = out["segmentation"].map(seg_order)
    out["_kind_order"] = out["kind"].map(_KIND_ORDER)
    out["_rank"] = out["definition_rank"].fillna(out["trait_rank"] + max_traits).fillna(np.inf)
    out["_abs"] = -out["effect_size"].abs().fillna(0)
    out = out.sort_values(["_seg_order", "customers", "segment", "_kind_order", "_rank", "_abs"],
                          ascending=[True, False, True, True, True, True], kind="stable")
    return out[PROFILE_COLUMNS].reset_index(drop=True)


def segment_summary(profiles: pd.DataFrame) -> pd.DataFrame:
    """One row per persona: size and worth columns (wide), from the tidy profile table."""
    keys = ["persona_id", "segmentation", "basis", "segment", "customers", "suppressed"]
    heads = profiles.drop_duplicates("persona_id")[keys].set_index("persona_id")
    sw = profiles[profiles["kind"].isin(["size", "worth"]) & (profiles["attribute"] != "customers")]
    wide = sw.pivot_table(index="persona_id", columns="attribute", values="segment_value", aggfunc="first")
    return heads.join(wide).reset_index()


def typical_member(
    profiles: pd.DataFrame, pid: str, *, numeric: list[str] | tuple[str, ...] = (), min_share: float = 0.6, max_items: int = 7,
) -> list[dict[str, object]]:
    """Modal values (held by at least ``min_share``) and medians that describe a typical member.

    Parameters
    ----------
    numeric : list of str
        Numeric attributes whose median to show (in this order) when profiled and not already a
        top trait (the vocabulary's ``typical`` list).

    Returns
    -------
    list of dict
        ``{"attribute", "label", "value", "share"}``: category values first (most common first,
        ``share`` their share), then medians (``share`` None).
    """
    rows = profiles[profiles["persona_id"] == pid]
    if rows.empty or bool(rows["suppressed"].iloc[0]):
        return []
    modes = rows[rows["is_mode"] & (rows["segment_value"] >= min_share)].sort_values("segment_value", ascending=False, kind="stable")
    items: list[dict[str, object]] = []
    for r in modes.itertuples():
        if any(str(i["value"]).lower() == str(r.level).lower() for i in items):
            continue  # the same value under two names (country and a geographic segment named after it)
        items.append({"attribute": r.attribute, "label": r.label, "value": r.level, "share": float(r.segment_value)})
    items = items[: max(max_items - 2, 1)]
    traits = set(rows.loc[rows["trait_rank"].notna(), "attribute"])
    num = rows[(rows["kind"] == "numeric")].set_index("attribute")
    for attr in numeric:
        if attr in num.index and attr not in traits and pd.notna(num.at[attr, "segment_median"]):
            items.append({"attribute": attr, "label": num.at[attr, "label"], "value": float(num.at[attr, "segment_median"]), "share": None})
    return items[:max_items]
