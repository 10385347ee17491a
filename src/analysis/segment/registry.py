"""The bases a run segments by: one entry each, enumerated by the runner, personas and exports.

Adding a basis = one module under ``analysis/segment/`` with a ``segment_<name>()`` returning a
:class:`~analysis.segment.base.SegmentationResult`, one notebook, and one line in :data:`BASES`.
This module imports no basis module (the runner reads it without loading any model code);
:meth:`Basis.function` imports the module on demand.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Basis:
    """One segmentation basis.

    Attributes
    ----------
    name : str
        Registry key; labels are saved under it and the segment column is ``<name>_segment``.
    notebook : str
        The notebook (stem) whose page shows it; its parameters live under ``params.<notebook>``.
    title : str
        Heading on pages and the index.
    kind : {"clustering", "rules", "mixed"}
        Found in the data (clustering, judged against noise), defined by rules (RFM cells, value
        tiers, areas), or either depending on the data (geographic: clusters of coordinates or areas).
    extra_segment_columns : tuple of str
        Other segmentations the basis labels customers with (e.g. ``rfm_segment``).
    column : str, optional
        The main segment column when it is not ``<name>_segment`` (value: ``value_tier``).
    """

    name: str
    notebook: str
    title: str
    kind: str
    extra_segment_columns: tuple[str, ...] = ()
    column: str | None = None

    @property
    def segment_column(self) -> str:
        return self.column or f"{self.name}_segment"

    @property
    def segment_columns(self) -> tuple[str, ...]:
        return (self.segment_column, *self.extra_segment_columns)

    @property
    def function(self) -> Callable[..., Any]:
        """``analysis.segment.<name>.segment_<name>``."""
        module = importlib.import_module(f"analysis.segment.{self.name}")
        return getattr(module, f"segment_{self.name}")


#: Every basis, in page order.
BASES: dict[str, Basis] = {
    b.name: b
    for b in (
        Basis("demographic", "10_demographic", "Demographic segments", "clustering"),
        Basis("geographic", "11_geographic", "Geographic segments", "mixed"),
        Basis("psychographic", "12_psychographic", "Psychographic segments", "clustering"),
        Basis("behavioral", "13_behavioral", "Behavioral segments and RFM", "clustering", ("rfm_segment",)),
        Basis("value", "14_value", "Customer value (CLV) and profitability", "rules", column="value_tier"),
    )
}


def get(name: str) -> Basis:
    """The basis called ``name``; a ``KeyError`` naming the known ones otherwise."""
    try:
        return BASES[name]
    except KeyError:
        raise KeyError(f"unknown segmentation basis {name!r}; known: {list(BASES)}") from None


def segment_columns() -> list[str]:
    """Every segmentation column a run can have, in basis order."""
    return [c for b in BASES.values() for c in b.segment_columns]


def basis_of_column(column: str) -> Basis | None:
    """The basis that writes the segmentation column ``column`` (e.g. ``rfm_segment`` -> behavioral)."""
    return next((b for b in BASES.values() if column in b.segment_columns), None)
