"""What a user would write instead of ``analysis.features.customer_features``, for the benchmark.

``full_*``: the project's whole feature set (the same 29 columns on the generated data: counts,
dates, spend, basket, inter-purchase interval, category / brand / product loyalty, favourite
channel, margin, top-category shares, return rate and web/app usage), written the plain way in
each tool: hand-written DuckDB SQL (float sums, default threads), polars (lazy, streaming from
Parquet) and idiomatic pandas (``groupby().agg`` with named aggregations). ``core_*``: six core
features (frequency, recency, tenure, total spend, mean order value, items per order) in the same
tools. ``full_tutorial`` and ``core_tutorial``: the same two sets in the tutorial style,
``groupby().agg(lambda ...)``.

Each function takes the Parquet paths and ``as_of`` and returns a DataFrame indexed by
``customer_id`` (sorted) with the project's column names, so the benchmark can check that they
agree with the project's step before timing them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CORE = ["frequency", "recency_days", "tenure_days", "total_spend", "mean_order_value", "items_per_order"]
EVENT_TYPES = {"sessions": "session", "views": "product_view", "opens": "email_open", "clicks": "email_click"}


def _end(as_of: str) -> pd.Timestamp:
    return pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)


def _share_name(category: str) -> str:
    from analysis.features import category_columns

    return category_columns([category])[category]


def _top_categories(spend_by_category: pd.Series, n: int = 12) -> list[str]:
    ranked = spend_by_category.reset_index().sort_values([spend_by_category.name, "category"], ascending=[False, True])
    return ranked["category"].head(n).tolist()


def _with_usage_rates(f: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """``f`` with the web/app usage rates, from per-customer event counts (columns named as the keys
    of :data:`EVENT_TYPES`): whole-column ratios, the same in every pandas baseline."""
    counts = counts.reindex(index=f.index, columns=list(EVENT_TYPES)).fillna(0.0)
    months = f["tenure_days"].clip(lower=30) / 30.4
    f["sessions_per_month"] = counts["sessions"] / months
    f["views_per_order"] = counts["views"] / f["frequency"]
    f["view_to_order_rate"] = (f["frequency"] / counts["views"].where(counts["views"] > 0)).clip(upper=1.0)
    f["email_open_rate"] = counts["opens"] / months
    f["email_click_rate"] = counts["clicks"] / counts["opens"].where(counts["opens"] > 0)
    return f


# --- hand-written DuckDB --------------------------------------------------------------------------


def full_duckdb(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    for name in ("transactions", "returns", "events"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{paths[name]}')")
    top = con.execute(
        "SELECT category FROM transactions GROUP BY 1 ORDER BY sum(amount) DESC, category LIMIT 12").df()["category"]
    n_categories = con.execute("SELECT count(DISTINCT category) FROM transactions").fetchone()[0]
    shares = ",\n".join(
        f"coalesce(sum(spend) FILTER (WHERE category = '{c}') / sum(spend), 0) AS {_share_name(c)}" for c in top)
    if n_categories > len(top):
        listed = ", ".join(f"'{c}'" for c in top)
        shares += f",\ncoalesce(sum(spend) FILTER (WHERE category NOT IN ({listed})) / sum(spend), 0) AS share_other"
    end = _end(as_of)
    return con.execute(f"""
        WITH orders AS (
            SELECT customer_id, order_id, min(timestamp) AS ts, sum(amount) AS value, sum(quantity) AS items,
                   count(*) AS lines, sum(margin) AS margin
            FROM transactions GROUP BY 1, 2
        ),
        per_customer AS (
            SELECT customer_id, count(*)::DOUBLE AS frequency,
                   date_diff('second', max(ts), TIMESTAMP '{end}') / 86400.0 AS recency_days,
                   date_diff('second', min(ts), TIMESTAMP '{end}') / 86400.0 AS tenure_days,
                   sum(value) AS total_spend, avg(value) AS mean_order_value, avg(items) AS items_per_order,
                   avg(lines) AS lines_per_order,
                   CASE WHEN count(*) > 1 THEN date_diff('second', min(ts), max(ts)) / 86400.0 / (count(*) - 1) END
                       AS interpurchase_days,
                   sum(margin) AS total_margin
            FROM orders GROUP BY 1
        ),
        by_category AS (SELECT customer_id, category, sum(amount) AS spend FROM transactions GROUP BY 1, 2),
        categories AS (
            SELECT customer_id, count(*)::DOUBLE AS n_categories, arg_max(category, spend) AS favourite_category,
                   max(spend) / sum(spend) AS favourite_category_share,
                   {shares}
            FROM by_category GROUP BY 1
        ),
        products AS (
            SELECT customer_id, avg(CASE WHEN n > 1 THEN 1.0 ELSE 0.0 END) AS repeat_product_rate
            FROM (SELECT customer_id, product_id, count(DISTINCT order_id) AS n FROM transactions GROUP BY 1, 2) GROUP BY 1
        ),
        brands AS (
            SELECT customer_id, max(spend) / sum(spend) AS favourite_brand_share
            FROM (SELECT customer_id, brand, sum(amount) AS spend FROM transactions GROUP BY 1, 2) GROUP BY 1
        ),
        channels AS (
            SELECT customer_id, arg_max(channel, n) AS favourite_channel
            FROM (SELECT customer_id, channel, count(DISTINCT order_id) AS n FROM transactions GROUP BY 1, 2) GROUP BY 1
        ),
        returned AS (SELECT customer_id, sum(amount) AS returned FROM returns GROUP BY 1),
        usage AS (
            SELECT customer_id, {", ".join(f"count(*) FILTER (WHERE event_type = '{t}') AS {k}" for k, t in EVENT_TYPES.items())}
            FROM events GROUP BY 1
        )
        SELECT p.customer_id, p.frequency, p.recency_days, p.tenure_days, p.total_spend, p.mean_order_value,
               p.items_per_order, p.lines_per_order, p.interpurchase_days, p.total_margin, c.n_categories,
               c.favourite_category, c.favourite_category_share, pr.repeat_product_rate,
               CASE WHEN p.tenure_days >= 30 THEN p.frequency / (p.tenure_days / 30.4) END AS orders_per_month,
               p.total_margin / nullif(p.total_spend, 0) AS margin_rate, b.favourite_brand_share, ch.favourite_channel,
               c.* EXCLUDE (customer_id, n_categories, favourite_category, favourite_category_share),
               least(coalesce(r.returned, 0) / p.total_spend, 1.0) AS return_rate,
               coalesce(u.sessions, 0) / (greatest(p.tenure_days, 30) / 30.4) AS sessions_per_month,
               coalesce(u.views, 0) / p.frequency AS views_per_order,
               CASE WHEN u.views > 0 THEN least(p.frequency / u.views, 1.0) END AS view_to_order_rate,
               coalesce(u.opens, 0) / (greatest(p.tenure_days, 30) / 30.4) AS email_open_rate,
               u.clicks / nullif(u.opens, 0) AS email_click_rate
        FROM per_customer p JOIN categories c USING (customer_id) JOIN products pr USING (customer_id)
        JOIN brands b USING (customer_id) JOIN channels ch USING (customer_id)
        LEFT JOIN returned r USING (customer_id) LEFT JOIN usage u USING (customer_id)
        ORDER BY p.customer_id
    """).df().set_index("customer_id")


def core_duckdb(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    import duckdb

    end = _end(as_of)
    return duckdb.sql(f"""
        WITH orders AS (
            SELECT customer_id, order_id, min(timestamp) AS ts, sum(amount) AS value, sum(quantity) AS items
            FROM read_parquet('{paths["transactions"]}') GROUP BY 1, 2
        )
        SELECT customer_id, count(*)::DOUBLE AS frequency,
               date_diff('second', max(ts), TIMESTAMP '{end}') / 86400.0 AS recency_days,
               date_diff('second', min(ts), TIMESTAMP '{end}') / 86400.0 AS tenure_days,
               sum(value) AS total_spend, avg(value) AS mean_order_value, avg(items) AS items_per_order
        FROM orders GROUP BY 1 ORDER BY 1
    """).df().set_index("customer_id")


# --- polars -----------------------------------------------------------------------------------------


def full_polars(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    import polars as pl

    end = _end(as_of).to_pydatetime()
    tx = pl.scan_parquet(paths["transactions"])
    days = 86400.0
    orders = tx.group_by("customer_id", "order_id").agg(
        pl.col("timestamp").min().alias("ts"), pl.col("amount").sum().alias("value"),
        pl.col("quantity").sum().alias("items"), pl.len().alias("lines"), pl.col("margin").sum().alias("margin"))
    per_customer = orders.group_by("customer_id").agg(
        pl.len().cast(pl.Float64).alias("frequency"),
        ((pl.lit(end) - pl.col("ts").max()).dt.total_seconds() / days).alias("recency_days"),
        ((pl.lit(end) - pl.col("ts").min()).dt.total_seconds() / days).alias("tenure_days"),
        pl.col("value").sum().alias("total_spend"), pl.col("value").mean().alias("mean_order_value"),
        pl.col("items").mean().alias("items_per_order"), pl.col("lines").mean().alias("lines_per_order"),
        pl.when(pl.len() > 1).then((pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds() / days / (pl.len() - 1))
        .alias("interpurchase_days"),
        pl.col("margin").sum().alias("total_margin"))
    by_category = tx.group_by("customer_id", "category").agg(pl.col("amount").sum().alias("spend"))
    top = _top_categories(by_category.group_by("category").agg(pl.col("spend").sum()).collect().to_pandas()
                          .set_index("category")["spend"])
    all_categories = by_category.select(pl.col("category").n_unique()).collect().item()
    share_exprs = [(pl.col("spend").filter(pl.col("category") == c).sum() / pl.col("spend").sum()).alias(_share_name(c))
                   for c in top]
    if all_categories > len(top):
        share_exprs.append((pl.col("spend").filter(~pl.col("category").is_in(top)).sum() / pl.col("spend").sum())
                           .alias("share_other"))
    categories = by_category.group_by("customer_id").agg(
        pl.len().cast(pl.Float64).alias("n_categories"),
        pl.col("category").sort_by("spend", descending=True).first().alias("favourite_category"),
        (pl.col("spend").max() / pl.col("spend").sum()).alias("favourite_category_share"), *share_exprs)
    products = (tx.group_by("customer_id", "product_id").agg(pl.col("order_id").n_unique().alias("n"))
                .group_by("customer_id").agg((pl.col("n") > 1).cast(pl.Float64).mean().alias("repeat_product_rate")))
    brands = (tx.group_by("customer_id", "brand").agg(pl.col("amount").sum().alias("spend"))
              .group_by("customer_id").agg((pl.col("spend").max() / pl.col("spend").sum()).alias("favourite_brand_share")))
    channels = (tx.group_by("customer_id", "channel").agg(pl.col("order_id").n_unique().alias("n"))
                .group_by("customer_id").agg(pl.col("channel").sort_by("n", descending=True).first()
                                             .alias("favourite_channel")))
    returned = pl.scan_parquet(paths["returns"]).group_by("customer_id").agg(pl.col("amount").sum().alias("returned"))
    usage = pl.scan_parquet(paths["events"]).group_by("customer_id").agg(
        *[(pl.col("event_type") == t).sum().cast(pl.Float64).alias(k) for k, t in EVENT_TYPES.items()])
    months = pl.max_horizontal(pl.col("tenure_days"), pl.lit(30.0)) / 30.4
    out = (per_customer.join(categories, on="customer_id").join(products, on="customer_id")
           .join(brands, on="customer_id").join(channels, on="customer_id")
           .join(returned, on="customer_id", how="left").join(usage, on="customer_id", how="left")
           .with_columns(pl.col("returned", *EVENT_TYPES).fill_null(0.0))
           .with_columns(
               pl.when(pl.col("tenure_days") >= 30).then(pl.col("frequency") / (pl.col("tenure_days") / 30.4))
               .alias("orders_per_month"),
               (pl.col("total_margin") / pl.col("total_spend")).alias("margin_rate"),
               pl.min_horizontal(pl.col("returned") / pl.col("total_spend"), pl.lit(1.0)).alias("return_rate"),
               (pl.col("sessions") / months).alias("sessions_per_month"),
               (pl.col("views") / pl.col("frequency")).alias("views_per_order"),
               pl.when(pl.col("views") > 0).then(pl.min_horizontal(pl.col("frequency") / pl.col("views"), pl.lit(1.0)))
               .alias("view_to_order_rate"),
               (pl.col("opens") / months).alias("email_open_rate"),
               pl.when(pl.col("opens") > 0).then(pl.col("clicks") / pl.col("opens")).alias("email_click_rate"))
           .drop("returned", *EVENT_TYPES).sort("customer_id").collect())
    return out.to_pandas().set_index("customer_id")


def core_polars(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    import polars as pl

    end = _end(as_of).to_pydatetime()
    orders = pl.scan_parquet(paths["transactions"]).group_by("customer_id", "order_id").agg(
        pl.col("timestamp").min().alias("ts"), pl.col("amount").sum().alias("value"), pl.col("quantity").sum().alias("items"))
    out = orders.group_by("customer_id").agg(
        pl.len().cast(pl.Float64).alias("frequency"),
        ((pl.lit(end) - pl.col("ts").max()).dt.total_seconds() / 86400.0).alias("recency_days"),
        ((pl.lit(end) - pl.col("ts").min()).dt.total_seconds() / 86400.0).alias("tenure_days"),
        pl.col("value").sum().alias("total_spend"), pl.col("value").mean().alias("mean_order_value"),
        pl.col("items").mean().alias("items_per_order")).sort("customer_id").collect()
    return out.to_pandas().set_index("customer_id")


# --- idiomatic pandas ---------------------------------------------------------------------------------


def full_pandas(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    end = _end(as_of)
    tx = pd.read_parquet(paths["transactions"])
    orders = tx.groupby(["customer_id", "order_id"], sort=False).agg(
        ts=("timestamp", "min"), value=("amount", "sum"), items=("quantity", "sum"), lines=("amount", "size"),
        margin=("margin", "sum"))
    g = orders.groupby("customer_id")
    f = g.agg(frequency=("value", "size"), last=("ts", "max"), first=("ts", "min"), total_spend=("value", "sum"),
              mean_order_value=("value", "mean"), items_per_order=("items", "mean"), lines_per_order=("lines", "mean"),
              total_margin=("margin", "sum"))
    f["frequency"] = f["frequency"].astype(float)
    f["recency_days"] = (end - f["last"]).dt.total_seconds() / 86400
    f["tenure_days"] = (end - f["first"]).dt.total_seconds() / 86400
    f["interpurchase_days"] = ((f["last"] - f["first"]).dt.total_seconds() / 86400 / (f["frequency"] - 1)).where(f["frequency"] > 1)
    by_category = tx.groupby(["customer_id", "category"])["amount"].sum()
    wide = by_category.unstack(fill_value=0.0)
    total = wide.sum(axis=1)
    f["n_categories"] = (wide > 0).sum(axis=1).astype(float)
    f["favourite_category"] = wide.idxmax(axis=1)
    f["favourite_category_share"] = wide.max(axis=1) / total
    top = _top_categories(wide.sum().rename("spend").rename_axis("category"))
    shares = wide[top].div(total, axis=0)
    shares.columns = [_share_name(c) for c in top]
    if wide.shape[1] > len(top):
        shares["share_other"] = wide.drop(columns=top).sum(axis=1) / total
    f["repeat_product_rate"] = (tx.groupby(["customer_id", "product_id"])["order_id"].nunique() > 1).groupby("customer_id").mean()
    f["orders_per_month"] = (f["frequency"] / (f["tenure_days"] / 30.4)).where(f["tenure_days"] >= 30)
    f["margin_rate"] = f["total_margin"] / f["total_spend"]
    brand = tx.groupby(["customer_id", "brand"])["amount"].sum().groupby("customer_id")
    f["favourite_brand_share"] = brand.max() / brand.sum()
    channel = tx.groupby(["customer_id", "channel"])["order_id"].nunique()
    f["favourite_channel"] = channel.groupby("customer_id").idxmax().str[1]
    f = f.join(shares)
    returned = pd.read_parquet(paths["returns"]).groupby("customer_id")["amount"].sum()
    f["return_rate"] = (returned.reindex(f.index).fillna(0) / f["total_spend"]).clip(upper=1.0)
    ev = pd.read_parquet(paths["events"], columns=["customer_id", "event_type"])
    counts = pd.crosstab(ev["customer_id"], ev["event_type"]).rename(columns={t: k for k, t in EVENT_TYPES.items()})
    return _with_usage_rates(f, counts).drop(columns=["last", "first"]).sort_index()


def core_pandas(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    end = _end(as_of)
    tx = pd.read_parquet(paths["transactions"], columns=["customer_id", "order_id", "timestamp", "amount", "quantity"])
    orders = tx.groupby(["customer_id", "order_id"], sort=False).agg(
        ts=("timestamp", "min"), value=("amount", "sum"), items=("quantity", "sum"))
    f = orders.groupby("customer_id").agg(frequency=("value", "size"), last=("ts", "max"), first=("ts", "min"),
                                          total_spend=("value", "sum"), mean_order_value=("value", "mean"),
                                          items_per_order=("items", "mean"))
    f["frequency"] = f["frequency"].astype(float)
    f["recency_days"] = (end - f["last"]).dt.total_seconds() / 86400
    f["tenure_days"] = (end - f["first"]).dt.total_seconds() / 86400
    return f[CORE]


def core_tutorial(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    """The RFM tutorial way: one ``groupby().agg`` of Python lambdas per customer."""
    end = _end(as_of)
    tx = pd.read_parquet(paths["transactions"], columns=["customer_id", "order_id", "timestamp", "amount", "quantity"])
    f = tx.groupby("customer_id").agg(
        frequency=("order_id", lambda x: float(x.nunique())),
        recency_days=("timestamp", lambda x: (end - x.max()).total_seconds() / 86400),
        tenure_days=("timestamp", lambda x: (end - x.min()).total_seconds() / 86400),
        total_spend=("amount", lambda x: x.sum()),
        items=("quantity", lambda x: x.sum()),
    )
    f["mean_order_value"] = f["total_spend"] / f["frequency"]
    f["items_per_order"] = f["items"] / f["frequency"]
    return f[CORE]


def full_tutorial(paths: dict[str, Path], as_of: str) -> pd.DataFrame:
    """The whole feature set the RFM-tutorial way: every aggregate is a Python ``lambda`` in
    ``groupby().agg``, one call per group (customer, or customer x category / product / brand /
    channel where a feature needs a second column), each intermediate computed once; only the
    ratios between the aggregates and the pivot of category spend are whole-column operations.

    Like the other baselines it assumes the benchmark's complete generated data (margin, brand and
    channel columns, a category on every line, positive spend), and, as tutorials do, it times an
    order by its lines (recency from the latest line), where the project times an order by its
    first line: the two differ only when the lines of one order carry different times, which the
    generated data never do (the benchmark and ``tests/test_benchmark_baselines.py`` check that the
    values agree). Timing orders first would add a lambda call per order and only slow it down.
    """
    end = _end(as_of)
    days = 86400.0
    tx = pd.read_parquet(paths["transactions"])
    f = tx.groupby("customer_id").agg(
        frequency=("order_id", lambda x: float(x.nunique())),
        last=("timestamp", lambda x: x.max()),
        first=("timestamp", lambda x: x.min()),
        total_spend=("amount", lambda x: x.sum()),
        items=("quantity", lambda x: x.sum()),
        lines=("amount", lambda x: len(x)),
        total_margin=("margin", lambda x: x.sum()),
    )
    f["recency_days"] = (end - f["last"]).dt.total_seconds() / days
    f["tenure_days"] = (end - f["first"]).dt.total_seconds() / days
    f["mean_order_value"] = f["total_spend"] / f["frequency"]
    f["items_per_order"] = f["items"] / f["frequency"]
    f["lines_per_order"] = f["lines"] / f["frequency"]
    f["interpurchase_days"] = ((f["last"] - f["first"]).dt.total_seconds() / days / (f["frequency"] - 1)).where(
        f["frequency"] > 1)
    spend = tx.groupby(["customer_id", "category"]).agg(spend=("amount", lambda x: x.sum()))["spend"]
    by_customer = spend.groupby("customer_id")
    f["n_categories"] = by_customer.agg(lambda x: float(len(x)))
    f["favourite_category"] = by_customer.agg(lambda x: x.idxmax()[1])
    f["favourite_category_share"] = by_customer.agg(lambda x: x.max() / x.sum())
    wide = spend.unstack(fill_value=0.0)
    top = _top_categories(wide.sum().rename("spend").rename_axis("category"))
    shares = wide[top].div(f["total_spend"], axis=0)
    shares.columns = [_share_name(c) for c in top]
    if wide.shape[1] > len(top):
        shares["share_other"] = wide.drop(columns=top).sum(axis=1) / f["total_spend"]
    orders_per_product = tx.groupby(["customer_id", "product_id"]).agg(n=("order_id", lambda x: x.nunique()))["n"]
    f["repeat_product_rate"] = orders_per_product.groupby("customer_id").agg(lambda x: (x > 1).mean())
    f["orders_per_month"] = (f["frequency"] / (f["tenure_days"] / 30.4)).where(f["tenure_days"] >= 30)
    f["margin_rate"] = f["total_margin"] / f["total_spend"]
    brand = tx.groupby(["customer_id", "brand"]).agg(spend=("amount", lambda x: x.sum()))["spend"]
    f["favourite_brand_share"] = brand.groupby("customer_id").agg(lambda x: x.max() / x.sum())
    channel = tx.groupby(["customer_id", "channel"]).agg(n=("order_id", lambda x: x.nunique()))["n"]
    f["favourite_channel"] = channel.groupby("customer_id").agg(lambda x: x.idxmax()[1])
    f = f.join(shares)
    returned = pd.read_parquet(paths["returns"]).groupby("customer_id").agg(r=("amount", lambda x: x.sum()))["r"]
    f["return_rate"] = (returned.reindex(f.index).fillna(0) / f["total_spend"]).clip(upper=1.0)
    ev = pd.read_parquet(paths["events"], columns=["customer_id", "event_type"])
    counts = ev.groupby("customer_id").agg(
        **{k: ("event_type", lambda x, t=t: float((x == t).sum())) for k, t in EVENT_TYPES.items()}
    )
    return _with_usage_rates(f, counts).drop(columns=["last", "first", "items", "lines"]).sort_index()


def compare(project: pd.DataFrame, other: pd.DataFrame, *, rtol: float = 1e-6) -> dict[str, object]:
    """How far ``other`` is from the project's features: columns missing, numeric columns that differ
    beyond ``rtol``, and the share of rows where the favourite-* names agree (ties may differ)."""
    columns = [c for c in other.columns if c in project.columns]
    missing = sorted(set(project.columns) - set(other.columns))
    mine, theirs = project[columns], other.reindex(project.index)[columns]
    differ, agree = [], {}
    for c in columns:
        if mine[c].dtype.kind == "f":
            if not np.allclose(mine[c], theirs[c].astype(float), rtol=rtol, atol=1e-9, equal_nan=True):
                differ.append(c)
        else:
            agree[c] = round(float((mine[c] == theirs[c]).mean()), 4)
    return {"columns": len(columns), "missing": missing, "differ": differ, "names_agree": agree}
