"""The words personas use for attributes: labels, trait phrases, families (package data, editable).

The vocabulary lives in ``analysis/data/persona_vocabulary.yaml`` so it can be edited or
translated without touching code; :class:`Vocabulary` resolves a column name to its entry
(exact key first, then the first matching glob pattern) with placeholders filled in.

Patterns match on whole words (:func:`word_match`): ``factor_*eco*`` describes a factor named
after an "eco values" scale, never one whose name merely contains the letters ("economy").
"""

from __future__ import annotations

import functools
import re
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


@functools.lru_cache(maxsize=512)
def _word_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a glob pattern whose literal words next to a wildcard must be whole words."""
    pieces = re.split(r"(\*|\?|\[[^\]]*\])", pattern)
    out = []
    for i, piece in enumerate(pieces):
        if piece == "*":
            out.append(".*")
        elif piece == "?":
            out.append(".")
        elif piece.startswith("[") and piece.endswith("]") and len(piece) > 2:
            out.append("[^" + re.escape(piece[2:-1]) + "]" if piece[1] == "!" else "[" + re.escape(piece[1:-1]) + "]")
        elif piece:  # a word next to a "*" must start / end at a word boundary of the name
            head = r"(?<![A-Za-z0-9])" if i > 0 and pieces[i - 1] == "*" and piece[0].isalnum() else ""
            tail = r"(?![A-Za-z0-9])" if i < len(pieces) - 1 and pieces[i + 1] == "*" and piece[-1].isalnum() else ""
            out.append(head + re.escape(piece) + tail)
    return re.compile("^" + "".join(out) + "$")


def word_match(name: str, pattern: str) -> bool:
    """Whether ``name`` matches the glob ``pattern`` on whole words.

    ``*`` matches any text and ``?`` one character, as in a shell glob, but a word of the pattern
    that touches a ``*`` must be a whole word of the name (words are separated by anything
    that is not a letter or a digit, e.g. ``_``). So a pattern never matches inside a word.

    Examples
    --------
    >>> word_match("factor_eco_values", "factor_*eco*"), word_match("factor_foreign_languages_economy_management", "factor_*eco*")
    (True, False)
    >>> word_match("behavioral_segment", "*_segment"), word_match("share_home", "share_*")
    (True, True)
    """
    return bool(_word_pattern(pattern).match(name))


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
    >>> vocab.describe("factor_foreign_languages_economy_management", "numeric").label
    'foreign languages economy management score'
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
        """The raw entry for a column (exact key, else the first pattern it matches on whole words
        (:func:`word_match`), else empty)."""
        if column in self._exact:
            return dict(self._exact[column] or {})
        for pattern, value in self._patterns:
            if word_match(column, pattern):
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
