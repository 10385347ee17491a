"""Psychographic segmentation: Likert survey -> reliability -> factors -> segments.

1. **Responses** (:func:`prepare_responses`). Item columns and reverse-worded items come from the
   run config only (``survey.items``, ``survey.reverse``; the data contract has already flipped
   reversed answers). Respondents who answered fewer than ``min_answered`` of the items are set
   aside and counted; for the others a missing answer is imputed with the respondent's own mean
   on the other items of the same scale (``survey.scales``), or, for items in no scale or a
   scale left blank, with the item's mean over respondents. Respondents whose id is not in the
   customer table are kept for the factors and segments and counted (they have no purchase value).
2. **Reliability**: Cronbach's alpha per scale (:func:`cronbach_alpha`), on respondents who
   answered every item of the scale (no imputed values). Without configured scales, each factor's
   items (those loading most on it) form a scale.
3. **Factors** (:class:`PsychographicFactors`): maximum-likelihood factor analysis of the
   standardised items. The number of factors comes from parallel analysis (a factor is kept while
   it explains more common variance than the same factor in 95% of random data sets of the same
   size) or the config. The rotation is oblique (oblimin, ``factor_analyzer``) when the factors
   correlate, else varimax; the factor correlations are reported. Configured scales are checked
   (:func:`scale_correlations`, :func:`scale_overlaps`): scales whose scores correlate above
   0.85, or whose items one factor gathers, are flagged as not telling attitudes apart. Each
   factor is named after a configured scale when most of its items belong to one, else with a
   short label from its top item's wording (``params.12_psychographic.item_labels``, never a
   cut-off sentence) or the item names.
4. **Segments**: k-means (or a Gaussian mixture) on the factor scores, k chosen by
   :mod:`analysis.segment.selection`, each segment named by its highest and lowest factors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from factor_analyzer import Rotator
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import FactorAnalysis
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from ..features import slug
from .base import BaseSegmenter, InfeasibleK, SegmentationResult
from .common import VALUE_COLUMNS, customer_value, segment_sizes, unique_names

#: Transaction columns :func:`segment_psychographic` reads (purchase value per customer only).
TRANSACTION_COLUMNS = VALUE_COLUMNS

#: Columns of the segment profiles (``exports/segments.csv`` rows of basis ``psychographic``).
PROFILE_COLUMNS: dict[str, str] = {
    "segment": "segment name, from its highest and lowest factors",
    "customers": "respondents in the segment",
    "customers_pct": "% of segmented respondents",
    "revenue": "purchase value of the segment's respondents who are customers",
    "revenue_pct": "% of the respondents' purchase value",
    "revenue_per_customer": "purchase value per respondent found in the customer table",
    "known_customers": "respondents found in the customer table",
    "mean_<factor>": "average factor score (standardised: 0 = average respondent, +1 = one standard deviation above)",
    "description": "the factors that set the segment apart",
}


# ------------------------------------------------------------------------------------------
# Responses and reliability
# ------------------------------------------------------------------------------------------


@dataclass
class SurveyResponses:
    """Survey answers ready for factor analysis, and what was done to get there.

    Attributes
    ----------
    answers : DataFrame
        Usable respondents (index ``customer_id``) x items, gaps imputed.
    observed : DataFrame
        The same respondents' answers as given (missing kept), for reliability.
    set_aside : DataFrame
        ``customer_id``, ``answered`` (items), ``reason`` for respondents not used.
    imputed : int
        Answers imputed.
    not_in_customers : int
        Usable respondents whose id is not in the customer table.
    notes : list of str
    """

    answers: pd.DataFrame
    observed: pd.DataFrame
    set_aside: pd.DataFrame
    imputed: int
    not_in_customers: int
    notes: list[str] = field(default_factory=list)

    def counts(self) -> pd.DataFrame:
        """Respondents used, set aside, and not in the customer table (a small table for reports)."""
        rows = [
            ("respondents used", len(self.answers)),
            ("set aside: too few answers", int((self.set_aside["reason"] == "too_few_answers").sum())),
            ("used, with some answers imputed", int(self.observed.isna().any(axis=1).sum())),
            ("used, not in the customer table", self.not_in_customers),
        ]
        return pd.DataFrame(rows, columns=["respondents", "count"])


def prepare_responses(
    survey: pd.DataFrame,
    items: Sequence[str],
    *,
    scales: dict[str, list[str]] | None = None,
    min_answered: float = 0.5,
    customer_ids: Sequence[str] | pd.Index | None = None,
) -> SurveyResponses:
    """Set aside thin responses and impute the gaps of the others.

    Parameters
    ----------
    survey : DataFrame
        Validated survey (``customer_id`` + item columns, reverse items already flipped).
    items : list of str
        Item columns (the config's ``survey.items``).
    scales : dict, optional
        Scale name -> items; gaps are imputed from the respondent's other answers on the scale.
    min_answered : float
        Share of items a respondent must have answered to be used.
    customer_ids : sequence, optional
        Ids of the customer table, to count respondents not in it.

    Returns
    -------
    SurveyResponses

    Examples
    --------
    >>> survey = pd.DataFrame({"customer_id": ["a", "b"], "q1": [4.0, None], "q2": [None, None], "q3": [2.0, 5.0]})
    >>> r = prepare_responses(survey, ["q1", "q2", "q3"], scales={"s": ["q1", "q2"]})
    >>> r.answers.loc["a"].tolist(), r.set_aside["customer_id"].tolist()
    ([4.0, 4.0, 2.0], ['b'])
    """
    items = list(items)
    missing_cols = [c for c in items if c not in survey]
    if missing_cols:
        raise KeyError(f"survey: item columns {missing_cols} not found. Found: {list(survey.columns)[:40]}. "
                       f"Map them under columns.survey in the run config or fix survey.items.")
    answers = survey[items].astype(float)
    answers.index = pd.Index(survey["customer_id"].astype(str), name="customer_id")
    answered = answers.notna().sum(axis=1)
    enough = answered >= np.ceil(min_answered * len(items))
    set_aside = pd.DataFrame({"customer_id": answers.index[~enough], "answered": answered[~enough].to_numpy(),
                              "reason": "too_few_answers"})
    observed = answers.loc[enough]
    filled = observed.copy()
    for scale_items in (scales or {}).values():  # one pass per scale, vectorised over respondents
        cols = [c for c in scale_items if c in filled]
        if cols:
            person_mean = observed[cols].mean(axis=1).to_numpy()[:, None]
            block = filled[cols].to_numpy()
            filled[cols] = np.where(np.isnan(block), person_mean, block)
    filled = filled.fillna(observed.mean())
    imputed = int(observed.isna().sum().sum())
    not_in = int((~observed.index.isin(pd.Index(customer_ids))).sum()) if customer_ids is not None else 0
    notes = []
    if len(set_aside):
        notes.append(f"{len(set_aside):,} respondents answered fewer than {100 * min_answered:.0f}% of the {len(items)} items and are set aside.")
    if imputed:
        how = "their own mean on the other items of the same scale (or the item's mean)" if scales else "the item's mean over respondents"
        notes.append(f"{imputed:,} missing answers of {int(observed.isna().any(axis=1).sum()):,} partial respondents imputed with {how}.")
    if not_in:
        notes.append(f"{not_in:,} respondents are not in the customer table: they are segmented but have no purchase value.")
    return SurveyResponses(filled, observed, set_aside, imputed, not_in, notes)


def cronbach_alpha(items: pd.DataFrame) -> float:
    """Cronbach's alpha of a scale, on respondents who answered every item.

    alpha = k / (k - 1) * (1 - sum of item variances / variance of the total score), sample
    variances (ddof=1). NaN with fewer than two items or two complete respondents.

    Examples
    --------
    >>> round(cronbach_alpha(pd.DataFrame({"a": [1, 2, 3, 4], "b": [2, 2, 4, 4], "c": [1, 3, 3, 5]})), 4)  # 14/15
    0.9333
    """
    complete = items.dropna()
    k = items.shape[1]
    if k < 2 or len(complete) < 2:
        return float("nan")
    total_var = complete.sum(axis=1).var(ddof=1)
    if total_var == 0:
        return float("nan")
    return float(round(k / (k - 1) * (1 - complete.var(ddof=1).sum() / total_var), 12))


def _verdict(alpha: float) -> str:
    if np.isnan(alpha):
        return "not computable"
    for bound, word in ((0.9, "excellent"), (0.8, "good"), (0.7, "acceptable"), (0.6, "questionable")):
        if alpha >= bound:
            return word
    return "poor: read this scale with caution"


def reliability(observed: pd.DataFrame, scales: dict[str, list[str]]) -> pd.DataFrame:
    """Cronbach's alpha per scale with a plain-language verdict.

    Returns
    -------
    DataFrame
        ``scale``, ``items``, ``n_items``, ``respondents`` (complete on the scale), ``alpha``,
        ``verdict`` (excellent >= .9, good >= .8, acceptable >= .7, questionable >= .6, else poor).
    """
    rows = []
    for name, scale_items in scales.items():  # one row per scale
        cols = [c for c in scale_items if c in observed]
        alpha = cronbach_alpha(observed[cols]) if cols else float("nan")
        rows.append({"scale": name, "items": ", ".join(cols), "n_items": len(cols),
                     "respondents": int(observed[cols].notna().all(axis=1).sum()) if cols else 0,
                     "alpha": alpha, "verdict": _verdict(alpha)})
    return pd.DataFrame(rows, columns=["scale", "items", "n_items", "respondents", "alpha", "verdict"])


# ------------------------------------------------------------------------------------------
# Factors
# ------------------------------------------------------------------------------------------


def _pretty(name: str) -> str:
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


#: Words left out of a short label made from an item's wording.
_STOP_WORDS = frozenset((
    "a", "about", "above", "after", "again", "against", "all", "always", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "even", "ever",
    "every", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
    "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "lot", "lots",
    "me", "more", "most", "much", "my", "myself", "never", "no", "nor", "not", "now", "of", "off",
    "often", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "rather",
    "rarely", "really", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until",
    "up", "us", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "would", "you", "your", "yours",
))


def short_label(text: str, *, max_chars: int = 40, max_words: int = 3) -> str:
    """A short factor name from an item's wording: the whole wording when it is short, else its
    first key words, never a sentence cut off.

    Parameters
    ----------
    text : str
        Item wording.
    max_chars : int
        Wording up to this length (without its final full stop) is used whole.
    max_words : int
        Key words (not stop words, three letters or more) kept from longer wording, joined by " / ".

    Examples
    --------
    >>> short_label("I always use coupons.")
    'I always use coupons'
    >>> short_label("I spend a lot of money on partying and socialising with friends")
    'Spend / money / partying'
    """
    clean = " ".join(str(text).split()).rstrip(" .!?;:")
    if len(clean) <= max_chars:
        return _pretty(clean)
    words = [w.strip(".,;:!?()\"'") for w in clean.split()]
    keys = list(dict.fromkeys(w.lower() for w in words if len(w) >= 3 and w.lower() not in _STOP_WORDS and w.isalpha()))
    if not keys:
        return ""
    return _pretty(" / ".join(keys[:max_words]))


def main_items(loadings: pd.DataFrame, min_loading: float = 0.4) -> dict[str, list[str]]:
    """Items of each factor: those loading most on it, by at least ``min_loading`` (absolute)."""
    main = loadings.abs().idxmax(axis=1)
    strong = loadings.abs().max(axis=1) >= min_loading
    return {factor: list(main.index[(main == factor) & strong]) for factor in loadings.columns}


def scale_shares(loadings: pd.DataFrame, scales: dict[str, list[str]] | None, min_loading: float = 0.4) -> pd.DataFrame:
    """Share of each configured scale's items that load mainly on each factor (scales x factors)."""
    own = main_items(loadings, min_loading)
    rows = {scale: [len(set(its) & set(own[f])) / len(its) for f in loadings.columns] for scale, its in (scales or {}).items() if its}
    return pd.DataFrame.from_dict(rows, orient="index", columns=loadings.columns)


def name_factors(loadings: pd.DataFrame, *, scales: dict[str, list[str]] | None = None,
                 item_labels: dict[str, str] | None = None, min_loading: float = 0.4) -> list[str]:
    """A readable, unique name per factor (column of ``loadings``: items x factors).

    A factor is named after a configured scale when at least half of the scale's items load
    mainly on it (by at least ``min_loading``) and they are most of its main items (after two
    scales, "Adventure & social status", when two scales share a factor about equally).
    Otherwise it gets a short label from its highest-loading worded item (:func:`short_label`:
    the wording when short, else a few of its key words, never a cut-off sentence), or, without
    wording, its two top-loading item names.

    Examples
    --------
    >>> L = pd.DataFrame({"F1": [.8, .7, .1], "F2": [.1, .2, .9]}, index=["a1", "a2", "b1"])
    >>> name_factors(L, scales={"alpha": ["a1", "a2"]}, item_labels={"b1": "I read the small print before I sign anything at all"})
    ['Alpha', 'Read / small / print']
    """
    own = main_items(loadings, min_loading)
    names = []
    for factor in loadings.columns:  # one pass per factor (a handful)
        hits = {scale: len(set(own[factor]) & set(its)) for scale, its in (scales or {}).items() if its}
        qualifying = sorted((s for s, h in hits.items() if h and h >= 0.5 * len(scales[s])), key=lambda s: -hits[s])
        if qualifying:
            lead = [s for s in qualifying if hits[s] >= 0.5 * hits[qualifying[0]]][:2]
            if sum(hits[s] for s in lead) >= 0.5 * len(own[factor]):
                names.append(" & ".join([_pretty(lead[0])] + [str(s).replace("_", " ") for s in lead[1:]]))
                continue
        ranked = loadings[factor].abs().sort_values(ascending=False)
        worded = [short_label(item_labels[i]) for i in ranked.index[ranked >= min_loading] if i in (item_labels or {})]
        worded = [w for w in worded if w]
        names.append(worded[0] if worded else " / ".join(map(str, ranked.index[:2])))
    return unique_names(pd.Series(names)).tolist()


def reduced_eigenvalues(corr: np.ndarray) -> np.ndarray:
    """Eigenvalues (descending) of correlation matrices with squared multiple correlations on the
    diagonal: the variance common factors can explain. ``corr`` is one matrix or a stack (..., p, p).
    """
    try:
        inverse = np.linalg.inv(corr)
    except np.linalg.LinAlgError:  # a singular matrix (an item a copy of others): the slower pseudo-inverse
        inverse = np.linalg.pinv(corr)
    p = corr.shape[-1]
    smc = np.clip(1.0 - 1.0 / np.diagonal(inverse, axis1=-2, axis2=-1), 0.0, 1.0)
    reduced = corr.copy()
    reduced[..., np.arange(p), np.arange(p)] = smc
    return np.sort(np.linalg.eigvalsh(reduced), axis=-1)[..., ::-1]


def parallel_analysis(n_respondents: int, n_items: int, *, n_iter: int = 100, quantile: float = 0.95,
                      random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """Eigenvalues that factors of random data reach (Horn's parallel analysis, common-factor form).

    ``n_iter`` data sets of ``n_respondents`` independent standard normal answers to ``n_items``
    items are drawn, and the ``quantile`` of each position of their :func:`reduced_eigenvalues`
    is returned. A factor of the real data is worth keeping while its reduced eigenvalue beats
    this reference. The centred cross-products of such data follow a Wishart distribution with
    ``n_respondents - 1`` degrees of freedom, so their correlation matrices are drawn directly
    (all ``n_iter`` at once) rather than through the answers; with fewer respondents than items
    the answers themselves are drawn, in batches.

    Returns
    -------
    ndarray, shape (n_items,)
        Reference eigenvalue per position (descending).

    Examples
    --------
    >>> ref = parallel_analysis(500, 8, n_iter=50, random_state=0)
    >>> ref.shape, bool(0 < ref[0] < 0.3)
    ((8,), True)
    """
    rng = np.random.default_rng(random_state)
    if n_respondents - 1 >= n_items:
        cross = stats.wishart(df=n_respondents - 1, scale=np.eye(n_items)).rvs(size=n_iter, random_state=rng)
        cross = np.asarray(cross, dtype=float).reshape(n_iter, n_items, n_items)
        return np.quantile(reduced_eigenvalues(_correlation(cross)), quantile, axis=0)
    batch = max(1, int(4e6 // max(n_respondents * n_items, 1)))  # bound memory for long surveys
    eigen = []
    for start in range(0, n_iter, batch):  # a few batches, each vectorised over its data sets
        data = rng.standard_normal((min(batch, n_iter - start), n_respondents, n_items))
        data -= data.mean(axis=1, keepdims=True)
        eigen.append(reduced_eigenvalues(_correlation(data.transpose(0, 2, 1) @ data)))
    return np.quantile(np.concatenate(eigen), quantile, axis=0)


def _correlation(cross: np.ndarray) -> np.ndarray:
    """Correlation matrices from (stacked) cross-product matrices."""
    scale = np.sqrt(np.diagonal(cross, axis1=-2, axis2=-1))
    return cross / scale[..., :, None] / scale[..., None, :]


def scale_correlations(answers: pd.DataFrame, scales: dict[str, list[str]]) -> pd.DataFrame:
    """Pearson correlations between scale scores (each respondent's mean over the scale's items).

    Examples
    --------
    >>> a = pd.DataFrame({"x1": [1, 2, 3, 4], "x2": [1, 2, 4, 3], "y1": [4, 3, 2, 1]})
    >>> scale_correlations(a, {"x": ["x1", "x2"], "y": ["y1"]}).round(2).loc["x", "y"]
    np.float64(-0.95)
    """
    scores = pd.DataFrame({name: answers[[c for c in its if c in answers]].mean(axis=1)
                           for name, its in scales.items() if any(c in answers for c in its)})
    return scores.corr()


#: Scale scores correlated above this cannot be told apart as attitudes.
SCALE_OVERLAP_R = 0.85


def scale_overlaps(correlations: pd.DataFrame, shares: pd.DataFrame | None = None, *, max_r: float = SCALE_OVERLAP_R) -> pd.DataFrame:
    """Pairs of configured scales that cannot be told apart.

    A pair is flagged when its scale scores correlate above ``max_r`` or when one factor holds at
    least half of the items of both (``shares`` from :func:`scale_shares`).

    Returns
    -------
    DataFrame
        ``scale_a``, ``scale_b``, ``r`` (scale score correlation), ``factor`` (the factor merging
        them, or empty) and ``reason``; one row per flagged pair.
    """
    names = list(correlations.index)
    rows = []
    for i, a in enumerate(names):  # pairs of a handful of scales
        for b in names[i + 1:]:
            r = float(correlations.loc[a, b])
            merging = []
            if shares is not None and a in shares.index and b in shares.index:
                both = shares.loc[[a, b]].min(axis=0)
                merging = list(both.index[both >= 0.5])
            if merging or abs(r) > max_r:
                why = []
                if abs(r) > max_r:
                    why.append(f"their scores correlate at {r:.2f} (above {max_r:.2f})")
                if merging:
                    why.append(f"one factor ({merging[0]}) holds most items of both")
                rows.append({"scale_a": a, "scale_b": b, "r": r, "factor": merging[0] if merging else "", "reason": " and ".join(why)})
    return pd.DataFrame(rows, columns=["scale_a", "scale_b", "r", "factor", "reason"])


#: Factor correlations from which an oblique rotation is kept (a common rule of thumb: 0.32,
#: i.e. about 10% shared variance).
OBLIQUE_MIN_CORRELATION = 0.32
_ORTHOGONAL = ("varimax", "quartimax")
_OBLIQUE = ("oblimin", "promax")


class PsychographicFactors(TransformerMixin, BaseEstimator):
    """Factor analysis of standardised survey items: how many factors, rotation, names.

    * **How many**: parallel analysis (Horn, common-factor form): a factor is kept while the
      eigenvalue of the reduced item correlations (squared multiple correlations on the
      diagonal) beats the 95th percentile of the same eigenvalue in ``n_iter`` random data sets
      of the same size (seeded by ``random_state``), unless ``n_factors`` is set.
    * **Extraction**: maximum likelihood (scikit-learn ``FactorAnalysis``), unrotated.
      (``factor_analyzer.FactorAnalyzer.fit`` calls ``check_array(force_all_finite=...)``, which
      scikit-learn 1.8 removed, so only its rotations are used.)
    * **Rotation** (``factor_analyzer.Rotator``): with ``rotation="auto"``, oblimin (oblique) is
      fitted; it is kept when two factors correlate at least :data:`OBLIQUE_MIN_CORRELATION`,
      else varimax (orthogonal) is used. ``rotation_reason_`` says which and why.
    * **Scores**: regression (Thurstone) scores from the structure matrix, standardised.
    * **Names**: :func:`name_factors`.

    Parameters
    ----------
    n_factors : int or None
        Number of factors; None chooses by parallel analysis.
    rotation : {"auto", "oblimin", "promax", "varimax", "quartimax"} or None
    scales : dict, optional
        Configured scales, for naming factors and comparing the number of factors.
    item_labels : dict, optional
        Item -> wording, for naming factors and labelling loadings.
    n_iter : int
        Random data sets for parallel analysis.
    random_state : int, optional

    Attributes
    ----------
    eigenvalues_ : ndarray
        Of the item correlation matrix, descending.
    common_eigenvalues_ : ndarray
        Of the reduced correlation matrix (what parallel analysis compares), descending.
    reference_eigenvalues_ : ndarray
        95th percentile of the same eigenvalues in random data.
    parallel_n_factors_ : int
        Leading factors that beat random data (0 when none does).
    n_factors_ : int
    n_factors_reason_ : str
    rotation_ : str or None
        The rotation used.
    rotation_reason_ : str
    loadings_ : DataFrame
        Items x factors (named): pattern loadings; each factor's sign makes them mostly positive.
    factor_correlations_ : DataFrame
        Factors x factors (identity for an orthogonal rotation).
    factor_names_ : list of str

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.normal(size=(300, 2))
    >>> X = pd.DataFrame(np.c_[f[:, [0]] + .3 * rng.normal(size=(300, 3)), f[:, [1]] + .3 * rng.normal(size=(300, 3))],
    ...                  columns=["a1", "a2", "a3", "b1", "b2", "b3"])
    >>> fa = PsychographicFactors(scales={"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2", "b3"]}, random_state=0).fit(X)
    >>> fa.n_factors_, fa.factor_names_, fa.rotation_
    (2, ['Alpha', 'Beta'], 'varimax')
    """

    def __init__(self, n_factors: int | None = None, rotation: str | None = "auto", scales: dict[str, list[str]] | None = None,
                 item_labels: dict[str, str] | None = None, n_iter: int = 100, random_state: int | None = None):
        self.n_factors = n_factors
        self.rotation = rotation
        self.scales = scales
        self.item_labels = item_labels
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, answers: pd.DataFrame, y: Any = None) -> PsychographicFactors:
        """Fit on complete answers (respondents x items)."""
        if self.rotation not in ("auto", None, *_ORTHOGONAL, *_OBLIQUE):
            raise ValueError(f"rotation={self.rotation!r}: use 'auto', 'oblimin', 'promax', 'varimax', 'quartimax' or None "
                             "(params.12_psychographic.rotation).")
        self.items_ = list(answers.columns)
        X = answers.to_numpy(dtype=float)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        Z = (X - self.mean_) / self.scale_
        corr = np.nan_to_num(np.corrcoef(Z, rowvar=False)) if Z.shape[1] > 1 else np.ones((1, 1))
        self.corr_ = corr
        self.eigenvalues_ = np.sort(np.linalg.eigvalsh(corr))[::-1]
        self._choose_n_factors(len(Z))
        self.fa_ = FactorAnalysis(n_components=self.n_factors_, random_state=self.random_state).fit(Z)
        self._rotate(self.fa_.components_.T)
        scores = Z @ self.weights_
        self.score_mean_ = scores.mean(axis=0)
        self.score_std_ = np.where(scores.std(axis=0) > 0, scores.std(axis=0), 1.0)
        return self

    def _choose_n_factors(self, n_respondents: int) -> None:
        p = len(self.items_)
        self.common_eigenvalues_ = reduced_eigenvalues(self.corr_)
        self.reference_eigenvalues_ = parallel_analysis(n_respondents, p, n_iter=self.n_iter, random_state=self.random_state)
        beats = self.common_eigenvalues_ > self.reference_eigenvalues_
        above = int(np.argmin(beats)) if not beats.all() else p  # leading factors that beat random data
        suggested = min(max(1, above), max(p - 1, 1))
        kaiser = int((self.eigenvalues_ > 1).sum())
        self.parallel_n_factors_ = above
        if self.n_factors:
            self.n_factors_ = int(min(self.n_factors, p))
            self.n_factors_reason_ = f"{self.n_factors_} factors, as set in the config (parallel analysis suggests {above})."
        elif above == 0:
            self.n_factors_ = 1
            self.n_factors_reason_ = (
                f"No factor explains more common variance than in 95% of {self.n_iter} random data sets of this size "
                f"({self.common_eigenvalues_[0]:.2f} against {self.reference_eigenvalues_[0]:.2f}): the items share no attitude "
                f"beyond chance. One factor is kept so the page can go on; do not read it as an attitude.")
        else:
            self.n_factors_ = suggested
            self.n_factors_reason_ = (
                f"{suggested} factor(s) by parallel analysis: factor {suggested} explains more common variance than the same factor "
                f"in 95% of {self.n_iter} random data sets of this size ({self.common_eigenvalues_[suggested - 1]:.2f} against "
                f"{self.reference_eigenvalues_[suggested - 1]:.2f})"
                + (f", factor {suggested + 1} does not ({self.common_eigenvalues_[suggested]:.2f} against "
                   f"{self.reference_eigenvalues_[suggested]:.2f})" if suggested < p else "")
                + f". The Kaiser rule (eigenvalues above 1) would give {kaiser}.")
        n_scales = len([s for s, its in (self.scales or {}).items() if its])
        if n_scales and self.n_factors_ != n_scales:
            self.n_factors_reason_ += (f" The config has {n_scales} scales: " + (
                "fewer factors than scales means some scales do not measure separate attitudes in these answers (see the scale checks)."
                if self.n_factors_ < n_scales else
                "more factors than scales means some scales split into several attitudes (see which items load on which factor)."))
        elif n_scales:
            self.n_factors_reason_ += f" This matches the {n_scales} scales of the config."

    def _rotate(self, raw: np.ndarray) -> None:
        k = raw.shape[1]
        method = None if k < 2 else ("oblimin" if self.rotation == "auto" else self.rotation)
        loadings, phi = self._apply(raw, method)
        off = np.abs(phi[~np.eye(k, dtype=bool)]) if k > 1 else np.zeros(0)
        strongest = float(off.max()) if off.size else 0.0
        if self.rotation == "auto" and k > 1:
            if strongest >= OBLIQUE_MIN_CORRELATION:
                self.rotation_reason_ = (f"Oblique rotation (oblimin): the factors correlate (up to {strongest:.2f} in absolute value, "
                                         f"above {OBLIQUE_MIN_CORRELATION}), so forcing them apart (varimax) would blur the loadings.")
            else:
                method = "varimax"
                loadings, phi = self._apply(raw, method)
                self.rotation_reason_ = (f"Orthogonal rotation (varimax): under an oblique rotation the factors correlate at most "
                                         f"{strongest:.2f} in absolute value (below {OBLIQUE_MIN_CORRELATION}), so they can be kept uncorrelated.")
        elif k < 2:
            self.rotation_reason_ = "One factor: nothing to rotate."
        else:
            kind = "oblique" if method in _OBLIQUE else "orthogonal" if method else "no"
            self.rotation_reason_ = f"{kind.capitalize()} rotation ({method or 'none'}), as set in the config."
        self.rotation_ = method
        signs = np.where(loadings.sum(axis=0) >= 0, 1.0, -1.0)
        order = np.argsort(-(loadings ** 2).sum(axis=0), kind="stable")
        self.signs_, self.order_ = signs[order], order
        pattern = loadings[:, order] * self.signs_
        phi = phi[np.ix_(order, order)] * np.outer(self.signs_, self.signs_)
        structure = pattern @ phi
        try:
            self.weights_ = np.linalg.solve(self.corr_, structure)  # regression (Thurstone) scores
        except np.linalg.LinAlgError:
            self.weights_ = np.linalg.pinv(self.corr_) @ structure
        provisional = pd.DataFrame(pattern, index=self.items_, columns=[f"F{i + 1}" for i in range(k)])
        self.factor_names_ = name_factors(provisional, scales=self.scales, item_labels=self.item_labels)
        self.loadings_ = provisional.set_axis(self.factor_names_, axis=1)
        self.structure_ = pd.DataFrame(structure, index=self.items_, columns=self.factor_names_)
        self.factor_correlations_ = pd.DataFrame(phi, index=self.factor_names_, columns=self.factor_names_)

    @staticmethod
    def _apply(raw: np.ndarray, method: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Rotated pattern loadings and factor correlations (identity when orthogonal)."""
        k = raw.shape[1]
        if method is None:
            return raw.copy(), np.eye(k)
        rotator = Rotator(method=method)
        loadings = rotator.fit_transform(raw)
        phi = rotator.phi_ if method in _OBLIQUE and rotator.phi_ is not None else np.eye(k)
        return loadings, np.asarray(phi, dtype=float)

    def _z(self, answers: pd.DataFrame) -> np.ndarray:
        return (answers[self.items_].to_numpy(dtype=float) - self.mean_) / self.scale_

    def transform(self, answers: pd.DataFrame) -> pd.DataFrame:
        """Standardised factor scores (mean 0, sd 1 over the fitted respondents), named columns."""
        check_is_fitted(self, "weights_")
        scores = (self._z(answers) @ self.weights_ - self.score_mean_) / self.score_std_
        return pd.DataFrame(scores, index=answers.index, columns=self.factor_names_)

    def item_scales(self, min_loading: float = 0.4) -> dict[str, list[str]]:
        """Items grouped by the factor they load on most (at least ``min_loading``): scales for
        reliability when the config has none."""
        check_is_fitted(self, "weights_")
        return main_items(self.loadings_, min_loading)


# ------------------------------------------------------------------------------------------
# Segments on factor scores
# ------------------------------------------------------------------------------------------


class _Mixture(GaussianMixture):
    """GaussianMixture exposing its BIC as ``cost_`` (for the k evidence table)."""

    def fit(self, X: Any, y: Any = None) -> _Mixture:
        super().fit(X)
        self.cost_ = float(self.bic(X))
        return self


class PsychographicClusters(BaseSegmenter):
    """k-means (or Gaussian mixture) on factor scores, k chosen from evidence.

    The shared fit (candidate k, evidence, verdict, refit, size order) is
    :class:`analysis.segment.base.BaseSegmenter`'s.

    Parameters
    ----------
    method : {"kmeans", "gmm"}
    n_clusters : int or None
    k_range : tuple of int
    n_bootstrap : int
    min_segment_pct : float
    n_reference : int
    selection_size : int or None, default 20,000
        With more respondents, the evidence for k is taken on a random sample of this many; the
        final model is fitted on everyone.
    random_state : int, optional

    Attributes
    ----------
    k_choice_ : KChoice
        For k-means the cost is the inertia; for a mixture, its BIC.
    verdict_ : Verdict
    model_ : KMeans or GaussianMixture
    labels_ : ndarray (0 = largest segment)
    """

    basis = "psychographic"
    notebook = "12_psychographic"
    _distinct_what = "answer patterns"

    def __init__(self, method: str = "kmeans", n_clusters: int | None = None, k_range: tuple[int, int] = (2, 8),
                 n_bootstrap: int = 5, min_segment_pct: float = 2.0, n_reference: int = 3,
                 selection_size: int | None = 20_000, random_state: int | None = None):
        self.method = method
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.n_bootstrap = n_bootstrap
        self.selection_size = selection_size
        self.min_segment_pct = min_segment_pct
        self.n_reference = n_reference
        self.random_state = random_state

    def _encode(self, scores: pd.DataFrame, fit: bool) -> np.ndarray:
        return np.asarray(scores, dtype=float)

    def _make_model(self, k: int, seed: int) -> Any:
        if self.method == "gmm":
            return _Mixture(n_components=k, n_init=2, random_state=seed)
        if self.method != "kmeans":
            raise ValueError(f"method={self.method!r}: use 'kmeans' or 'gmm' (params.12_psychographic.method).")
        return KMeans(n_clusters=k, n_init=10, random_state=seed)


def describe_segments(scores: pd.DataFrame, labels: np.ndarray | pd.Series, *, threshold: float = 0.5, max_traits: int = 2) -> pd.DataFrame:
    """Mean factor scores per segment and a name from the factors that set it apart.

    A factor sets a segment apart when its mean score is at least ``threshold`` standard
    deviations from the average respondent; the name uses the strongest ``max_traits`` of them
    ("High eco values, low price consciousness"), or "Middle of the road" when none does.

    Returns
    -------
    DataFrame
        Index: segment number; ``segment`` (name), ``description`` and ``mean_<factor>`` columns.
    """
    means = scores.groupby(np.asarray(labels)).mean()
    long = means.stack().rename("mean").reset_index()
    long.columns = ["cluster", "factor", "mean"]
    long = long[long["mean"].abs() >= threshold].copy()
    long["abs"] = long["mean"].abs()
    long = long.sort_values(["cluster", "abs"], ascending=[True, False], kind="stable")
    long["phrase"] = np.where(long["mean"] > 0, "high ", "low ") + long["factor"].str.lower()
    long["detail"] = long["phrase"] + " (" + long["mean"].map("{:+.1f}".format) + " sd)"
    name = long.groupby("cluster").head(max_traits).groupby("cluster")["phrase"].agg(", ".join)
    detail = long.groupby("cluster")["detail"].agg("; ".join)
    out = pd.DataFrame(index=means.index)
    names = pd.Series([name.get(c, "middle of the road") for c in means.index], index=means.index)
    out["segment"] = unique_names(names.str[:1].str.upper() + names.str[1:])
    out["description"] = [detail.get(c, "no factor more than half a standard deviation from average") for c in means.index]
    for factor in scores.columns:
        out[f"mean_{slug(factor)}"] = means[factor]
    return out


# ------------------------------------------------------------------------------------------
# One call for a notebook
# ------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class PsychographicResult(SegmentationResult):
    """Everything the psychographic page shows and saves (``available`` False with ``message``
    when the run has no usable survey). ``model`` is the fitted :class:`PsychographicClusters`
    (on the scores of ``factors``)."""

    basis: ClassVar[str] = "psychographic"
    title: ClassVar[str] = "Psychographic segments"

    responses: SurveyResponses | None = None
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    reliability_source: str = ""
    factors: PsychographicFactors | None = None
    #: Correlations between configured scale scores (empty without scales).
    scale_correlations: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Pairs of scales that cannot be told apart (:func:`scale_overlaps`).
    scale_flags: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: PsychographicClusters | None = None
    labels: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["customer_id", "psychographic_segment"]))
    value_source: str = ""
    reverse: list[str] = field(default_factory=list)

    @property
    def clusters(self) -> PsychographicClusters | None:
        return self.model

    def loadings_table(self, max_chars: int = 60) -> pd.DataFrame:
        """Loadings (items x factors), items grouped by their main factor and labelled with their
        wording when the config gives it (``q01: I like to try new products...``)."""
        L = self.factors.loadings_
        main = L.abs().idxmax(axis=1)
        order = sorted(L.index, key=lambda i: (list(L.columns).index(main[i]), -abs(L.loc[i, main[i]])))
        labels = self.factors.item_labels or {}
        flipped = set(self.reverse)
        names = [(f"{i} (reversed)" if i in flipped else i) + (f": {labels[i]}" if i in labels else "") for i in order]
        names = [n if len(n) <= max_chars else n[: max_chars - 3].rstrip() + "..." for n in names]
        return L.loc[order].set_axis(names, axis=0)

    def factor_sentence(self) -> str:
        """How many factors, which rotation and why, and the factors' names (for the page)."""
        f = self.factors
        text = f"{f.n_factors_reason_} {f.rotation_reason_} Factors: " + ", ".join(f"**{n}**" for n in f.factor_names_) + "."
        corr = f.factor_correlations_.where(~np.eye(len(f.factor_names_), dtype=bool)).abs()
        if f.rotation_ in _OBLIQUE and corr.notna().any().any():
            a, b = corr.stack().idxmax()
            text += f" The strongest factor correlation is {f.factor_correlations_.loc[a, b]:+.2f} ({a} with {b})."
        return text

    def scale_sentence(self) -> str:
        """Whether the configured scales measure distinct attitudes (for the page)."""
        if self.scale_correlations.empty:
            return "The config lists no survey.scales, so there are no configured scales to compare."
        if self.scale_flags.empty:
            corr = self.scale_correlations.where(~np.eye(len(self.scale_correlations), dtype=bool)).abs()
            top = float(corr.max().max()) if corr.notna().any().any() else float("nan")
            return (f"The {len(self.scale_correlations)} configured scales measure distinct attitudes: no two scale scores correlate "
                    f"above {SCALE_OVERLAP_R:.2f} (highest {top:.2f}) and no factor gathers the items of two scales.")
        pairs = "; ".join(f"{r.scale_a} and {r.scale_b}: {r.reason}" for r in self.scale_flags.itertuples())
        return (f"Scales that cannot be told apart in these answers: {pairs}. Read them as one attitude, or revise their items.")

    def factor_means(self) -> pd.DataFrame:
        """Average factor score per segment (rows: segments in profile order, columns: factor names)."""
        means = self.scores.groupby(self.labels.set_index("customer_id")["psychographic_segment"].reindex(self.scores.index)).mean()
        return means.reindex(self.profiles["segment"])

    def reliability_sentence(self) -> str:
        """One sentence on the alphas, computed."""
        rel = self.reliability.dropna(subset=["alpha"])
        if rel.empty:
            return "Reliability could not be computed: too few respondents answered every item of a scale."
        text = (f"Cronbach's alpha ranges from {rel['alpha'].min():.2f} to {rel['alpha'].max():.2f} across "
                f"{len(rel)} scale(s) (from {self.reliability_source})")
        weak = rel[rel["alpha"] < 0.7]
        if weak.empty:
            return text + "; all reach 0.7, so each scale's items measure one consistent attitude."
        return text + f"; {', '.join(map(str, weak['scale']))} fall(s) below 0.7: read those attitudes with caution."

    def interpretation(self) -> str:
        if not self.available:
            return self.message
        p = self.profiles
        text = f"{len(p)} attitude segments; the largest, '{p.iloc[0].segment}', holds {p.iloc[0].customers_pct:.0f}% of respondents"
        if p["revenue"].notna().any() and p["revenue"].sum() > 0:
            known = p[p["known_customers"] > 0]
            avg = known["revenue"].sum() / known["known_customers"].sum()
            best = known.loc[known["revenue_per_customer"].idxmax()]
            text += f". '{best.segment}' spends the most per customer ({best.revenue_per_customer / avg:.2f}x the respondents' average)"
        return text + "."

    def summary_lines(self) -> list[str]:
        lines = [(f"{len(self.profiles)} psychographic segments of {len(self.scores):,} survey respondents on "
                  f"{self.factors.n_factors_} factors ({', '.join(self.factors.factor_names_)}; {self.factors.rotation_ or 'no'} rotation); "
                  f"scale reliability (alpha) {self.reliability['alpha'].min():.2f}-{self.reliability['alpha'].max():.2f}.")]
        if not self.scale_flags.empty:
            lines.append("Scales that cannot be told apart: " + "; ".join(f"{r.scale_a} / {r.scale_b}" for r in self.scale_flags.itertuples()) + ".")
        lines += [f"{r.segment}: {r.customers_pct:.0f}% of respondents" for r in self.profiles.itertuples()]
        return lines

    def payload(self) -> dict[str, Any]:
        return {
            "factors": self.factors.factor_names_,
            "n_factors_reason": self.factors.n_factors_reason_,
            "parallel_analysis": {"common_eigenvalues": self.factors.common_eigenvalues_.round(4).tolist(),
                                  "random_95th_percentile": self.factors.reference_eigenvalues_.round(4).tolist(),
                                  "n_factors": self.factors.parallel_n_factors_},
            "rotation": self.factors.rotation_,
            "rotation_reason": self.factors.rotation_reason_,
            "factor_correlations": self.factors.factor_correlations_.round(4).to_dict(),
            "scale_correlations": self.scale_correlations.round(4).to_dict(),
            "scale_flags": self.scale_flags.round(4).to_dict(orient="records"),
            "eigenvalues": self.factors.eigenvalues_.round(4).tolist(),
            "loadings": self.factors.loadings_.round(4).to_dict(),
            "reliability": self.reliability.to_dict(orient="records"),
            "method": self.model.method,
        }


def segment_psychographic(
    survey: pd.DataFrame | None,
    customers: pd.DataFrame | None = None,
    transactions: pd.DataFrame | str | Path | None = None,
    *,
    items: Sequence[str] | None = None,
    scales: dict[str, list[str]] | None = None,
    item_labels: dict[str, str] | None = None,
    reverse: Sequence[str] | None = None,
    spend: pd.Series | None = None,
    min_answered: float = 0.5,
    n_factors: int | None = None,
    rotation: str | None = "auto",
    method: str = "kmeans",
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    min_segment_size: int = 30,
    n_bootstrap: int = 5,
    random_state: int | None = 42,
) -> PsychographicResult:
    """Reliability, factors and attitude segments from a Likert survey.

    Parameters
    ----------
    survey : DataFrame or None
        Validated survey; None (no survey in the run) gives an unavailable result.
    customers, transactions : DataFrame, optional
        To count respondents not in the customer table and to join purchase value; of the
        transactions only :data:`TRANSACTION_COLUMNS` are read. ``transactions`` may be the run's
        Parquet file (``run.parquet("transactions")``), summed by DuckDB in place.
    items : list of str, optional
        Item columns (config ``survey.items``; default every column but ``customer_id`` and
        ``response_date``).
    scales : dict, optional
        Config ``survey.scales``.
    item_labels : dict, optional
        Item wording.
    reverse : list of str, optional
        Reverse-worded items (config ``survey.reverse``; already flipped by the data contract),
        marked "(reversed)" in the loadings.
    spend : Series, optional
        Value per customer when there are no transactions.
    min_answered, n_factors, rotation, method, k, k_range, n_bootstrap
        See :func:`prepare_responses`, :class:`PsychographicFactors`, :class:`PsychographicClusters`.
    min_segment_size : int
        Smallest useful segment (as a share of respondents, at least 2%).
    random_state : int, optional

    Returns
    -------
    PsychographicResult
    """
    if survey is None or len(survey) == 0:
        return PsychographicResult(available=False, message=(
            "Psychographic segmentation is not available in this data: the run has no survey. Add a survey source "
            "(sources.survey) with Likert items listed under survey.items in the run config to enable this page."))
    items = list(items or [c for c in survey.columns if c not in ("customer_id", "response_date")])
    if len(items) < 3:
        return PsychographicResult(available=False, message=f"Psychographic segmentation needs at least 3 survey items; the config lists {items}.")
    ids = customers["customer_id"].astype(str) if customers is not None else None
    responses = prepare_responses(survey, items, scales=scales, min_answered=min_answered, customer_ids=ids)
    notes = list(responses.notes)
    constant = [c for c in items if responses.answers[c].nunique() < 2] if len(responses.answers) else items
    if constant:
        notes.append(f"Items with a single answer for every respondent are left out of the factors: {constant}.")
    usable = [c for c in items if c not in constant]
    if len(responses.answers) < 10 or len(usable) < 3:
        return PsychographicResult(available=False, message=(
            f"Psychographic segmentation is not possible: {len(responses.answers)} usable respondents and {len(usable)} items "
            "with varied answers (at least 10 and 3 are needed)."), notes=notes, responses=responses)
    configured = {n: [i for i in its if i in usable] for n, its in (scales or {}).items()}
    factors = PsychographicFactors(n_factors=n_factors, rotation=rotation, scales={n: its for n, its in configured.items() if its} or None,
                                   item_labels=item_labels, random_state=random_state)
    factors.fit(responses.answers[usable])
    scales_used = configured or factors.item_scales()
    scale_corr = scale_correlations(responses.answers[usable], {n: its for n, its in configured.items() if its}) if configured else pd.DataFrame()
    flags = (scale_overlaps(scale_corr, scale_shares(factors.loadings_, configured)) if not scale_corr.empty
             else pd.DataFrame(columns=["scale_a", "scale_b", "r", "factor", "reason"]))
    source = "the config's survey.scales" if scales else "each factor's main items, as the config lists no survey.scales"
    rel = reliability(responses.observed, scales_used)
    scores = factors.transform(responses.answers[usable])
    n = len(scores)
    clusters = PsychographicClusters(method=method, n_clusters=k, k_range=k_range, n_bootstrap=n_bootstrap,
                                     min_segment_pct=max(2.0, 100.0 * min_segment_size / n), random_state=random_state)
    try:
        clusters.fit(scores)
    except InfeasibleK:
        raise
    except ValueError as exc:
        return PsychographicResult(available=False, message=f"Psychographic segments are not possible: {exc}.", notes=notes,
                                   responses=responses, reliability=rel, reliability_source=source, factors=factors, scores=scores,
                                   scale_correlations=scale_corr, scale_flags=flags)
    notes += clusters.notes_
    described = describe_segments(scores, clusters.labels_)
    labels = pd.Series(described["segment"].reindex(clusters.labels_).to_numpy(), index=scores.index)
    value, value_source = customer_value(customers, transactions, spend) if customers is not None else (None, "no customer table")
    known = scores.index.isin(ids) if ids is not None else np.zeros(n, dtype=bool)
    respondent_value = value.reindex(scores.index) if value is not None else None
    profiles = segment_sizes(labels, respondent_value)
    known_count = pd.Series(known, index=scores.index).groupby(labels.to_numpy()).sum()
    profiles["known_customers"] = profiles["segment"].map(known_count).astype(int)
    profiles["revenue_per_customer"] = profiles["revenue"] / profiles["known_customers"].where(profiles["known_customers"] > 0)
    by_name = described.set_index("segment")
    profiles = profiles.join(by_name, on="segment")
    out_labels = pd.DataFrame({"customer_id": scores.index.to_numpy(), "psychographic_segment": labels.to_numpy()})
    for factor in scores.columns:
        out_labels[f"factor_{slug(factor)}"] = scores[factor].round(4).to_numpy()
    return PsychographicResult(available=True, notes=notes, responses=responses, reliability=rel, reliability_source=source,
                               factors=factors, scale_correlations=scale_corr, scale_flags=flags, scores=scores, model=clusters, labels=out_labels, profiles=profiles,
                               value_source=value_source, reverse=list(reverse or []))
