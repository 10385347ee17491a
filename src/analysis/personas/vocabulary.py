"""The words personas use for attributes: labels, trait phrases, families (package data, editable).

The vocabulary lives in ``analysis/data/persona_vocabulary.yaml`` so it can be edited or
translated without touching code; :class:`Vocabulary` resolves a column name to its entry
(exact key first, then the first matching glob pattern) with placeholders filled in.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import io


@dataclass(frozen=True)
class AttributeInfo:
    """How one profiled attribute is described.

    Attributes
    ----------
    name : str
        Column name.
    kind : {"numeric", "category"}
    label : str
        Words for the attribute in sentences ("number of orders").
    family : str
        Attributes describing the same thing share a family; a persona lists one trait per family.
    trait : bool
        False: profiled but never a distinguishing trait (coordinates, scores, shares).
    high, low : str or None
        Name phrases for numeric attributes above / below the average.
    sentence, name : str or None
        Sentence and name templates for category attributes (``{level}`` placeholders).
    levels : dict
        Per-level overrides of ``sentence`` / ``name``.
    unit : str or None
    format : {"number", "pct"}
        How numeric values are shown (``pct``: a 0..1 share as a percentage).
    source : str
        Where the column comes from (``customers``, ``derived``, ``features``, or a label basis).
    """

    name: str
    kind: str
    label: str
    family: str
    trait: bool = True
    high: str | None = None
    low: str | None = None
    sentence: str | None = None
    name_template: str | None = None
    levels: dict[str, dict[str, str]] = field(default_factory=dict)
    unit: str | None = None
    format: str = "number"
    source: str = ""


def _words(text: str) -> str:
    return text.replace("_", " ").strip()


class Vocabulary:
    """Resolve columns to :class:`AttributeInfo` from a vocabulary mapping.

    Parameters
    ----------
    spec : dict
        The parsed YAML (see ``analysis/data/persona_vocabulary.yaml``).

    Examples
    --------
    >>> vocab = Vocabulary.load()
    >>> vocab.describe("frequency", "numeric").high
    'frequent'
    >>> vocab.describe("factor_eco_values", "numeric").label
    'eco/ethical values score'
    """

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        entries = spec.get("attributes") or {}
        self._exact = {k: v for k, v in entries.items() if not any(ch in k for ch in "*?[")}
        self._patterns = [(k, v) for k, v in entries.items() if any(ch in k for ch in "*?[")]
        self.derived: dict[str, str] = dict(spec.get("derived") or {})
        self.typical: list[str] = list(spec.get("typical") or [])
        words = spec.get("share_words") or {}
        self._tolerance = float(words.get("tolerance", 0.025))
        self._exact_words = [(float(v), str(w)) for v, w in words.get("exact", [])]
        self._range_words = sorted(((float(v), str(w)) for v, w in words.get("ranges", [])), reverse=True)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Vocabulary:
        """The package vocabulary, or a user's copy given by ``path``."""
        return cls(io.read_yaml(path or None, "persona_vocabulary.yaml"))

    def entry(self, column: str) -> dict[str, Any]:
        """The raw entry for a column (exact key, else first matching pattern, else empty)."""
        if column in self._exact:
            return dict(self._exact[column] or {})
        for pattern, value in self._patterns:
            if fnmatch.fnmatchcase(column, pattern):
                return dict(value or {})
        return {}

    def describe(self, column: str, kind: str, source: str = "") -> AttributeInfo:
        """The :class:`AttributeInfo` of a column of the given kind."""
        raw = self.entry(column)
        stem = _words(column.rsplit("_", 1)[0]) if "_" in column else _words(column)
        suffix = _words(column.split("_", 1)[1]) if "_" in column else _words(column)

        def fill(text: Any) -> str | None:
            if text is None:
                return None
            return str(text).replace("{stem}", stem).replace("{suffix}", suffix)

        levels = {str(k): {kk: fill(vv) for kk, vv in (v or {}).items()} for k, v in (raw.get("levels") or {}).items()}
        return AttributeInfo(
            name=column,
            kind=kind,
            label=fill(raw.get("label")) or _words(column),
            family=str(raw.get("family") or column),
            trait=bool(raw.get("trait", True)),
            high=fill(raw.get("high")) or f"high {fill(raw.get('label')) or _words(column)}",
            low=fill(raw.get("low")) or f"low {fill(raw.get('label')) or _words(column)}",
            sentence=fill(raw.get("sentence")) or f"have {fill(raw.get('label')) or _words(column)} {{level_quoted}}",
            name_template=fill(raw.get("name")) or "{level}",
            levels=levels,
            unit=fill(raw.get("unit")),
            format=str(raw.get("format") or "number"),
            source=source,
        )

    def share_word(self, share: float) -> str:
        """Words for a share: "Two thirds" for 0.66, "Most" for 0.85, "A few" for 0.05."""
        for value, word in self._exact_words:
            if abs(share - value) <= self._tolerance and (value < 1.0 or share >= 0.9995):
                return word
        for lower, word in self._range_words:
            if share >= lower:
                return word
        return "Some"


def level_phrase(template: str, level: str) -> str:
    """Fill ``{level}``, ``{level_lower}`` and ``{level_quoted}`` in a phrase template."""
    return (
        template.replace("{level_quoted}", f"\u201c{level}\u201d")
        .replace("{level_lower}", level.lower())
        .replace("{level}", level)
    )
