"""The small things that erode trust (issue 14, item 5), each pinned by a test.

Age bands that hold exactly the ages they name; percentages and signs as a reader writes them;
no machine path on a page; no empty table, duplicated card or empty legend on a run that lacks
a basis or purchases.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis import features


def _bounds(label: str) -> tuple[float, float]:
    """The ages a band's label promises: "18-30" -> (18, 30), "66+" -> (66, inf), "under 18" -> (0, 17)."""
    if m := re.fullmatch(r"(\d+)-(\d+)", label):
        return float(m[1]), float(m[2])
    if m := re.fullmatch(r"(\d+)\+", label):
        return float(m[1]), np.inf
    if m := re.fullmatch(r"under (\d+)", label):
        return 0.0, float(m[1]) - 1
    raise AssertionError(f"age band label {label!r} does not say which ages it holds")


def test_age_bands_hold_exactly_the_ages_their_labels_say():
    ages = pd.Series(np.r_[np.arange(0, 121, 0.25), [15, 16, 17, 17.9, 18, 30, 30.9, 31]])
    bands = features.derived_attributes(pd.DataFrame({"age": ages}))["age_band"]
    assert bands.notna().all(), "every age the contract accepts (0-120) falls in a band"
    for label in bands.unique():
        lo, hi = _bounds(label)
        held = np.floor(ages[bands == label])
        assert held.between(lo, hi).all(), f"{label!r} holds ages {sorted(set(held[~held.between(lo, hi)]))}"
    assert set(bands[ages.isin([15, 16, 17, 17.9])]) == {"under 18"}
    assert set(bands[ages.isin([18, 30, 30.9])]) == {"18-30"} and set(bands[ages == 31]) == {"31-42"}
    for label, (lo, hi) in features.AGE_BANDS.items():  # the table and the labels agree
        assert _bounds(label) == (lo, np.inf if hi >= 120 else hi), label


def test_a_config_outside_the_project_shows_by_file_name_only(tmp_path):
    from analysis.config import PROJECT_ROOT, RunConfig

    outside = RunConfig.model_construct(config_path=tmp_path / "private" / "run.yaml")
    assert outside.display_path() == "run.yaml" and str(tmp_path) not in outside.display_path()
    inside = RunConfig.model_construct(config_path=PROJECT_ROOT / "config" / "sample.yaml")
    assert inside.display_path() == "config/sample.yaml"
