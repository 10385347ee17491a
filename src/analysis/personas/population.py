"""One row per customer: every attribute a persona can be described by, and every segmentation.

Personas work with whichever bases a run has. :func:`build_population` joins what is there:
customer attributes (PII removed) and readable derived ones (age band, household, ...),
behavioral features, and each basis's labels (segment names, scores, CLV). The segmentation
columns of the registry (:func:`analysis.segment.registry.segment_columns`), and any other label
column named ``*_segment``, become *segmentations*: each of their segments gets a persona.

Given the run's saved model payloads, each segmentation also knows its **verdict** (does the data
support the split?) and its **definition** (the attributes it was formed from, which personas
describe but never test: :mod:`analysis.personas.bases`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from .. import features as _features
from ..segment import registry
from ..segment.base import Verdict, rules_verdict
from ..segment.value import DEFAULT_TIERS, value_tiers
from .bases import expand_inputs, segmentation_inputs, segmentation_verdicts
from .vocabulary import AttributeInfo, Vocabulary

#: Columns never profiled even when the run config does not list them as PII.
ALWAYS_PRIVATE = ("customer_id", "name", "email", "phone", "customer_name", "address", "street")

#: Default value tiers by share of customers (best first), used when a run has no value labels.
SPEND_TIERS = DEFAULT_TIERS

#: Value measures and the column each is read from, in order of preference for "value".
VALUE_COLUMNS = {"revenue": "total_spend", "profit": "total_margin", "clv": "clv"}


@dataclass(frozen=True)
class Segmentation:
    """One way of splitting customers into segments.

    Attributes
    ----------
    column : str
        Label column in :attr:`Population.frame` (e.g. ``rfm_segment``).
    basis : str
        The basis (label file) it comes from (``behavioral``, ``value``, ``demographic``, ...).
    label : str
        Heading shown above its personas.
    note : str
        Caveat shown with it (e.g. tiers from historic spend, not predicted value).
    verdict : Verdict, optional
        Whether the data support the split (from the basis's saved model); None when unknown.
    defined_by : tuple of str
        Attributes the segments were formed from (and those that restate them): described as the
        segments' definition, never tested as distinguishing traits. Empty when unknown.
    """

    column: str
    basis: str
    label: str
    note: str = ""
    verdict: Verdict | None = None
    defined_by: tuple[str, ...] = ()


@dataclass
class Population:
    """Per-customer attributes and segmentations, ready to profile.

    Attributes
    ----------
    frame : DataFrame
        Indexed by ``customer_id``; attribute and segmentation columns. No PII.
    attributes : dict
        Column -> :class:`AttributeInfo` for every profiled column.
    segmentations : dict
        Column -> :class:`Segmentation`.
    value_columns : dict
        Value measure (``revenue``, ``profit``, ``clv``) -> column, for the measures present.
    vocabulary : Vocabulary
    """

    frame: pd.DataFrame
    attributes: dict[str, AttributeInfo]
    segmentations: dict[str, Segmentation]
    value_columns: dict[str, str]
    vocabulary: Vocabulary
    notes: list[str] = field(default_factory=list)

    @property
    def value_column(self) -> str | None:
        """The column that measures customer worth: predicted value (CLV) if present, else revenue."""
        for measure in ("clv", "revenue"):
            if measure in self.value_columns:
                return self.value_columns[measure]
        return None

    @property
    def value_label(self) -> str:
        col = self.value_column
        return {"clv": "predicted value (CLV)", "total_spend": "revenue"}.get(col or "", "value")


def _segmentation_label(column: str, basis: str) -> str:
    if column == "rfm_segment":
        return "RFM segments"
    if column == "value_tier":
        return "Value tiers"
    stem = column.removesuffix("_segment")
    return f"{stem.replace('_', ' ').capitalize()} segments"


def _kind(series: pd.Series) -> str | None:
    if pd.api.types.is_bool_dtype(series):
        return "category"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return None
    return "category"


def spend_tiers(values: pd.Series, tiers: dict[str, float] | None = None) -> pd.Series:
    """Tier customers by rank of a value (best first): ``Top 1%``, ``Top 20%``, ``Rest``.

    Ties are broken by order, so tier sizes are exact; missing values are left unlabelled
    (:func:`analysis.segment.value.value_tiers` with ``skipna=True``).

    Examples
    --------
    >>> spend_tiers(pd.Series(range(100), dtype=float)).value_counts().to_dict()
    {'Rest': 80, 'Top 20%': 19, 'Top 1%': 1}
    """
    return value_tiers(values, tiers or SPEND_TIERS, skipna=True)


def _indexed(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if "customer_id" in frame.columns:
        frame = frame.set_index("customer_id")
    elif frame.index.name != "customer_id":
        raise ValueError(f"{what}: expected a 'customer_id' column or index; found columns {list(frame.columns)[:12]}.")
    frame = frame.copy()
    frame.index = frame.index.astype(str)
    frame.index.name = "customer_id"
    return frame[~frame.index.duplicated(keep="first")]


def build_population(
    customers: pd.DataFrame | None = None,
    *,
    features: pd.DataFrame | None = None,
    labels: dict[str, pd.DataFrame] | None = None,
    models: dict[str, Any] | None = None,
    transactions: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    as_of: Any = None,
    pii_columns: list[str] | tuple[str, ...] = (),
    income_edges: list[float] | None = None,
    max_levels: int = 50,
    vocabulary: Vocabulary | None = None,
) -> Population:
    """Join customers, features and labels into one profiled population.

    Parameters
    ----------
    customers : DataFrame, optional
        Validated customers (``customer_id`` column). PII columns are dropped.
    features : DataFrame, optional
        Behavioral features (:func:`analysis.features.customer_features`), with a
        ``customer_id`` column or index. Computed from ``transactions`` when not given.
    labels : dict, optional
        Basis -> per-customer label frame (``customer_id`` + label columns), as returned by
        ``run.folder.read_labels()``. Any subset of bases may be present.
    models : dict, optional
        Basis -> saved model payload (``run.folder.read_models()``): the verdict and the inputs
        of each segmentation (:mod:`analysis.personas.bases`). Without it, verdicts and
        definitions are unknown and every attribute is tested.
    transactions, events : DataFrame, optional
        Used only to compute features when ``features`` is None (needs ``as_of``).
    as_of : date-like, optional
    pii_columns : list of str
        The run config's PII columns; never profiled (plus :data:`ALWAYS_PRIVATE`).
    income_edges : list of float, optional
        Two inner edges for ``income_band`` (default: terciles of the data).
    max_levels : int
        Category attributes with more distinct values (ids, free text) are not profiled.
    vocabulary : Vocabulary, optional
        Words for attributes; default the package vocabulary.

    Returns
    -------
    Population
        Customers are those in ``customers``, else in ``features``, else in the labels.
        When no basis provides a value tier, ``value_tier`` is derived from historic spend
        (:func:`spend_tiers`) so value can still be discussed.
    """
    vocab = vocabulary or Vocabulary.load()
    labels = labels or {}
    private = set(ALWAYS_PRIVATE) | set(pii_columns or ())
    parts: list[tuple[str, pd.DataFrame]] = []
    notes: list[str] = []
    if customers is not None and len(customers):
        cust = _indexed(customers, "customers")
        derived = _features.derived_attributes(cust, income_edges=income_edges)
        parts.append(("customers", cust))
        parts.append(("derived", derived))
    if features is None and transactions is not None and len(transactions) and as_of is not None:
        features = _features.customer_features(transactions, as_of, events=events)
    if features is not None and len(features):
        parts.append(("features", _indexed(features, "features")))
    for basis, frame in sorted(labels.items()):
        parts.append((basis, _indexed(frame, f"the {basis} labels")))
    if not parts:
        raise ValueError("personas need at least one of: customers, features (or transactions), labels.")

    index = parts[0][1].index
    if parts[0][0] != "customers":
        for _, frame in parts[1:]:
            index = index.union(frame.index)
    columns: dict[str, pd.Series] = {}
    source: dict[str, str] = {}
    for name, frame in parts:
        for col in frame.columns:
            if col in private or col in columns:
                continue
            columns[col] = frame[col].reindex(index)
            source[col] = name
    frame = pd.DataFrame(columns, index=index)
    frame.index.name = "customer_id"

    known_columns = registry.segment_columns()
    tiers = registry.get("value").segment_column
    segmentations: dict[str, Segmentation] = {}
    for col, src in source.items():
        if src in ("customers", "derived", "features"):
            continue
        if (col in known_columns or col.endswith("_segment")) and _kind(frame[col]) == "category":
            segmentations[col] = Segmentation(col, src, _segmentation_label(col, src))
    inputs = segmentation_inputs(models, labels)
    verdicts = segmentation_verdicts(models)
    if tiers not in frame.columns and "total_spend" in frame.columns:
        frame[tiers] = spend_tiers(frame["total_spend"])
        source[tiers] = "spend"
        note = "Tiers by historic spend; predicted value (CLV) tiers appear once the value page has run."
        segmentations[tiers] = Segmentation(tiers, "spend", "Value tiers (historic spend)", note)
        inputs[tiers] = ["total_spend"]
        verdicts[tiers] = rules_verdict("shares of customers ranked by historic spend")
        notes.append(note)

    attributes: dict[str, AttributeInfo] = {}
    for col in frame.columns:
        kind = _kind(frame[col])
        if kind is None or frame[col].notna().sum() == 0:
            continue
        if kind == "category":
            known = frame[col].notna()
            values = pd.Series(None, index=frame.index, dtype=object)
            values[known] = frame.loc[known, col].astype(str).to_numpy()
            frame[col] = values
            if frame[col].nunique() > max_levels and col not in segmentations:
                continue
        attributes[col] = vocab.describe(col, kind, source.get(col, ""))
    for band, raw in vocab.derived.items():
        if band in attributes and raw in attributes:
            info = attributes[raw]
            attributes[raw] = AttributeInfo(**{**info.__dict__, "trait": False})

    for col, spec in segmentations.items():
        defined_by = [a for a in expand_inputs(inputs.get(col, ()), attributes, vocab.derived) if a != col]
        segmentations[col] = replace(spec, verdict=verdicts.get(col), defined_by=tuple(defined_by))
    ordered = [c for c in known_columns if c in segmentations] + sorted(c for c in segmentations if c not in known_columns)
    value_columns = {m: c for m, c in VALUE_COLUMNS.items() if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])}
    return Population(
        # value columns stay even when they are not traits (e.g. constant), for shares of value
        frame=frame[[c for c in frame.columns if c in attributes or c in segmentations or c in value_columns.values()]],
        attributes=attributes,
        segmentations={c: segmentations[c] for c in ordered},
        value_columns=value_columns,
        vocabulary=vocab,
        notes=notes,
    )


def add_segmentation(population: Population, labels: pd.Series, *, column: str, label: str, basis: str = "combined", note: str = "",
                     defined_by: tuple[str, ...] | list[str] = ()) -> Population:
    """A copy of ``population`` with one more segmentation (e.g. a named target group).

    ``labels`` is indexed by customer id; customers without a label are outside every segment.
    ``defined_by`` names the attributes that define its segments (described, not tested).
    """
    frame = population.frame.copy()
    values = labels.reindex(frame.index)
    frame[column] = values.astype(object).where(values.notna())
    attributes = dict(population.attributes)
    attributes[column] = population.vocabulary.describe(column, "category", basis)
    segmentations = dict(population.segmentations)
    segmentations[column] = Segmentation(column, basis, label, note, defined_by=tuple(defined_by))
    return Population(frame, attributes, segmentations, dict(population.value_columns), population.vocabulary, list(population.notes))
