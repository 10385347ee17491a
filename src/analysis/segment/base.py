"""The one segmentation contract every basis follows.

Two pieces, modelled on scikit-learn's private ``_BaseKMeans``:

* :class:`BaseSegmenter` carries what every clustering basis shares: evaluate candidate k
  (cost, silhouette, bootstrap stability), choose one, judge it against data with no structure
  (a **verdict**), refit, and number segments by size (0 = largest). A basis subclass says only
  how to turn its input into a matrix (:meth:`BaseSegmenter._encode`) and which model to fit
  for a given k (:meth:`BaseSegmenter._make_model`).
* :class:`SegmentationResult` is what every ``segment_<basis>()`` function returns: labels,
  profiles, evidence, verdict, ``summary()`` and ``model_payload()``. Basis results subclass it
  and add what their page shows.

One policy for a requested k that cannot be fitted: :class:`InfeasibleK`, with the same message
on every basis, naming ``params.<notebook>.k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.metrics import silhouette_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..config import NotApplicable
from .common import size_order
from .selection import KChoice, candidate_ks, choose_k, evaluate_k

#: Verdict levels, strongest first. ``rules`` marks a partition defined by rules (RFM cells,
#: value tiers, areas) rather than found in the data: there is nothing to test against noise.
VERDICTS = ("clear", "weak", "none", "rules")

#: Silhouette margins over the no-structure reference for a ``clear`` / ``weak`` verdict.
CLEAR_MARGIN = 0.10
WEAK_MARGIN = 0.03


class InfeasibleK(ValueError):
    """A k set in the config cannot be fitted on this data (too few distinct rows)."""


def infeasible_k_message(basis: str, notebook: str, k: int, n_distinct: int, what: str = "customers") -> str:
    """The one sentence every basis uses when a configured k cannot be fitted."""
    return (
        f"params.{notebook}.k = {k}: the {basis} data have only {n_distinct} distinct {what}, so at most "
        f"{max(n_distinct - 1, 0)} segments can be fitted. Set params.{notebook}.k below {n_distinct}, "
        f"or remove it to choose k from the evidence."
    )


@dataclass(frozen=True)
class Verdict:
    """Whether a segmentation found structure the data really have.

    Attributes
    ----------
    level : {"clear", "weak", "none", "rules"}
    reason : str
        One plain sentence, for the page and the index.
    evidence : dict
        The numbers behind it (silhouette of the data and of the reference, stability).
    """

    level: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "reason": self.reason, **{k: _plain(v) for k, v in self.evidence.items()}}

    @property
    def caveat(self) -> str:
        """A sentence to show next to the segments, empty for a clear verdict."""
        if self.level == "weak":
            return "Weak structure: treat these segments as a convenient split, not as distinct groups. " + self.reason
        if self.level == "none":
            return ("No real structure: these segments are no better separated than in data with no groups at all. "
                    "Do not build strategies on them. " + self.reason)
        return ""


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    return value


def rules_verdict(description: str) -> Verdict:
    """The verdict of a partition defined by rules (RFM cells, value tiers, areas)."""
    return Verdict("rules", f"Segments are defined by rules ({description}), not found in the data.")


def permuted_reference(X: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
    """Data with each column's values kept but shuffled independently: the same marginals, no groups.

    With a single column, shuffling changes nothing, so the reference is uniform over the
    column's range (the gap statistic's reference).
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] == 1:
        lo, hi = np.nanmin(X), np.nanmax(X)
        return random_state.uniform(lo, hi, size=X.shape)
    out = np.empty_like(X)
    for j in range(X.shape[1]):  # one shuffle per column (a handful), vectorised within
        out[:, j] = X[random_state.permutation(len(X)), j]
    return out


def judge(
    silhouette: float,
    reference: list[float],
    stability: float,
    *,
    min_stability: float = 0.75,
    clear_margin: float = CLEAR_MARGIN,
    weak_margin: float = WEAK_MARGIN,
) -> Verdict:
    """Verdict from the chosen solution's silhouette against the same model on reference data.

    Parameters
    ----------
    silhouette : float
        Silhouette of the chosen k on the data.
    reference : list of float
        Silhouettes of the same model (same k) fitted on reference data without structure
        (:func:`permuted_reference`).
    stability : float
        Bootstrap ARI of the chosen k.

    Returns
    -------
    Verdict
        ``clear`` when the silhouette beats the reference by ``clear_margin`` and the solution is
        stable; ``weak`` when it beats it by ``weak_margin``, or clearly but unstably; ``none``
        otherwise. For ``clear`` the margin must hold at the low end of the reference's sampling
        noise (its mean plus two standard errors of its fits), so a margin within the noise of that
        threshold is called weak, with the reason saying so (Online Retail's behavioral clusters:
        0.105 against 0.10, with the reference's standard error at 0.004). The line between
        ``weak`` and ``none`` is the plain margin.

    Examples
    --------
    >>> judge(0.45, [0.20, 0.21], 0.98).level
    'clear'
    >>> judge(0.14, [0.13, 0.135], 0.99).level
    'none'
    >>> judge(0.33, [0.215, 0.225, 0.23], 0.98).level  # margin 0.11, but within the reference's noise
    'weak'
    """
    ref = np.asarray([r for r in reference if np.isfinite(r)], dtype=float)
    ref_mean = float(ref.mean()) if len(ref) else float("nan")
    margin = silhouette - ref_mean if len(ref) else float("nan")
    noise = 2 * float(ref.std(ddof=1)) / np.sqrt(len(ref)) if len(ref) > 1 else 0.0
    evidence = {"silhouette": silhouette, "reference_silhouette": ref_mean,
                "reference_silhouette_sd": float(ref.std(ddof=1)) if len(ref) > 1 else float("nan"),
                "margin": margin, "margin_low": margin - noise, "stability_ari": stability, "reference_fits": len(ref)}
    if not np.isfinite(silhouette) or not np.isfinite(margin):
        return Verdict("none", "The separation of the segments could not be measured.", evidence)
    versus = (f"silhouette {silhouette:.2f} against {ref_mean:.2f} for the same method on the same data with the "
              f"columns shuffled (no groups)")
    if margin - noise >= clear_margin and stability >= min_stability:  # clear even at the low end of the noise
        return Verdict("clear", f"Clear structure: {versus}; stable under resampling (ARI {stability:.2f}).", evidence)
    if margin >= weak_margin:
        why = "" if stability >= min_stability else f"; unstable under resampling (ARI {stability:.2f})"
        if margin - noise < clear_margin <= margin and stability >= min_stability:
            why += (f"; the margin ({margin:.3f}) is within the noise of the shuffled fits "
                    f"(two standard errors, {noise:.3f}) of the {clear_margin:.2f} a clear structure needs")
        return Verdict("weak", f"Weak structure: {versus}{why}.", evidence)
    return Verdict("none", f"No structure beyond chance: {versus}.", evidence)


class BaseSegmenter(ClusterMixin, BaseEstimator):
    """Shared fit for clustering bases: candidate k, evidence, choice, verdict, refit, size order.

    Subclasses set ``basis`` and ``notebook`` (for messages), store their own parameters in
    ``__init__`` (scikit-learn style) and implement:

    * ``_encode(X, fit)`` -> 2-D float matrix the model clusters (learning any scaling when
      ``fit`` is True),
    * ``_make_model(k, seed)`` -> an unfitted clusterer with ``fit`` / ``predict``,

    and optionally ``_silhouette(matrix, labels, rs)`` (default Euclidean),
    ``_rows(X, matrix, rs)`` -> (selection rows, fit rows) for sampling large data, and
    ``_distinct_what`` (the noun in messages).

    Parameters every subclass accepts: ``n_clusters`` (fixed k or None), ``k_range``,
    ``n_bootstrap``, ``min_segment_pct``, ``n_reference`` (reference fits for the verdict) and
    ``random_state``.

    Attributes
    ----------
    labels_ : ndarray of int
        Segment of each fitted row, 0 = largest.
    k_choice_ : KChoice
        Evidence per k and the reason for the chosen k.
    verdict_ : Verdict
    model_ : fitted clusterer (raw cluster ids; :meth:`predict` maps them to size order)
    notes_ : list of str
    """

    basis: ClassVar[str] = "segment"
    notebook: ClassVar[str] = "<notebook>"
    _distinct_what: ClassVar[str] = "customers"

    # -- hooks -----------------------------------------------------------------------------
    def _encode(self, X: Any, fit: bool) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_model(self, k: int, seed: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _silhouette(self, matrix: np.ndarray, labels: np.ndarray, rs: np.random.RandomState) -> float:
        if len(np.unique(labels)) < 2:
            return float("nan")
        size = min(getattr(self, "sample_size", 3000) or 3000, len(labels))
        return float(silhouette_score(matrix, labels, sample_size=size, random_state=rs))

    def _rows(self, X: Any, matrix: np.ndarray, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """(rows used to choose k, rows the final model is fitted on).

        The evidence for k (every candidate k, bootstrap refits, shuffled references) is taken on
        a random sample of ``selection_size`` rows when there are more (an attribute; None or
        absent: all rows); the final model is fitted on all rows.
        """
        every = np.arange(len(matrix))
        size = getattr(self, "selection_size", None)
        if size is None or len(matrix) <= size:
            return every, every
        self.notes_.append(f"k was chosen on a random sample of {size:,} of the {len(matrix):,} {self._distinct_what}; "
                           "the final model is fitted on all of them.")
        return np.sort(rs.choice(len(matrix), size=size, replace=False)), every

    def _reference(self, matrix: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
        return permuted_reference(matrix, rs)

    # -- shared fit --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> BaseSegmenter:
        """Choose k from the evidence, judge it, fit the final model and label every row.

        Raises
        ------
        InfeasibleK
            When ``n_clusters`` is set and the data have too few distinct rows for it.
        ValueError
            When the data have too few distinct rows to compare any k.
        """
        rs = check_random_state(self.random_state)
        self.notes_: list[str] = []
        matrix = self._encode(X, fit=True)
        selection, fit_rows = self._rows(X, matrix, rs)
        n_distinct = len(np.unique(np.round(matrix[selection], 9), axis=0))
        ks, feasible = candidate_ks(self.k_range, self.n_clusters, n_distinct)
        if self.n_clusters is not None and int(self.n_clusters) not in feasible:
            raise InfeasibleK(infeasible_k_message(self.basis, self.notebook, int(self.n_clusters), n_distinct, self._distinct_what))
        if not feasible:
            raise ValueError(
                f"only {n_distinct} distinct {self._distinct_what} in the {self.basis} data: at least "
                f"{self.k_range[0] + 1} are needed to compare segmentations."
            )
        if len(feasible) < len(ks):
            self.notes_.append(f"only {n_distinct} distinct {self._distinct_what}, so k is limited to "
                               f"{min(feasible)}..{max(feasible)} (asked for {min(ks)}..{max(ks)}).")
        evidence, _ = evaluate_k(self._make_model, matrix[selection], feasible, silhouette=self._silhouette,
                                 n_bootstrap=self.n_bootstrap, random_state=int(rs.randint(0, 2**31 - 1)))
        fixed = int(self.n_clusters) if self.n_clusters is not None else None
        self.k_choice_: KChoice = choose_k(evidence, fixed_k=fixed, min_segment_pct=self.min_segment_pct)
        self.verdict_ = self._judge(matrix[selection], self.k_choice_, rs)
        k = self.k_choice_.k
        self.model_ = self._make_model(k, int(rs.randint(0, 2**31 - 1))).fit(matrix[fit_rows])
        raw = np.asarray(self.model_.predict(matrix))
        self._order = size_order(raw, k)
        self.labels_ = self._order[raw]
        self.n_features_in_ = matrix.shape[1]
        return self

    def _judge(self, matrix: np.ndarray, choice: KChoice, rs: np.random.RandomState) -> Verdict:
        row = choice.evidence.set_index("k").loc[choice.k]
        reference = []
        for _ in range(max(int(self.n_reference), 0)):  # a few reference fits, each vectorised
            ref = self._reference(matrix, rs)
            model = self._make_model(choice.k, int(rs.randint(0, 2**31 - 1))).fit(ref)
            reference.append(self._silhouette(ref, np.asarray(model.predict(ref)), rs))
        return judge(float(row["silhouette"]), reference, float(row["stability_ari"]))

    def predict(self, X: Any) -> np.ndarray:
        """Segment (0 = largest) of each row, from the fitted model; no refit."""
        check_is_fitted(self, "model_")
        return self._order[np.asarray(self.model_.predict(self._encode(X, fit=False)))]


@dataclass(kw_only=True)
class SegmentationResult:
    """What every ``segment_<basis>()`` returns.

    Attributes
    ----------
    basis : str
        Registry name (``demographic``, ``geographic``, ``psychographic``, ``behavioral``, ``value``).
    available : bool
        False when the data do not allow this basis; ``message`` then says why and how to fix it.
    message : str
    notes : list of str
        Caveats about the data or the fit, in plain words.
    labels : DataFrame
        One row per customer: ``customer_id``, ``<basis>_segment`` and basis-specific columns;
        these join ``exports/customers.csv``.
    profiles : DataFrame
        One row per segment: ``segment``, ``customers``, ``customers_pct``, ``revenue``,
        ``revenue_pct``, ``revenue_per_customer`` then basis-specific columns.
    model : estimator or None
        The fitted segmenter later runs score new data with (saved by ``run.save_result``).
    verdict : Verdict or None
    """

    basis: ClassVar[str] = "segment"
    title: ClassVar[str] = "Segments"

    available: bool
    message: str = ""
    notes: list[str] = field(default_factory=list)
    labels: pd.DataFrame = field(default_factory=pd.DataFrame)
    profiles: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: Any = None
    #: Profiles of other segmentations the basis produces (e.g. ``{"rfm": ...}``), saved alongside.
    extra_profiles: dict[str, pd.DataFrame] = field(default_factory=dict)

    # -- shared reading ------------------------------------------------------------------------
    @property
    def segment_column(self) -> str:
        from .registry import BASES  # the registry imports no basis module

        return BASES[self.basis].segment_column if self.basis in BASES else f"{self.basis}_segment"

    @property
    def k_choice(self) -> KChoice | None:
        return getattr(self.model, "k_choice_", None) if self.model is not None else None

    @property
    def evidence(self) -> pd.DataFrame:
        return self.k_choice.evidence if self.k_choice is not None else pd.DataFrame()

    @property
    def verdict(self) -> Verdict | None:
        if not self.available:
            return None
        return getattr(self.model, "verdict_", None) if self.model is not None else self._rules_verdict()

    def _rules_verdict(self) -> Verdict | None:
        return None

    def require(self) -> SegmentationResult:
        """Return self when available; otherwise stop the page with the reason (``NotApplicable``)."""
        if not self.available:
            raise NotApplicable(self.message)
        return self

    def verdict_sentence(self) -> str:
        """The verdict in words, for the page: the reason, led by the caveat when structure is weak."""
        verdict = self.verdict
        if verdict is None:
            return ""
        return verdict.caveat or verdict.reason

    def summary_lines(self) -> list[str]:
        """Basis-specific headline lines (after the verdict caveat)."""
        return []

    def summary(self) -> dict[str, Any]:
        """Headline facts for the run's index page: ``title``, ``lines`` and ``verdict``."""
        if not self.available:
            return {"title": self.title, "lines": [self.message], "verdict": None}
        verdict = self.verdict
        lines = list(self.summary_lines())
        if verdict is not None and verdict.caveat:
            lines.insert(0, verdict.caveat)
        return {"title": self.title, "lines": lines, "verdict": verdict.level if verdict else None}

    def payload(self) -> dict[str, Any]:
        """Basis-specific fitted parameters for the manifest."""
        return {}

    def model_payload(self) -> dict[str, Any]:
        """Fitted parameters for the run manifest (``models.<basis>``), with the verdict."""
        if not self.available:
            return {"available": False, "message": self.message}
        out: dict[str, Any] = {"available": True}
        if self.k_choice is not None:
            out.update(k=self.k_choice.k, k_reason=self.k_choice.reason,
                       evidence=self.evidence.round(4).to_dict(orient="records"))
        out.update(self.payload())
        verdict = self.verdict
        out["verdict"] = verdict.level if verdict is not None else None
        out["verdict_evidence"] = verdict.to_dict() if verdict is not None else None
        out["notes"] = list(self.notes)
        return out
