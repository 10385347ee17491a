"""Customer features from validated transactions (and, when present, returns and events).

One row per customer, computed with one SQL query (no per-customer Python): recency, frequency,
tenure, spend, basket, inter-purchase interval, category shares (benefits sought), loyalty to a
category / brand / product, channel preference, return rate, margin; and usage rates from web/app
analytics events. Inputs may be DataFrames or Parquet paths (the run's ``data/*.parquet``). The
query runs on DuckDB (default) or Spark (:mod:`analysis.engines`), with the same result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import engines

Source = pd.DataFrame | str | Path

#: Columns of :func:`customer_features` and what they mean (shown in reports and docs).
FEATURE_DOCS = {
    "recency_days": "days since the last order, at as_of",
    "frequency": "number of distinct orders",
    "tenure_days": "days since the first order, at as_of",
    "total_spend": "revenue of all kept order lines",
    "mean_order_value": "average order value",
    "items_per_order": "average units per order",
    "lines_per_order": "average distinct lines per order",
    "interpurchase_days": "average days between orders (customers with 2+ orders)",
    "orders_per_month": "orders per 30.4 days of tenure (tenure at least 30 days)",
    "n_categories": "distinct categories bought",
    "favourite_category": "category with the largest share of spend",
    "favourite_category_share": "share of spend on the favourite category (category loyalty)",
    "repeat_product_rate": "share of products bought in more than one order (product loyalty)",
    "favourite_brand_share": "share of spend on the favourite brand (brand loyalty)",
    "favourite_channel": "channel with most orders",
    "total_margin": "gross profit of all kept lines",
    "margin_rate": "gross profit / revenue",
    "return_rate": "returned or cancelled value / purchased value",
    "sessions_per_month": "web/app sessions per 30.4 days of tenure",
    "views_per_order": "product views per order",
    "view_to_order_rate": "orders / product views",
    "email_open_rate": "e-mail opens per 30.4 days of tenure",
    "email_click_rate": "e-mail clicks / e-mail opens",
}


#: Amounts, quantities and margins are summed as integers in millionths: integer sums are exact,
#: so they do not depend on the order DuckDB's threads (or Spark's executors) add them in, and
#: both engines give the same result to the last bit. Values with more than six decimals are
#: rounded to six first.
_MICRO = 1_000_000


def _micro(column: str) -> str:
    return f"CAST(round({column} * {_MICRO}) AS BIGINT)"


def _bigint(column: str) -> str:
    # sums of BIGINT are HUGEINT in DuckDB; as BIGINT they reach pandas as exact int64
    return f"CAST({column} AS BIGINT) AS {column.split('.')[-1]}"


def _quote(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def customer_features(
    transactions: Source,
    as_of: str | pd.Timestamp,
    *,
    returns: Source | None = None,
    events: Source | None = None,
    max_categories: int = 12,
    engine: str | engines.Engine | None = None,
) -> pd.DataFrame:
    """Behavioral features, one row per customer with at least one kept order line.

    The order lines are aggregated by SQL in DuckDB's dialect (a small query ranking the categories
    by spend, then one query for every per-customer count, time and sum), run by DuckDB on all
    cores or, with ``engine="spark"``, transpiled and run on Spark (see :mod:`analysis.engines`);
    both give the same features. Only ratios of the per-customer sums are computed afterwards.

    Parameters
    ----------
    transactions : DataFrame or path to Parquet
        Validated order lines (contract columns).
    as_of : date-like
        Analysis date; recency and tenure are measured to the end of that day.
    returns : DataFrame or path, optional
        Validated returns/cancellations (``customer_id``, ``amount``) for ``return_rate``.
    events : DataFrame or path, optional
        Validated web/app events for usage-rate features.
    max_categories : int
        Category share columns ``share_<category>`` for the categories with the most spend; the
        rest are summed into ``share_other``.
    engine : {"duckdb", "spark"} or analysis.engines.Engine, optional
        Where the SQL runs; default DuckDB. Pass a connected engine to reuse a Spark session.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted); columns described in :data:`FEATURE_DOCS` plus
        ``share_<category>`` columns. The favourite category, brand and channel is the one with
        the most spend (orders for the channel); ties go to the first name in sort order.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a"], "order_id": ["1", "2"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11"]), "product_id": ["p", "p"],
    ...     "category": ["Home", "Home"], "quantity": [1.0, 2.0], "amount": [10.0, 30.0]})
    >>> f = customer_features(tx, "2024-01-31")
    >>> f.loc["a", ["frequency", "recency_days", "interpurchase_days", "mean_order_value"]].tolist()
    [2.0, 21.0, 10.0, 20.0]
    """
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    owned = not isinstance(engine, engines.Engine)
    eng = engines.connect(engine)
    try:
        eng.register("tx", transactions)
        if returns is not None:
            eng.register("rt", returns)
        if events is not None:
            eng.register("ev", events)
        cols = set(eng.columns("tx"))
        ranking = eng.query(
            f"SELECT category, sum({_micro('amount')}) AS spend FROM tx "
            "GROUP BY category ORDER BY spend DESC, category"
        )
        named = ranking["category"].dropna()
        top = named.head(max_categories).tolist()
        has_other = len(named) > len(top) or ranking["category"].isna().any()
        sums = eng.query(_feature_sql(cols, top, returns=returns is not None, events=events is not None))
    finally:
        if owned:
            eng.close()
    return _features_from_sums(sums, end, cols, top, has_other, returns=returns is not None, events=events is not None)


def _feature_sql(cols: set[str], top: list[str], *, returns: bool, events: bool) -> str:
    """The one query: per-customer counts, times and integer sums (DuckDB dialect)."""
    brand = "brand" if "brand" in cols else "CAST(NULL AS VARCHAR)"
    channel = "channel" if "channel" in cols else "CAST(NULL AS VARCHAR)"
    margin = _micro("margin") if "margin" in cols else "CAST(0 AS BIGINT)"
    category_sums = "".join(
        f",\n                   sum(CASE WHEN category = {_quote(name)} THEN spend_u ELSE 0 END) AS top_{i}_u"
        for i, name in enumerate(top)
    )
    top_columns = "".join(f"{_bigint(f'categories.top_{i}_u')}, " for i in range(len(top)))
    joins, selects = [], []
    if returns:
        joins.append("LEFT JOIN returned USING (customer_id)")
        selects.append("CAST(coalesce(returned.returned_u, 0) AS BIGINT) AS returned_u")
    if events:
        joins.append("LEFT JOIN usage USING (customer_id)")
        selects += [f"coalesce(usage.{k}, 0) AS {k}" for k in ("sessions", "views", "opens", "clicks")]
    extra = "".join(f", {s}" for s in selects)
    return f"""
        WITH by_category AS (
            SELECT customer_id, category, sum({_micro('amount')}) AS spend_u, sum({_micro('quantity')}) AS items_u,
                   sum({margin}) AS margin_u, count(*) AS n_lines
            FROM tx GROUP BY customer_id, category
        ),
        orders AS (
            SELECT customer_id, order_id, {channel} AS channel, min("timestamp") AS ordered_at
            FROM tx GROUP BY customer_id, order_id, channel
        ),
        timing AS (
            SELECT customer_id, count(*) AS frequency, min(ordered_at) AS first_order_at,
                   max(ordered_at) AS last_order_at
            FROM (SELECT customer_id, order_id, min(ordered_at) AS ordered_at FROM orders GROUP BY 1, 2) AS o
            GROUP BY customer_id
        ),
        channels AS (
            SELECT customer_id, arg_min(channel, struct_pack(o := -n_orders, c := channel)) AS favourite_channel
            FROM (SELECT customer_id, channel, count(*) AS n_orders FROM orders WHERE channel IS NOT NULL GROUP BY 1, 2) AS c
            GROUP BY customer_id
        ),
        spend AS (
            SELECT customer_id, sum(spend_u) AS spend_u, sum(items_u) AS items_u, sum(margin_u) AS margin_u,
                   sum(n_lines) AS n_lines
            FROM by_category GROUP BY customer_id
        ),
        categories AS (
            SELECT customer_id, count(*) AS n_categories,
                   arg_min(category, struct_pack(s := -spend_u, c := category)) AS favourite_category,
                   max(spend_u) AS favourite_category_u{category_sums}
            FROM by_category GROUP BY customer_id
        ),
        brands AS (
            SELECT customer_id, max(spend_u) AS favourite_brand_u, sum(spend_u) AS branded_u
            FROM (SELECT customer_id, {brand} AS brand, sum({_micro('amount')}) AS spend_u
                  FROM tx WHERE {brand} IS NOT NULL GROUP BY 1, 2) AS b
            GROUP BY customer_id
        ),
        -- a product is bought in more than one order when two of its order ids differ; their 64-bit
        -- hashes tell that at a fraction of the cost of comparing the strings
        repeats AS (
            SELECT customer_id, count(*) AS n_products,
                   sum(CASE WHEN first_order < last_order THEN 1 ELSE 0 END) AS n_repeat_products
            FROM (SELECT customer_id, product_id, min(hash(order_id)) AS first_order, max(hash(order_id)) AS last_order
                  FROM tx GROUP BY 1, 2) AS p
            GROUP BY customer_id
        ){_optional_ctes(returns, events)}
        SELECT timing.customer_id, timing.frequency, timing.first_order_at, timing.last_order_at,
               {_bigint('spend.spend_u')}, {_bigint('spend.items_u')}, {_bigint('spend.margin_u')}, spend.n_lines,
               categories.n_categories, categories.favourite_category, {_bigint('categories.favourite_category_u')},
               {top_columns}{_bigint('brands.favourite_brand_u')}, {_bigint('brands.branded_u')},
               channels.favourite_channel, repeats.n_products, repeats.n_repeat_products{extra}
        FROM timing
        JOIN spend USING (customer_id)
        JOIN categories USING (customer_id)
        JOIN repeats USING (customer_id)
        LEFT JOIN brands USING (customer_id)
        LEFT JOIN channels USING (customer_id)
        {' '.join(joins)}
        ORDER BY customer_id
    """


def _optional_ctes(returns: bool, events: bool) -> str:
    out = ""
    if returns:
        out += f""",
        returned AS (SELECT customer_id, sum({_micro('amount')}) AS returned_u FROM rt GROUP BY customer_id)"""
    if events:
        out += """,
        usage AS (
            SELECT customer_id,
                   count(*) FILTER (WHERE event_type = 'session') AS sessions,
                   count(*) FILTER (WHERE event_type = 'product_view') AS views,
                   count(*) FILTER (WHERE event_type = 'email_open') AS opens,
                   count(*) FILTER (WHERE event_type = 'email_click') AS clicks
            FROM ev GROUP BY customer_id
        )"""
    return out


def _features_from_sums(
    sums: pd.DataFrame, end: pd.Timestamp, cols: set[str], top: list[str], has_other: bool, *, returns: bool, events: bool
) -> pd.DataFrame:
    """Ratios of the per-customer sums: the feature table (vectorised, the same for every engine)."""
    s = sums.set_index("customer_id")
    day = pd.Timedelta(days=1)
    frequency = s["frequency"].astype("float64")
    spend = s["spend_u"].astype("float64") / _MICRO
    first, last = pd.to_datetime(s["first_order_at"]), pd.to_datetime(s["last_order_at"])
    feats = pd.DataFrame(index=s.index)
    feats["frequency"] = frequency
    feats["recency_days"] = (end - last) / day
    feats["tenure_days"] = (end - first) / day
    feats["total_spend"] = spend
    feats["mean_order_value"] = spend / frequency
    feats["items_per_order"] = s["items_u"].astype("float64") / _MICRO / frequency
    feats["lines_per_order"] = s["n_lines"].astype("float64") / frequency
    feats["interpurchase_days"] = ((last - first) / day / (frequency - 1)).where(frequency > 1)
    feats["total_margin"] = s["margin_u"].astype("float64") / _MICRO
    feats["n_categories"] = s["n_categories"].astype("float64")
    feats["favourite_category"] = s["favourite_category"]
    category_total = spend.where(spend != 0)
    feats["favourite_category_share"] = s["favourite_category_u"].astype("float64") / _MICRO / category_total
    feats["repeat_product_rate"] = s["n_repeat_products"].astype("float64") / s["n_products"].astype("float64")
    feats["orders_per_month"] = (frequency / (feats["tenure_days"] / 30.4)).where(feats["tenure_days"] >= 30)
    if "margin" in cols:
        feats["margin_rate"] = feats["total_margin"] / spend.where(spend > 0)
    else:
        feats = feats.drop(columns="total_margin")
    if "brand" in cols:
        branded = s["branded_u"].astype("float64")
        feats["favourite_brand_share"] = s["favourite_brand_u"].astype("float64") / branded.where(branded != 0)
    if "channel" in cols:
        feats["favourite_channel"] = s["favourite_channel"]
    names = category_columns(top + ([_OTHER_BUCKET] if has_other else []))
    shares = {}
    top_total = 0
    for i, name in enumerate(top):
        top_total = top_total + s[f"top_{i}_u"]
        shares[names[name]] = (s[f"top_{i}_u"].astype("float64") / _MICRO / category_total).fillna(0.0)
    if has_other:
        shares["share_other"] = ((s["spend_u"] - top_total).astype("float64") / _MICRO / category_total).fillna(0.0)
    feats = feats.join(pd.DataFrame(shares, index=s.index).sort_index(axis=1))
    if returns:
        feats["return_rate"] = (s["returned_u"].astype("float64") / _MICRO / spend).clip(upper=1.0)
    if events:
        months = feats["tenure_days"].clip(lower=30) / 30.4
        views, opens = s["views"].astype("float64"), s["opens"].astype("float64")
        feats["sessions_per_month"] = s["sessions"].astype("float64") / months
        feats["views_per_order"] = views / frequency
        feats["view_to_order_rate"] = (frequency / views.where(views > 0)).clip(upper=1.0)
        feats["email_open_rate"] = opens / months
        feats["email_click_rate"] = s["clicks"].astype("float64") / opens.where(opens > 0)
    feats.index.name = "customer_id"
    return feats


#: Stands for "all categories outside the top ones" inside the query; no category can be named so.
_OTHER_BUCKET = "\x00other"


def category_columns(categories: Any) -> dict[Any, str]:
    """Category -> its share column, distinct for every category.

    Names are slugged (:func:`slug`); a slug already taken gets ``_2``, ``_3``, ... (names in
    sorted order), and a category whose slug is ``other`` while the other-categories bucket
    exists becomes ``share_other_category``.

    Examples
    --------
    >>> category_columns(["Home & Garden", "Home Garden", "Home-Garden"])
    {'Home & Garden': 'share_home_and_garden', 'Home Garden': 'share_home_garden', 'Home-Garden': 'share_home_garden_2'}
    >>> category_columns(["Other", _OTHER_BUCKET])["Other"]
    'share_other_category'
    """
    names = sorted(categories, key=str)
    taken: set[str] = set()
    out: dict[Any, str] = {}
    if _OTHER_BUCKET in names:
        names.remove(_OTHER_BUCKET)
        out[_OTHER_BUCKET] = "share_other"
        taken.add("other")
    for name in names:
        base = slug(name)
        if base in taken and base == "other":
            base = "other_category"
        column, n = base, 2
        while column in taken:
            column, n = f"{base}_{n}", n + 1
        taken.add(column)
        out[name] = f"share_{column}"
    return out


def slug(text: str) -> str:
    """A column-safe version of a category name (``&`` read as "and", ``+`` as "plus").

    Examples
    --------
    >>> slug("Home & Garden"), slug("Kids' Toys"), slug("***")
    ('home_and_garden', 'kids_toys', 'unknown')
    """
    text = str(text).replace("&", " and ").replace("+", " plus ")
    out = "".join(ch.lower() if ch.isalnum() else "_" for ch in text).strip("_")
    return "_".join(filter(None, out.split("_"))) or "unknown"


#: Default age bands (inclusive bounds in whole years), chosen around life stages. Together they
#: cover every age the data contract accepts, and each holds exactly the ages its label says.
AGE_BANDS: dict[str, tuple[float, float]] = {
    "under 18": (0, 17), "18-30": (18, 30), "31-42": (31, 42), "43-60": (43, 60), "61-65": (61, 65), "66+": (66, 200),
}


def derived_attributes(customers: pd.DataFrame, *, income_edges: list[float] | None = None) -> pd.DataFrame:
    """Readable demographic attributes derived from raw ones, indexed like ``customers``.

    ``age_band`` from ``age`` in whole years (:data:`AGE_BANDS`: 30.9 is 30, so "18-30"; 17 is
    "under 18", never "18-30"); ``income_band`` ("low"/"middle"/"high") from
    ``income`` by terciles of the data, or by ``income_edges`` (two inner edges) when given;
    ``household`` and ``life_stage`` from age, marital status and children (plus ``teens``) where
    present. Columns whose inputs are absent are omitted.
    """
    out = pd.DataFrame(index=customers.index)
    if "age" in customers and customers["age"].notna().any():
        edges = [-np.inf] + [hi for _, hi in list(AGE_BANDS.values())[:-1]] + [np.inf]
        years = np.floor(customers["age"].astype(float))
        out["age_band"] = pd.cut(years, bins=edges, labels=list(AGE_BANDS), right=True).astype(object)
    if "income" in customers and customers["income"].notna().sum() >= 3:
        inc = customers["income"]
        cuts = income_edges or list(inc.quantile([1 / 3, 2 / 3]).to_numpy())
        if cuts[0] < cuts[1]:
            out["income_band"] = pd.cut(inc, bins=[-np.inf, *cuts, np.inf], labels=["low", "middle", "high"]).astype(object)
    kids = None
    if "children" in customers:
        kids = customers["children"].fillna(0) + (customers["teens"].fillna(0) if "teens" in customers else 0)
        out["household"] = np.where(kids > 0, "with children", "no children")
        out.loc[customers["children"].isna(), "household"] = None
    if "age" in customers and "marital_status" in customers and kids is not None:
        age = customers["age"]
        partnered = customers["marital_status"].astype(str).str.lower().isin(["married", "together", "partnered", "couple"])
        stage = np.select(
            [age >= 66, kids > 0, (age < 35) & ~partnered, partnered & (age < 50), partnered, ~partnered],
            ["Retired", "Family with children", "Young single", "Couple, no children", "Empty nester", "Single adult"],
            default=None,
        )
        out["life_stage"] = pd.Series(stage, index=customers.index).where(age.notna())
    return out


def constant_features(feats: pd.DataFrame) -> list[str]:
    """Numeric features with at most one value for every customer (e.g. category loyalty when the data have
    no product category, or an interval when everyone ordered once): they tell customers nothing apart,
    so the feature table leaves them out (:func:`constant_note` names them)."""
    numeric = feats.select_dtypes("number")
    return [c for c in numeric.columns if numeric[c].nunique(dropna=True) < 2]


def _plain_number(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def constant_note(feats: pd.DataFrame) -> str:
    """A sentence naming the :func:`constant_features` left out of the feature table ("" when none).

    Examples
    --------
    >>> constant_note(pd.DataFrame({"frequency": [1.0, 3.0], "n_categories": [1.0, 1.0],
    ...                             "interpurchase_days": [float("nan")] * 2}))
    'Left out as the same for every customer: n_categories (1). Left out as unknown for every customer: interpurchase_days.'
    """
    numeric = feats.select_dtypes("number")
    left_out = constant_features(feats)
    same = [c for c in left_out if numeric[c].notna().any()]
    unknown = [c for c in left_out if c not in same]
    parts = []
    if same:
        values = {c: numeric[c].dropna().iloc[0] for c in same}
        parts.append("Left out as the same for every customer: "
                     + ", ".join(f"{c} ({_plain_number(float(v))})" for c, v in values.items()) + ".")
    if unknown and len(numeric):
        parts.append("Left out as unknown for every customer: " + ", ".join(unknown) + ".")
    return " ".join(parts)


def describe_features(feats: pd.DataFrame) -> pd.DataFrame:
    """Median, mean and 90th percentile of each numeric feature that varies, with what it means
    (:func:`constant_note` names the others)."""
    numeric = feats.select_dtypes("number").drop(columns=constant_features(feats))
    out = pd.DataFrame({"median": numeric.median(), "mean": numeric.mean(), "p90": numeric.quantile(0.9)})
    out["meaning"] = [FEATURE_DOCS.get(c, "share of spend in this category" if c.startswith("share_") else "") for c in out.index]
    return out.round(2)
