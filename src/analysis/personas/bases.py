"""What personas know about each basis of a run: its verdict and the attributes that formed it.

Personas enumerate the registry (:mod:`analysis.segment.registry`) rather than naming bases, and
read each basis's saved model payload (``models.<basis>`` in the run manifest, as written by
``run.save_result``):

* **Verdict** (:func:`segmentation_verdicts`): the basis's main segment column gets the verdict
  its page computed (``clear``, ``weak``, ``none``, or ``rules`` for partitions defined by
  rules); the extra segmentations a basis labels customers with (RFM segments beside behavioral
  clusters) are defined by rules.
* **Definition** (:func:`segmentation_inputs`): the variables a segmentation was formed from. For
  a basis's main column, the input columns its payload names (``features``, ``numeric``,
  ``categorical``, ``levels``); when the payload names none, the numeric columns saved with its
  labels (factor scores of psychographic clusters, CLV of value tiers). For the extra columns,
  the numeric columns saved with the labels that are not cluster inputs (RFM scores).
  :func:`expand_inputs` then adds the attributes that measure the same thing (same vocabulary
  family, or a derived band of an input: ``age_band`` of ``age``).

A segmentation without a saved payload (labels from elsewhere, e.g. a planted truth) has no known
definition and no verdict: every attribute is then tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..segment import registry
from ..segment.base import Verdict, rules_verdict
from .vocabulary import AttributeInfo

if TYPE_CHECKING:  # pragma: no cover
    from .population import Population

#: Keys of a model payload that list the input columns a segmentation was fitted on.
INPUT_KEYS = ("features", "numeric", "categorical", "levels")

#: Verdict levels the persona page states as a caveat.
CAVEAT_LEVELS = ("weak", "none")


def segmentation_verdicts(models: Mapping[str, Any] | None) -> dict[str, Verdict]:
    """Verdict per segmentation column, from the run's saved model payloads.

    Parameters
    ----------
    models : mapping
        ``{basis: payload}`` as saved by ``run.save_result`` (``run.folder.read_models()``).

    Returns
    -------
    dict
        Segmentation column -> :class:`~analysis.segment.base.Verdict` for every basis with an
        available payload that carries a verdict; its extra columns get a ``rules`` verdict.

    Examples
    --------
    >>> v = segmentation_verdicts({"behavioral": {"available": True, "verdict": "none",
    ...     "verdict_evidence": {"reason": "No structure beyond chance."}}})
    >>> v["behavioral_segment"].level, v["rfm_segment"].level
    ('none', 'rules')
    """
    out: dict[str, Verdict] = {}
    for basis in registry.BASES.values():
        payload = (models or {}).get(basis.name)
        if not isinstance(payload, dict) or not payload.get("available", True) or not payload.get("verdict"):
            continue
        evidence = payload.get("verdict_evidence") or {}
        out[basis.segment_column] = Verdict(str(payload["verdict"]), str(evidence.get("reason", "")))
        for column in basis.extra_segment_columns:
            out[column] = rules_verdict(f"{column.replace('_', ' ')} rules")
    return out


def _numeric_columns(frame: pd.DataFrame | None, skip: Iterable[str]) -> list[str]:
    if frame is None:
        return []
    skip = set(skip) | {"customer_id"}
    # a cluster number (``behavioral_cluster``) restates the basis's own segment column
    return [c for c in frame.columns if c not in skip and not c.endswith("_cluster")
            and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def segmentation_inputs(models: Mapping[str, Any] | None, labels: Mapping[str, pd.DataFrame] | None = None) -> dict[str, list[str]]:
    """The input columns each segmentation was formed from (see the module docstring).

    Parameters
    ----------
    models : mapping
        ``{basis: payload}`` (``run.folder.read_models()``).
    labels : mapping, optional
        ``{basis: label frame}`` (``run.folder.read_labels()``): numeric columns saved with the
        labels define segmentations whose payload names no inputs.

    Returns
    -------
    dict
        Segmentation column -> input columns, for bases with an available payload.

    Examples
    --------
    >>> segmentation_inputs({"behavioral": {"available": True, "features": ["recency_days", "frequency"]}},
    ...     {"behavioral": pd.DataFrame({"customer_id": ["a"], "r_score": [5], "behavioral_segment": ["x"]})})
    {'behavioral_segment': ['recency_days', 'frequency'], 'rfm_segment': ['r_score']}
    """
    out: dict[str, list[str]] = {}
    for basis in registry.BASES.values():
        payload = (models or {}).get(basis.name)
        if not isinstance(payload, dict) or not payload.get("available", True):
            continue
        named = [str(c) for key in INPUT_KEYS for c in (payload.get(key) or []) if isinstance(c, str)]
        saved = [c for c in _numeric_columns((labels or {}).get(basis.name), basis.segment_columns) if c not in named]
        out[basis.segment_column] = list(dict.fromkeys(named or saved))
        for column in basis.extra_segment_columns:
            out[column] = saved
    return {column: inputs for column, inputs in out.items() if inputs}


def expand_inputs(inputs: Iterable[str], attributes: Mapping[str, AttributeInfo], derived: Mapping[str, str]) -> list[str]:
    """The profiled attributes that restate a segmentation's inputs.

    An attribute restates an input when it is the input, is derived from it (``derived``:
    band -> raw column, e.g. ``age_band`` -> ``age``), or shares its vocabulary family (two
    measures of one thing: recency and P(alive), the RFM recency score and the days since the
    last order).

    Examples
    --------
    >>> from analysis.personas.vocabulary import Vocabulary
    >>> vocab = Vocabulary.load()
    >>> attrs = {c: vocab.describe(c, "numeric") for c in ("r_score", "recency_days", "frequency", "age")}
    >>> expand_inputs(["r_score"], attrs, vocab.derived)
    ['r_score', 'recency_days']
    """
    inputs = set(inputs)
    families = {attributes[c].family for c in inputs if c in attributes}
    return [name for name, info in attributes.items()
            if name in inputs or derived.get(name) in inputs or info.family in families]


def caveat(verdict: Verdict | None) -> str:
    """The sentence a persona of a segmentation with this verdict carries (empty when clear or rules)."""
    return verdict.caveat if verdict is not None and verdict.level in CAVEAT_LEVELS else ""


def verdict_lines(population: Population) -> list[str]:
    """Sentences for the persona summary: every segmentation's verdict, and plain words for weak and none.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> pop = NS(segmentations={"behavioral_segment": NS(label="Behavioral segments",
    ...     verdict=Verdict("none", "No structure beyond chance."))})
    >>> verdict_lines(pop)[0]
    'Verdicts: Behavioral segments none.'
    """
    judged = {spec.label: spec.verdict for spec in population.segmentations.values() if spec.verdict is not None}
    if not judged:
        return []
    lines = ["Verdicts: " + "; ".join(f"{label} {verdict.level}" for label, verdict in judged.items()) + "."]
    for label, verdict in judged.items():
        if verdict.level == "weak":
            lines.append(f"{label}: weak structure, so their personas are tentative. {verdict.reason}")
        elif verdict.level == "none":
            lines.append(f"{label}: not supported by the data, so their personas carry no profile and no actions. "
                         f"{verdict.reason}")
    return lines


def with_verdicts(summary: dict[str, Any], population: Population) -> dict[str, Any]:
    """The persona summary (``title``, ``lines``) with :func:`verdict_lines` and ``verdicts`` added.

    ``verdicts`` maps each segmentation column to its verdict level, for the run's index page.
    """
    verdicts = {col: spec.verdict.level for col, spec in population.segmentations.items() if spec.verdict is not None}
    return {**summary, "lines": [*summary.get("lines", []), *verdict_lines(population)], "verdicts": verdicts}


def lead_segmentation(population: Population, preferred: str = "") -> str | None:
    """The segmentation the persona summary and budget split lead with.

    ``preferred`` when the run has it; else the first (in registry order) whose split the data
    support (verdict ``clear`` or ``rules``, or unknown), so a weak or unsupported split never
    leads; else the first.
    """
    columns = list(population.segmentations)
    if preferred and preferred in columns:
        return preferred
    supported = [c for c in columns if population.segmentations[c].verdict is None
                 or population.segmentations[c].verdict.level not in CAVEAT_LEVELS]
    return (supported or columns or [None])[0]
