"""Synthetic customer population with planted segments on every basis.

The generator draws a realistic-looking retail customer base (customers,
order lines, a lifestyle survey and web/app analytics events) in which the
true segment of every customer is known on each segmentation basis:

* demographic -- :data:`DEMOGRAPHIC_SEGMENTS` (age, income, household, job),
* geographic -- :data:`GEOGRAPHIC_REGIONS` (five European regions),
* psychographic -- :data:`PSYCHOGRAPHIC_SEGMENTS` (four latent attitude
  factors measured by :data:`SURVEY_ITEMS`),
* behavioural -- :data:`BEHAVIORAL_SEGMENTS` (purchase rate, basket, churn,
  tenure, category focus),
* value -- :data:`VALUE_TIERS`, ranked by the generator's true expected
  next-12-month revenue.

The bases are assigned independently of each other per customer (value
follows behaviour and, mildly, income), and each basis is well separated, so
standard methods recover it; the truth table lets tests assert recovery with
the adjusted Rand index instead of "it ran".

Each segment definition carries ``"traits"``: what should characterise the
segment in a persona.  For demographic and geographic segments a trait is the
*modal value* of a column (``age_band`` and ``income_band`` are derived with
:data:`AGE_BANDS` and :data:`INCOME_BANDS`).  For psychographic and behavioural
segments a trait is ``"high"`` or ``"low"``: the segment has the highest (or
lowest) mean of that factor score / customer feature among all segments.

Everything is drawn with vectorised numpy: per-customer counts are drawn first
and expanded with :func:`numpy.repeat`, so 100 000 customers take seconds.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "AGE_BANDS",
    "BEHAVIORAL_SEGMENTS",
    "CATEGORIES",
    "CHANNELS",
    "DEMOGRAPHIC_SEGMENTS",
    "EVENT_TYPES",
    "GEOGRAPHIC_REGIONS",
    "INCOME_BANDS",
    "PSYCHOGRAPHIC_FACTORS",
    "PSYCHOGRAPHIC_SEGMENTS",
    "SAMPLE_COLUMNS",
    "SAMPLE_FILES",
    "SURVEY_ITEMS",
    "SURVEY_QUESTIONS",
    "VALUE_TIERS",
    "generate_sample",
    "product_catalogue",
    "write_sample",
]

WORLD_PATH = Path(__file__).parent / "data" / "sample_world.yaml"
"""The world tables (planted segments, cities, survey, categories, names): data, not code."""


def _as_tuples(value: Any) -> Any:
    """YAML lists back to the tuples the generator was written with (dict keys and scalars unchanged)."""
    if isinstance(value, list):
        return tuple(_as_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _as_tuples(item) for key, item in value.items()}
    return value


def _load_world(path: Path = WORLD_PATH) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as handle:
        return _as_tuples(yaml.safe_load(handle))


_WORLD = _load_world()

# ---------------------------------------------------------------------------
# Data contract
# ---------------------------------------------------------------------------

SAMPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "name", "email", "age", "gender", "income", "education", "occupation",
        "marital_status", "children", "country", "region", "city", "latitude", "longitude",
        "urban_rural", "climate_zone", "signup_date",
    ),
    "transactions": (
        "customer_id", "order_id", "timestamp", "product_id", "product_name", "category", "brand",
        "channel", "quantity", "unit_price", "amount", "margin",
    ),
    "survey": ("customer_id", "response_date", *(f"q{i:02d}" for i in range(1, 17))),
    "events": ("customer_id", "timestamp", "event_type", "product_id", "channel"),
    "truth": (
        "customer_id", "true_demographic_segment", "true_geographic_segment",
        "true_psychographic_segment", "true_behavioral_segment", "true_value_tier",
    ),
}
"""Exact column order of each frame returned by :func:`generate_sample`."""

SAMPLE_FILES: dict[str, str] = {
    "customers": "customers.csv",
    "transactions": "transactions.csv.gz",
    "survey": "survey.csv",
    "events": "events.csv.gz",
    "truth": "truth.csv",
}
"""File name written by :func:`write_sample` for each frame."""

CHANNELS: tuple[str, ...] = ("web", "app", "store")
EVENT_TYPES: tuple[str, ...] = ("session", "product_view", "add_to_cart", "email_open", "email_click")
VALUE_TIERS: tuple[str, ...] = ("top 1%", "top 20%", "rest")

AGE_BANDS: dict[str, tuple[int, int]] = {
    "18-30": (18, 30),
    "31-42": (31, 42),
    "43-60": (43, 60),
    "61-65": (61, 65),
    "66+": (66, 120),
}
"""Inclusive age ranges used by the ``age_band`` trait."""

INCOME_BANDS: dict[str, tuple[float, float]] = {
    "low": (0.0, 45_000.0),
    "middle": (45_000.0, 90_000.0),
    "high": (90_000.0, float("inf")),
}
"""Half-open ``[lower, upper)`` annual income ranges used by the ``income_band`` trait."""

# ---------------------------------------------------------------------------
# Demographic basis
# ---------------------------------------------------------------------------

DEMOGRAPHIC_SEGMENTS: dict[str, dict[str, Any]] = _WORLD["demographic_segments"]
"""Planted demographic segments: share, generating distributions and defining traits."""

_GENDER_SHARES: dict[str, float] = _WORLD["gender_shares"]
_INCOME_LOG_SD = 0.2

# ---------------------------------------------------------------------------
# Geographic basis
# ---------------------------------------------------------------------------

GEOGRAPHIC_REGIONS: dict[str, dict[str, Any]] = _WORLD["geographic_regions"]
"""Planted geographic regions: share, cities (real coordinates), settlement mix and traits."""

# Home-address jitter around the city centre, in degrees of latitude (~11 km).
_GEO_JITTER_DEG = 0.1

# ---------------------------------------------------------------------------
# Psychographic basis
# ---------------------------------------------------------------------------

PSYCHOGRAPHIC_FACTORS: tuple[str, ...] = _WORLD["psychographic_factors"]
"""The four latent attitude factors the survey measures."""

SURVEY_QUESTIONS: dict[str, str] = _WORLD["survey_questions"]
"""Wording of the survey items, answered 1 (strongly disagree) to 5 (strongly agree)."""

SURVEY_ITEMS: dict[str, tuple[str, bool]] = _WORLD["survey_items"]
"""Survey item -> (latent factor it measures, whether it is reverse-worded).

Four items per factor, two of them reverse-worded (balanced keying), interleaved
so that consecutive questions measure different factors.
"""

_SURVEY_LOADINGS = np.array([1.0, 0.9, 1.0, 0.95, 0.85, 1.0, 0.9, 1.0, 0.9, 0.85, 1.0, 0.9, 0.95, 1.0, 0.9, 0.85])
_SURVEY_FACTOR_SD = 0.4
_SURVEY_ITEM_NOISE_SD = 0.5

PSYCHOGRAPHIC_SEGMENTS: dict[str, dict[str, Any]] = _WORLD["psychographic_segments"]
"""Planted psychographic segments: share, latent factor means (in item-scale units) and traits."""

# ---------------------------------------------------------------------------
# Products
# ---------------------------------------------------------------------------

CATEGORIES: dict[str, dict[str, Any]] = _WORLD["categories"]
"""Product categories: gross margin rate, mean extra units per line, brands and items with base prices."""

_PRODUCTS_PER_CATEGORY = 34
_CATALOGUE_SEED = 20230101
_DISCOUNT_SHARE = 0.12
_DISCOUNT_RANGE = (0.10, 0.30)
_RETURN_SHARE = 0.01
_DUPLICATE_SHARE = 0.002

# ---------------------------------------------------------------------------
# Behavioural basis
# ---------------------------------------------------------------------------

_CAT = tuple(CATEGORIES)

BEHAVIORAL_SEGMENTS: dict[str, dict[str, Any]] = _WORLD["behavioral_segments"]
"""Planted behavioural segments: purchase process parameters and traits."""

_RATE_HETEROGENEITY_SHAPE = 8.0  # Gamma shape of the per-customer rate multiplier (mean 1).
_BASKET_INCOME_ELASTICITY = 0.25
_MIN_WINDOW_DAYS = 600
_DAYS_PER_MONTH = 365.25 / 12

# Preferred sales channel by demographic segment: older customers shop in store.
_CHANNEL_MIX: dict[str, dict[str, float]] = _WORLD["channel_mix"]

# Shopping hours: online peaks in the evening, stores follow opening hours.
_HOUR_WEIGHTS: dict[str, np.ndarray] = {kind: np.array(w, dtype=float) for kind, w in _WORLD["hour_weights"].items()}

_SURVEY_PARTIAL_SHARE = 0.15
_SURVEY_ITEM_NONRESPONSE = 0.01
_SURVEY_UNKNOWN_ID_SHARE = 0.02
_SURVEY_FIELD_DAYS = 60
_INCOME_MISSING_SHARE = 0.02
_EDUCATION_MISSING_SHARE = 0.01

# ---------------------------------------------------------------------------
# Names (fake PII)
# ---------------------------------------------------------------------------

_NAMES: dict[str, dict[str, tuple[str, ...]]] = _WORLD["names"]
# Reserved example domains (RFC 2606): plausible-looking, never a real mailbox.
_EMAIL_DOMAINS: tuple[str, ...] = _WORLD["email_domains"]


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def product_catalogue(random_state: int = _CATALOGUE_SEED) -> pd.DataFrame:
    """Build the product catalogue used by the generator.

    Every category of :data:`CATEGORIES` gets 34 brand/item combinations
    (about 200 products in all) with a list price (item base price times a
    brand premium, ending in .99) and a product gross-margin rate (category
    rate with noise).  The catalogue does not depend on the seed passed to
    :func:`generate_sample`, so a product id means the same product in every
    sample.

    Parameters
    ----------
    random_state : int, default 20230101
        Seed for the brand/item selection, prices and margin rates.

    Returns
    -------
    pandas.DataFrame
        One row per product, sorted by ``category`` then ``list_price``, with
        columns ``product_id``, ``product_name``, ``category``, ``brand``,
        ``list_price`` and ``margin_rate``.

    Examples
    --------
    >>> catalogue = product_catalogue()
    >>> len(catalogue), catalogue["category"].nunique()
    (204, 6)
    """
    rng = np.random.default_rng(random_state)
    frames = []
    for category, spec in CATEGORIES.items():
        brands = np.array(spec["brands"], dtype=object)
        items = np.array(list(spec["items"]), dtype=object)
        base_price = np.array(list(spec["items"].values()), dtype=float)
        premium = rng.permutation(np.linspace(0.8, 1.35, len(brands)))
        combo = rng.choice(len(brands) * len(items), size=_PRODUCTS_PER_CATEGORY, replace=False)
        brand_idx, item_idx = np.divmod(combo, len(items))
        price = base_price[item_idx] * premium[brand_idx] * rng.lognormal(0.0, 0.08, combo.size)
        frames.append(pd.DataFrame({
            "product_name": brands[brand_idx] + " " + items[item_idx],
            "category": category,
            "brand": brands[brand_idx],
            "list_price": np.maximum(np.round(price), 1.0) - 0.01,
            "margin_rate": np.round(np.clip(spec["margin_rate"] + rng.normal(0, 0.04, combo.size),
                                            0.05, 0.8), 3),
        }))
    # Products stay grouped in CATEGORIES order (the generator looks them up by
    # category code) and are ranked by price within a category (price tiers).
    catalogue = pd.concat(
        [f.sort_values(["list_price", "product_name"], kind="stable") for f in frames], ignore_index=True
    )
    catalogue.insert(0, "product_id", _ids("P", np.arange(1, len(catalogue) + 1), width=4))
    return catalogue


def generate_sample(
    n_customers: int = 2000,
    *,
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2024-12-31",
    random_state: int | None = 42,
    survey_response_rate: float = 0.75,
) -> dict[str, pd.DataFrame]:
    """Generate a synthetic customer population with planted segments.

    Parameters
    ----------
    n_customers : int, default 2000
        Number of customers.
    start, end : str or pandas.Timestamp, default "2023-01-01", "2024-12-31"
        First and last day (inclusive) of the observation window.  The window
        must span at least 600 days so that "Lapsed" customers can churn 9-15
        months before ``end`` after having bought for a while.
    random_state : int or None, default 42
        Seed; the same seed gives identical frames.  ``None`` draws fresh
        entropy.
    survey_response_rate : float, default 0.75
        Share of customers who answer the survey.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``customers``, ``transactions``, ``survey``, ``events`` and ``truth``
        with the columns of :data:`SAMPLE_COLUMNS`.  Timestamps and dates are
        ``datetime64`` columns (written as ISO text by :func:`write_sample`);
        missing values (income, education, survey answers, product ids of
        non-product events, psychographic truth of non-respondents) are NA.

    Raises
    ------
    ValueError
        If ``n_customers`` is not positive, ``survey_response_rate`` is
        outside [0, 1] or the window is too short.

    Notes
    -----
    Noise planted on purpose: about 2 % missing ``income`` and 1 % missing
    ``education``; about 1 % of order lines are returned (a line with negative
    quantity, amount and margin whose ``order_id`` is the original one
    prefixed with "R"); about 0.2 % of lines are exact duplicates; 15 % of
    survey respondents break off part-way and 1 % of answers are skipped
    (about 5 % missing answers); about 2 % of survey rows carry a customer id
    that is not in the customer table.

    Examples
    --------
    >>> sample = generate_sample(200, random_state=1)
    >>> sorted(sample)
    ['customers', 'events', 'survey', 'transactions', 'truth']
    >>> sample["truth"]["customer_id"].equals(sample["customers"]["customer_id"])
    True
    """
    if int(n_customers) < 1:
        raise ValueError(f"generate_sample: n_customers must be a positive integer, got {n_customers!r}.")
    if not 0.0 <= survey_response_rate <= 1.0:
        raise ValueError(
            f"generate_sample: survey_response_rate must lie in [0, 1], got {survey_response_rate!r}."
        )
    start_day = pd.Timestamp(start).normalize()
    end_day = pd.Timestamp(end).normalize()
    n_days = (end_day - start_day).days + 1
    if n_days < _MIN_WINDOW_DAYS:
        raise ValueError(
            f"generate_sample: the window start={start_day.date()} .. end={end_day.date()} spans {n_days} "
            f"days; at least {_MIN_WINDOW_DAYS} are needed so that 'Lapsed' customers can churn 9-15 months "
            "before the end. Pass an earlier `start` or a later `end`."
        )
    n = int(n_customers)
    rng_demo, rng_geo, rng_names, rng_behaviour, rng_lines, rng_events, rng_survey = (
        np.random.default_rng(random_state).spawn(7)
    )
    window = _Window(start=np.datetime64(start_day.date(), "s"), n_days=n_days)

    demo = _draw_demographics(n, rng_demo)
    geo = _draw_geography(n, rng_geo)
    names, emails = _draw_names(geo["country"], demo["gender"], rng_names)
    catalogue = product_catalogue()
    behaviour = _draw_behaviour(n, demo, window, catalogue, rng_behaviour)
    customer_id = _ids("C", np.arange(1, n + 1), width=max(6, len(str(n))))

    signup_day = np.floor(behaviour["birth"] - rng_behaviour.exponential(10.0, n))
    customers = pd.DataFrame({
        "customer_id": customer_id,
        "name": names,
        "email": emails,
        "age": demo["age"],
        "gender": demo["gender"],
        "income": np.where(rng_demo.random(n) < _INCOME_MISSING_SHARE, np.nan, demo["income"]),
        "education": pd.Series(demo["education"], dtype="str").mask(
            rng_demo.random(n) < _EDUCATION_MISSING_SHARE),
        "occupation": demo["occupation"],
        "marital_status": demo["marital_status"],
        "children": demo["children"],
        "country": geo["country"],
        "region": geo["region"],
        "city": geo["city"],
        "latitude": geo["latitude"],
        "longitude": geo["longitude"],
        "urban_rural": geo["urban_rural"],
        "climate_zone": geo["climate_zone"],
        "signup_date": window.timestamps(signup_day, np.zeros(n, dtype=np.int64)),
    })

    transactions = _draw_transactions(customer_id, behaviour, catalogue, window, rng_lines)
    events = _draw_events(customer_id, behaviour, catalogue, window, rng_events)
    survey, psy_segment = _draw_survey(customer_id, signup_day, window, survey_response_rate, rng_survey)

    truth = pd.DataFrame({
        "customer_id": customer_id,
        "true_demographic_segment": demo["segment"],
        "true_geographic_segment": geo["region"],
        "true_psychographic_segment": pd.Series(psy_segment, dtype="str"),
        "true_behavioral_segment": behaviour["segment"],
        "true_value_tier": _value_tiers(behaviour["expected_value_12m"]),
    })
    return {"customers": customers, "transactions": transactions, "survey": survey,
            "events": events, "truth": truth}


def write_sample(
    out_dir: str | Path,
    n_customers: int = 2000,
    random_state: int | None = 42,
    **kw: Any,
) -> dict[str, Path]:
    """Generate a sample and write it as CSV files.

    Files are byte-identical across runs for a fixed seed: floats are rounded
    (2 decimals, latitude/longitude 5), timestamps are written as ISO text and
    gzip headers carry no modification time.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write into; created if needed.  Existing files of the same
        names are overwritten.
    n_customers : int, default 2000
        Number of customers.
    random_state : int or None, default 42
        Seed passed to :func:`generate_sample`.
    **kw
        Further keyword arguments of :func:`generate_sample` (``start``,
        ``end``, ``survey_response_rate``).

    Returns
    -------
    dict of str to pathlib.Path
        Path of each file written, keyed like :data:`SAMPLE_FILES`.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_sample(tempfile.mkdtemp(), n_customers=100)
    >>> sorted(p.name for p in paths.values())
    ['customers.csv', 'events.csv.gz', 'survey.csv', 'transactions.csv.gz', 'truth.csv']
    """
    frames = generate_sample(n_customers, random_state=random_state, **kw)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for key, file_name in SAMPLE_FILES.items():
        path = out / file_name
        compression: Any = {"method": "gzip", "mtime": 0} if file_name.endswith(".gz") else None
        _for_csv(frames[key]).to_csv(path, index=False, lineterminator="\n", compression=compression)
        paths[key] = path
    return paths


# ---------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """Observation window: day 0 is ``start``; days run ``0 .. n_days - 1``."""

    start: np.datetime64
    n_days: int

    def timestamps(self, day: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``datetime64[ns]`` values for day offsets and seconds of the day (whole seconds)."""
        offset = (np.asarray(day, dtype=np.int64) * 86400 + np.asarray(second, dtype=np.int64))
        return (self.start + offset.astype("timedelta64[s]")).astype("datetime64[ns]")


def _labels(values: tuple[str, ...] | list[str]) -> pd.api.extensions.ExtensionArray:
    """String array to ``take`` codes from, so large frames never hold Python string objects."""
    return pd.array(list(values), dtype="str")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    """Zero-padded string ids, e.g. ``C000123``, built without a Python loop."""
    return prefix + pd.Series(numbers).astype("str").str.zfill(width)


def _draw_by_segment(
    rng: np.random.Generator,
    segment: np.ndarray,
    specs: list[dict[Any, float]],
) -> np.ndarray:
    """Draw one categorical value per row from the distribution of its segment."""
    out = np.empty(segment.size, dtype=object)
    for code, dist in enumerate(specs):
        mask = segment == code
        values = np.array(list(dist), dtype=object)
        p = np.array(list(dist.values()), dtype=float)
        out[mask] = values[rng.choice(values.size, size=int(mask.sum()), p=p / p.sum())]
    return out


def _shares(spec: dict[str, dict[str, Any]]) -> np.ndarray:
    p = np.array([s["share"] for s in spec.values()], dtype=float)
    return p / p.sum()


def _draw_demographics(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    specs = list(DEMOGRAPHIC_SEGMENTS.values())
    segment = rng.choice(len(specs), size=n, p=_shares(DEMOGRAPHIC_SEGMENTS))
    lo = np.array([s["age_range"][0] for s in specs])
    hi = np.array([s["age_range"][1] for s in specs])
    age = rng.integers(lo[segment], hi[segment] + 1)
    median = np.array([s["income_median"] for s in specs], dtype=float)
    income = np.round(median[segment] * rng.lognormal(0.0, _INCOME_LOG_SD, n), -2)
    return {
        "segment_code": segment,
        "segment": np.array(list(DEMOGRAPHIC_SEGMENTS), dtype=object)[segment],
        "age": age.astype(np.int64),
        "gender": _draw_by_segment(rng, np.zeros(n, dtype=int), [_GENDER_SHARES]),
        "income": income,
        "education": _draw_by_segment(rng, segment, [s["education"] for s in specs]),
        "occupation": _draw_by_segment(rng, segment, [s["occupation"] for s in specs]),
        "marital_status": _draw_by_segment(rng, segment, [s["marital_status"] for s in specs]),
        "children": _draw_by_segment(rng, segment, [s["children"] for s in specs]).astype(np.int64),
    }


def _draw_geography(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    regions = list(GEOGRAPHIC_REGIONS.values())
    region = rng.choice(len(regions), size=n, p=_shares(GEOGRAPHIC_REGIONS))
    city_rows = [(r, name, c) for r, spec in enumerate(regions) for name, c in spec["cities"].items()]
    city_region = np.array([r for r, _, _ in city_rows])
    city_name = np.array([name for _, name, _ in city_rows], dtype=object)
    city_lat = np.array([c["lat"] for _, _, c in city_rows])
    city_lon = np.array([c["lon"] for _, _, c in city_rows])
    city_climate = np.array([c["climate_zone"] for _, _, c in city_rows], dtype=object)
    city_weight = np.array([c["weight"] for _, _, c in city_rows])

    city = np.empty(n, dtype=np.int64)
    for r in range(len(regions)):
        mask = region == r
        members = np.flatnonzero(city_region == r)
        w = city_weight[members] / city_weight[members].sum()
        city[mask] = members[rng.choice(members.size, size=int(mask.sum()), p=w)]
    lat = city_lat[city] + rng.normal(0.0, _GEO_JITTER_DEG, n)
    lon = city_lon[city] + rng.normal(0.0, _GEO_JITTER_DEG, n) / np.cos(np.radians(city_lat[city]))
    return {
        "region_code": region,
        "region": np.array(list(GEOGRAPHIC_REGIONS), dtype=object)[region],
        "country": np.array([s["country"] for s in regions], dtype=object)[region],
        "city": city_name[city],
        "latitude": np.round(lat, 5),
        "longitude": np.round(lon, 5),
        "urban_rural": _draw_by_segment(rng, region, [s["urban_rural"] for s in regions]),
        "climate_zone": city_climate[city],
    }


def _ascii_slug(name: str) -> str:
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("Ä", "Ae"), ("Ö", "Oe"),
                     ("Ü", "Ue")):
        name = name.replace(src, dst)
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def _draw_names(
    country: np.ndarray, gender: np.ndarray, rng: np.random.Generator
) -> tuple[pd.Series, pd.Series]:
    """Country-appropriate full names and unique, plausible (reserved-domain) emails."""
    n = country.size
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    for c, lists in _NAMES.items():
        in_country = country == c
        for g in ("F", "M", "X"):
            mask = in_country & (gender == g)
            pool = lists[g] if g != "X" else lists["F"] + lists["M"]
            first[mask] = np.array(pool, dtype=object)[rng.integers(0, len(pool), int(mask.sum()))]
        last[in_country] = np.array(lists["last"], dtype=object)[
            rng.integers(0, len(lists["last"]), int(in_country.sum()))]
    first_s = pd.Series(first, dtype="str")
    last_s = pd.Series(last, dtype="str")
    slug = {v: _ascii_slug(v) for v in set(first) | set(last)}
    first_slug = first_s.map(slug)
    last_slug = last_s.map(slug)
    # A unique number per customer keeps emails unique at any population size.
    number = pd.Series(rng.permutation(max(10 * n, 1000))[:n] + 1).astype("str")
    style = rng.integers(0, 3, n)
    local = np.where(style == 0, first_slug + "." + last_slug,
                     np.where(style == 1, first_slug.str[0] + last_slug, first_slug + "_" + last_slug))
    domain = np.array(_EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(_EMAIL_DOMAINS), n)]
    email = pd.Series(local, dtype="str") + number + "@" + pd.Series(domain, dtype="str")
    return first_s + " " + last_s, email


def _category_probabilities(
    segment: np.ndarray, favourite: np.ndarray
) -> np.ndarray:
    """Per-customer probability of each category for one order line or product event."""
    specs = list(BEHAVIORAL_SEGMENTS.values())
    base = np.array([[s["category_weights"].get(c, 0.0) for c in _CAT] for s in specs])
    base /= base.sum(axis=1, keepdims=True)
    fav_share = np.array([s["favourite_share"] for s in specs])[segment]
    p = (1.0 - fav_share)[:, None] * base[segment]
    p[np.arange(segment.size), favourite] += fav_share
    return p


def _expected_list_price(catalogue: pd.DataFrame) -> np.ndarray:
    """Expected list price by (behavioural segment, category) under the segment's price tier."""
    specs = list(BEHAVIORAL_SEGMENTS.values())
    out = np.empty((len(specs), len(_CAT)))
    for c, category in enumerate(_CAT):
        prices = catalogue.loc[catalogue["category"] == category, "list_price"].to_numpy()
        edges = np.linspace(0.0, 1.0, prices.size + 1)
        for s, spec in enumerate(specs):
            a, b = spec["price_tier"]
            out[s, c] = np.diff(stats.beta.cdf(edges, a, b)) @ prices
    return out


def _draw_behaviour(
    n: int,
    demo: dict[str, np.ndarray],
    window: _Window,
    catalogue: pd.DataFrame,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per-customer purchase process: segment, active span, rate, basket and true value."""
    specs = list(BEHAVIORAL_SEGMENTS.values())
    segment = rng.choice(len(specs), size=n, p=_shares(BEHAVIORAL_SEGMENTS))
    t_end = float(window.n_days)

    lo = np.array([s["first_purchase_days"][0] for s in specs], dtype=float)
    hi = np.array([s["first_purchase_days"][1] for s in specs], dtype=float)
    lo = np.where(lo < 0, t_end + lo, lo)
    hi = np.where(hi <= 0, t_end + hi - 1e-6, hi)
    birth = rng.uniform(lo[segment], hi[segment])

    churn = np.array([s["churn_days_before_end"] or (0, 0) for s in specs], dtype=float)
    death = t_end - rng.uniform(churn[segment, 0], churn[segment, 1])
    # Keep at least two months of activity for late starters in short windows.
    death = np.maximum(death, np.minimum(birth + 60.0, t_end))
    alive = np.array([s["churn_days_before_end"] is None for s in specs])[segment]

    rate = (np.array([s["orders_per_month"] for s in specs])[segment] / _DAYS_PER_MONTH
            * rng.gamma(_RATE_HETEROGENEITY_SHAPE, 1.0 / _RATE_HETEROGENEITY_SHAPE, n))

    fav_specs = [s["favourite_weights"] for s in specs]
    favourite_name = _draw_by_segment(rng, segment, fav_specs)
    favourite = pd.Index(_CAT).get_indexer(favourite_name.astype(str))

    income_factor = np.clip((demo["income"] / 50_000.0) ** _BASKET_INCOME_ELASTICITY, 0.75, 1.4)
    extra_lines = (np.array([s["lines_per_order"] for s in specs]) - 1.0)[segment] * income_factor

    p_cat = _category_probabilities(segment, favourite)
    extra_qty = np.array([CATEGORIES[c]["extra_quantity"] for c in _CAT])
    mean_discount = _DISCOUNT_SHARE * np.mean(_DISCOUNT_RANGE)
    line_value = (_expected_list_price(catalogue) * (1.0 + extra_qty) * (1.0 - mean_discount))[segment]
    expected_basket = (1.0 + extra_lines) * (p_cat * line_value).sum(axis=1)
    expected_value_12m = alive * rate * 365.0 * expected_basket

    channel_mix = np.array([[_CHANNEL_MIX[d][ch] for ch in CHANNELS] for d in DEMOGRAPHIC_SEGMENTS])
    bias = np.array([[s["channel_bias"][ch] for ch in CHANNELS] for s in specs])
    channel_p = channel_mix[demo["segment_code"]] + bias[segment]
    channel_p /= channel_p.sum(axis=1, keepdims=True)

    return {
        "segment_code": segment,
        "segment": np.array(list(BEHAVIORAL_SEGMENTS), dtype=object)[segment],
        "birth": birth,
        "death": death,
        "rate": rate,
        "favourite": favourite,
        "extra_lines": extra_lines,
        "channel_p": channel_p,
        "expected_value_12m": expected_value_12m,
    }


def _draw_categorical_rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Draw one index per row of a row-stochastic matrix ``p`` (inverse CDF, vectorised)."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random(p.shape[0]) * cdf[:, -1]
    return np.minimum((u[:, None] >= cdf).sum(axis=1), p.shape[1] - 1)


def _draw_products(
    rng: np.random.Generator,
    customer: np.ndarray,
    behaviour: dict[str, np.ndarray],
    catalogue: pd.DataFrame,
) -> np.ndarray:
    """Catalogue row for each line/event: category from the customer's mix, product by price tier."""
    segment = behaviour["segment_code"][customer]
    specs = list(BEHAVIORAL_SEGMENTS.values())
    fav_share = np.array([s["favourite_share"] for s in specs])[segment]
    category = behaviour["favourite"][customer].copy()
    off_favourite = rng.random(customer.size) >= fav_share
    base = np.array([[s["category_weights"].get(c, 0.0) for c in _CAT] for s in specs])
    for s in range(len(specs)):
        mask = off_favourite & (segment == s)
        category[mask] = rng.choice(len(_CAT), size=int(mask.sum()), p=base[s] / base[s].sum())
    a = np.array([s["price_tier"][0] for s in specs])[segment]
    b = np.array([s["price_tier"][1] for s in specs])[segment]
    rank_quantile = rng.beta(a, b)
    cat_codes = pd.Index(_CAT).get_indexer(catalogue["category"])
    size = np.bincount(cat_codes, minlength=len(_CAT))
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    within = np.minimum((rank_quantile * size[category]).astype(np.int64), size[category] - 1)
    return offset[category] + within


def _draw_seconds(rng: np.random.Generator, store: np.ndarray) -> np.ndarray:
    """Second of the day: evening peak online, opening hours in store."""
    hour = np.empty(store.size, dtype=np.int64)
    for kind, mask in (("online", ~store), ("store", store)):
        w = _HOUR_WEIGHTS[kind]
        hour[mask] = rng.choice(24, size=int(mask.sum()), p=w / w.sum())
    return hour * 3600 + rng.integers(0, 3600, store.size)


def _draw_transactions(
    customer_id: pd.Series,
    behaviour: dict[str, np.ndarray],
    catalogue: pd.DataFrame,
    window: _Window,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = customer_id.size
    birth, death = behaviour["birth"], behaviour["death"]
    # The first purchase opens the relationship; later orders form a Poisson process
    # until churn (or the end of the window), so their times are uniform given the count.
    n_orders = 1 + rng.poisson(behaviour["rate"] * (death - birth))
    order_customer = np.repeat(np.arange(n), n_orders)
    first = np.zeros(order_customer.size, dtype=bool)
    first[np.concatenate([[0], np.cumsum(n_orders)[:-1]])] = True
    u = np.where(first, 0.0, rng.random(order_customer.size))
    order_time = birth[order_customer] + u * (death - birth)[order_customer]
    order_day = np.minimum(np.floor(order_time), window.n_days - 1).astype(np.int64)

    channel = _draw_categorical_rows(rng, behaviour["channel_p"][order_customer])
    order_second = _draw_seconds(rng, channel == CHANNELS.index("store"))
    chronological = np.lexsort((order_customer, order_second, order_day))
    order_customer = order_customer[chronological]
    order_day = order_day[chronological]
    order_second = order_second[chronological]
    channel = channel[chronological]
    n_total = order_customer.size
    order_id = _ids("O", np.arange(1, n_total + 1), width=max(7, len(str(n_total))))

    n_lines = 1 + rng.poisson(behaviour["extra_lines"][order_customer])
    line_order = np.repeat(np.arange(n_total), n_lines)
    line_customer = order_customer[line_order]
    product = _draw_products(rng, line_customer, behaviour, catalogue)
    cat_codes = pd.Index(_CAT).get_indexer(catalogue["category"])[product]
    extra_qty = np.array([CATEGORIES[c]["extra_quantity"] for c in _CAT])
    quantity = 1 + rng.poisson(extra_qty[cat_codes])
    list_price = catalogue["list_price"].to_numpy()[product]
    discount = np.where(rng.random(product.size) < _DISCOUNT_SHARE, rng.uniform(*_DISCOUNT_RANGE, product.size),
                        0.0)
    unit_price = np.round(list_price * (1.0 - discount), 2)
    amount = np.round(quantity * unit_price, 2)
    unit_cost = list_price * (1.0 - catalogue["margin_rate"].to_numpy()[product])
    # Freight, shrinkage and supplier rebates make realised margins noisy.
    margin = np.round(amount - quantity * unit_cost * rng.normal(1.0, 0.03, product.size), 2)

    line = {
        "order": line_order,
        "order_id_prefix": np.zeros(line_order.size, dtype=bool),
        "product": product,
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": amount,
        "margin": margin,
        "day": order_day[line_order],
        "second": order_second[line_order],
    }
    # Returns: a full refund of the line 2-30 days later, booked under "R" + order id.
    returned = np.flatnonzero(rng.random(line_order.size) < _RETURN_SHARE)
    delay = rng.integers(2, 31, returned.size)
    ret = {
        "order": line_order[returned],
        "order_id_prefix": np.ones(returned.size, dtype=bool),
        "product": product[returned],
        "quantity": -quantity[returned],
        "unit_price": unit_price[returned],
        "amount": -amount[returned],
        "margin": -margin[returned],
        "day": np.minimum(line["day"][returned] + delay, window.n_days - 1),
        "second": line["second"][returned],
    }
    combined = {k: np.concatenate([line[k], ret[k]]) for k in line}
    # Exact duplicate lines, as left by a double export.
    duplicated = np.flatnonzero(rng.random(combined["order"].size) < _DUPLICATE_SHARE)
    combined = {k: np.concatenate([v, v[duplicated]]) for k, v in combined.items()}
    position = np.arange(combined["order"].size)
    sequence = np.concatenate([position[: position.size - duplicated.size], duplicated])
    ordering = np.lexsort((sequence, combined["order_id_prefix"], combined["order"], combined["second"],
                           combined["day"]))
    combined = {k: v[ordering] for k, v in combined.items()}

    # Return ids ("R" + order id) are appended after the order ids; lines index into both.
    returned_orders = np.unique(combined["order"][combined["order_id_prefix"]])
    order_labels = pd.concat([order_id, "R" + order_id.iloc[returned_orders]], ignore_index=True).array
    label_index = np.where(combined["order_id_prefix"],
                           n_total + np.searchsorted(returned_orders, combined["order"]), combined["order"])
    product = combined["product"]
    return pd.DataFrame({
        "customer_id": customer_id.array.take(order_customer[combined["order"]]),
        "order_id": order_labels.take(label_index),
        "timestamp": window.timestamps(combined["day"], combined["second"]),
        "product_id": catalogue["product_id"].array.take(product),
        "product_name": catalogue["product_name"].array.take(product),
        "category": catalogue["category"].array.take(product),
        "brand": catalogue["brand"].array.take(product),
        "channel": _labels(CHANNELS).take(channel[combined["order"]]),
        "quantity": combined["quantity"].astype(np.int64),
        "unit_price": combined["unit_price"],
        "amount": combined["amount"],
        "margin": combined["margin"],
    })


def _draw_events(
    customer_id: pd.Series,
    behaviour: dict[str, np.ndarray],
    catalogue: pd.DataFrame,
    window: _Window,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = customer_id.size
    specs = list(BEHAVIORAL_SEGMENTS.values())
    per_month = np.array([[s["events_per_month"][e] for e in EVENT_TYPES] for s in specs])
    # Browsing starts two weeks before the first purchase and stops at churn.
    open_day = np.maximum(behaviour["birth"] - 14.0, 0.0)
    active_months = (behaviour["death"] - open_day) / _DAYS_PER_MONTH
    counts = rng.poisson(per_month[behaviour["segment_code"]] * active_months[:, None])
    event_customer = np.repeat(np.repeat(np.arange(n), len(EVENT_TYPES)), counts.ravel())
    event_type = np.repeat(np.tile(np.arange(len(EVENT_TYPES)), n), counts.ravel())
    time = open_day[event_customer] + rng.random(event_customer.size) * (
        behaviour["death"] - open_day)[event_customer]
    day = np.minimum(np.floor(time), window.n_days - 1).astype(np.int64)
    second = _draw_seconds(rng, np.zeros(event_customer.size, dtype=bool))

    is_email = event_type >= EVENT_TYPES.index("email_open")
    has_product = (event_type == EVENT_TYPES.index("product_view")) | (
        event_type == EVENT_TYPES.index("add_to_cart"))
    product = _draw_products(rng, event_customer, behaviour, catalogue)
    channel_p = behaviour["channel_p"][event_customer]
    app_share = channel_p[:, CHANNELS.index("app")] / (
        channel_p[:, CHANNELS.index("app")] + channel_p[:, CHANNELS.index("web")])
    event_channels = ("web", "app", "email")
    channel = np.where(is_email, 2, (rng.random(event_customer.size) < app_share).astype(np.int64))

    ordering = np.lexsort((event_type, event_customer, second, day))
    product_index = np.where(has_product, product, -1)[ordering]
    return pd.DataFrame({
        "customer_id": customer_id.array.take(event_customer[ordering]),
        "timestamp": window.timestamps(day[ordering], second[ordering]),
        "event_type": _labels(EVENT_TYPES).take(event_type[ordering]),
        "product_id": catalogue["product_id"].array.take(product_index, allow_fill=True),
        "channel": _labels(event_channels).take(channel[ordering]),
    })


def _draw_survey(
    customer_id: pd.Series,
    signup_day: np.ndarray,
    window: _Window,
    response_rate: float,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Survey answers of respondents plus the psychographic truth (None for non-respondents)."""
    n = customer_id.size
    specs = list(PSYCHOGRAPHIC_SEGMENTS.values())
    segment = rng.choice(len(specs), size=n, p=_shares(PSYCHOGRAPHIC_SEGMENTS))
    respondent = np.zeros(n, dtype=bool)
    respondent[rng.permutation(n)[: round(response_rate * n)]] = True
    truth = np.where(respondent, np.array(list(PSYCHOGRAPHIC_SEGMENTS), dtype=object)[segment], None)

    # Respondents whose id is not in the customer table (test accounts, deleted customers).
    n_resp = int(respondent.sum())
    n_unknown = round(_SURVEY_UNKNOWN_ID_SHARE * n_resp)
    resp_segment = np.concatenate([segment[respondent], rng.choice(len(specs), size=n_unknown)])
    width = max(6, len(str(n)))
    resp_id = pd.concat([customer_id[respondent],
                         _ids("C9", rng.choice(10**width, size=n_unknown, replace=False), width=width)],
                        ignore_index=True)
    m = resp_segment.size

    means = np.array([[s["factor_means"][f] for f in PSYCHOGRAPHIC_FACTORS] for s in specs])
    factor_scores = means[resp_segment] + rng.normal(0.0, _SURVEY_FACTOR_SD, (m, len(PSYCHOGRAPHIC_FACTORS)))
    item_factor = np.array([PSYCHOGRAPHIC_FACTORS.index(f) for f, _ in SURVEY_ITEMS.values()])
    reverse = np.array([r for _, r in SURVEY_ITEMS.values()])
    latent = factor_scores[:, item_factor] * _SURVEY_LOADINGS
    raw = np.clip(np.round(3.0 + latent + rng.normal(0.0, _SURVEY_ITEM_NOISE_SD, latent.shape)), 1, 5)
    answers = np.where(reverse, 6.0 - raw, raw)

    # Partial responses: some respondents break off, everyone skips the odd item.
    n_items = len(SURVEY_ITEMS)
    breaks_off = rng.random(m) < _SURVEY_PARTIAL_SHARE
    last_answered = np.where(breaks_off, rng.integers(8, n_items, m), n_items)
    missing = (np.arange(n_items)[None, :] >= last_answered[:, None]) | (
        rng.random((m, n_items)) < _SURVEY_ITEM_NONRESPONSE)
    answers[missing] = np.nan

    resp_signup = np.concatenate([signup_day[respondent], np.full(n_unknown, 0.0)])
    field_open = np.maximum(resp_signup, window.n_days - _SURVEY_FIELD_DAYS)
    day = np.floor(field_open + rng.random(m) * (window.n_days - field_open)).astype(np.int64)
    day = np.minimum(day, window.n_days - 1)

    ordering = np.lexsort((resp_id.to_numpy(), day))
    survey = pd.DataFrame({
        "customer_id": resp_id.to_numpy()[ordering],
        "response_date": window.timestamps(day[ordering], np.zeros(m, dtype=np.int64)),
    })
    for j, item in enumerate(SURVEY_ITEMS):
        survey[item] = pd.array(answers[ordering, j], dtype="Int64")
    return survey.reset_index(drop=True), truth


def _value_tiers(expected_value: np.ndarray) -> np.ndarray:
    """Rank customers by true expected 12-month value into :data:`VALUE_TIERS`."""
    n = expected_value.size
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-expected_value, kind="stable")] = np.arange(n)
    top1 = int(np.ceil(0.01 * n))
    top20 = int(np.ceil(0.20 * n))
    return np.where(rank < top1, VALUE_TIERS[0], np.where(rank < top20, VALUE_TIERS[1], VALUE_TIERS[2]))


def _for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` with ISO timestamps/dates and rounded floats for stable CSV bytes."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            date_only = column.endswith("_date")
            out[column] = values.dt.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_float_dtype(values):
            out[column] = values.round(5 if column in ("latitude", "longitude") else 2)
    return out
