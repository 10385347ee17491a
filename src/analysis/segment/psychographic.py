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
3. **Factors**: scikit-learn ``FactorAnalysis`` with varimax rotation on standardised items; the
   number of factors from the Kaiser rule (eigenvalues of the item correlation matrix above 1)
   or the config. Each factor is named from its top-loading items: after a configured scale when
   most of its items belong to one, else from the item wording (``params.12_psychographic.item_labels``)
   or the item names.
4. **Segments**: k-means (or a Gaussian mixture) on the factor scores, k chosen by
   :mod:`analysis.segment.selection`, each segment named by its highest and lowest factors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import FactorAnalysis
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from ..features import slug
from .base import BaseSegmenter, InfeasibleK, SegmentationResult
from .common import customer_value, segment_sizes, unique_names

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


def name_factors(loadings: pd.DataFrame, *, scales: dict[str, list[str]] | None = None,
                 item_labels: dict[str, str] | None = None, min_loading: float = 0.4) -> list[str]:
    """A readable, unique name per factor (column of ``loadings``: items x factors).

    A factor is named after a configured scale when at least half of the scale's items load
    mainly on it (by at least ``min_loading``) and they are most of its main items (after two
    scales, "Adventure & social status", when two scales share a factor about equally); otherwise
    after the wording (``item_labels``) of its highest-loading worded item, or, without wording,
    its two top-loading item names.
    """
    main = loadings.abs().idxmax(axis=1)
    strong = loadings.abs().max(axis=1) >= min_loading
    names = []
    for factor in loadings.columns:  # one pass per factor (a handful)
        own = set(main.index[(main == factor) & strong])
        hits = {scale: len(own & set(its)) for scale, its in (scales or {}).items() if its}
        qualifying = sorted((s for s, h in hits.items() if h and h >= 0.5 * len(scales[s])), key=lambda s: -hits[s])
        if qualifying:
            lead = [s for s in qualifying if hits[s] >= 0.5 * hits[qualifying[0]]][:2]
            if sum(hits[s] for s in lead) >= 0.5 * len(own):
                names.append(" & ".join([_pretty(lead[0])] + [str(s).replace("_", " ") for s in lead[1:]]))
                continue
        ranked = loadings[factor].abs().sort_values(ascending=False)
        worded = [i for i in ranked.index[ranked >= min_loading] if i in (item_labels or {})]
        if worded:
            text = str(item_labels[worded[0]])
            names.append(_pretty(text if len(text) <= 48 else text[:45].rstrip() + "..."))
        else:
            names.append(" / ".join(map(str, ranked.index[:2])))
    return unique_names(pd.Series(names)).tolist()


class PsychographicFactors(TransformerMixin, BaseEstimator):
    """Rotated factor analysis of standardised survey items, named factors.

    Parameters
    ----------
    n_factors : int or None
        Number of factors; None applies the Kaiser rule (eigenvalues > 1).
    rotation : {"varimax", "quartimax"} or None
    scales : dict, optional
        Configured scales, for naming factors.
    item_labels : dict, optional
        Item -> wording, for naming factors and labelling loadings.
    random_state : int, optional

    Attributes
    ----------
    eigenvalues_ : ndarray
        Of the item correlation matrix, descending.
    n_factors_ : int
    loadings_ : DataFrame
        Items x factors (named); each factor's sign makes its loadings mostly positive.
    factor_names_ : list of str
    n_factors_reason_ : str

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.normal(size=(300, 2))
    >>> X = pd.DataFrame(np.c_[f[:, [0]] + .3 * rng.normal(size=(300, 3)), f[:, [1]] + .3 * rng.normal(size=(300, 3))],
    ...                  columns=["a1", "a2", "a3", "b1", "b2", "b3"])
    >>> fa = PsychographicFactors(scales={"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2", "b3"]}, random_state=0).fit(X)
    >>> fa.n_factors_, fa.factor_names_
    (2, ['Alpha', 'Beta'])
    """

    def __init__(self, n_factors: int | None = None, rotation: str | None = "varimax", scales: dict[str, list[str]] | None = None,
                 item_labels: dict[str, str] | None = None, random_state: int | None = None):
        self.n_factors = n_factors
        self.rotation = rotation
        self.scales = scales
        self.item_labels = item_labels
        self.random_state = random_state

    def fit(self, answers: pd.DataFrame, y: Any = None) -> PsychographicFactors:
        """Fit on complete answers (respondents x items)."""
        self.items_ = list(answers.columns)
        X = answers.to_numpy(dtype=float)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        Z = (X - self.mean_) / self.scale_
        corr = np.corrcoef(Z, rowvar=False) if Z.shape[1] > 1 else np.ones((1, 1))
        self.eigenvalues_ = np.sort(np.linalg.eigvalsh(np.nan_to_num(corr)))[::-1]
        kaiser = max(1, int((self.eigenvalues_ > 1).sum()))
        if self.n_factors:
            self.n_factors_ = int(min(self.n_factors, len(self.items_)))
            self.n_factors_reason_ = f"{self.n_factors_} factors, as set in the config (the Kaiser rule would give {kaiser})."
        else:
            self.n_factors_ = kaiser
            self.n_factors_reason_ = (f"{kaiser} factor(s): the eigenvalues of the item correlations above 1 (Kaiser rule), "
                                      f"together explaining {100 * self.eigenvalues_[:kaiser].sum() / len(self.items_):.0f}% of the item variance.")
        rotation = self.rotation if self.n_factors_ > 1 else None
        self.fa_ = FactorAnalysis(n_components=self.n_factors_, rotation=rotation, random_state=self.random_state).fit(Z)
        raw = self.fa_.components_.T  # items x factors
        signs = np.where(raw.sum(axis=0) >= 0, 1.0, -1.0)
        order = np.argsort(-(raw ** 2).sum(axis=0), kind="stable")
        self.signs_, self.order_ = signs[order], order
        loadings = raw[:, order] * self.signs_
        provisional = pd.DataFrame(loadings, index=self.items_, columns=[f"F{i + 1}" for i in range(self.n_factors_)])
        self.factor_names_ = name_factors(provisional, scales=self.scales, item_labels=self.item_labels)
        self.loadings_ = provisional.set_axis(self.factor_names_, axis=1)
        scores = self._raw_scores(answers)
        self.score_mean_, self.score_std_ = scores.mean(axis=0), np.where(scores.std(axis=0) > 0, scores.std(axis=0), 1.0)
        return self

    def _raw_scores(self, answers: pd.DataFrame) -> np.ndarray:
        Z = (answers[self.items_].to_numpy(dtype=float) - self.mean_) / self.scale_
        return self.fa_.transform(Z)[:, self.order_] * self.signs_

    def transform(self, answers: pd.DataFrame) -> pd.DataFrame:
        """Standardised factor scores (mean 0, sd 1 over the fitted respondents), named columns."""
        check_is_fitted(self, "fa_")
        scores = (self._raw_scores(answers) - self.score_mean_) / self.score_std_
        return pd.DataFrame(scores, index=answers.index, columns=self.factor_names_)

    def item_scales(self, min_loading: float = 0.4) -> dict[str, list[str]]:
        """Items grouped by the factor they load on most (at least ``min_loading``): scales for
        reliability when the config has none."""
        check_is_fitted(self, "fa_")
        main = self.loadings_.abs().idxmax(axis=1)
        strong = self.loadings_.abs().max(axis=1) >= min_loading
        return {name: list(main.index[(main == name) & strong]) for name in self.factor_names_}


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
                 n_bootstrap: int = 5, min_segment_pct: float = 2.0, n_reference: int = 3, random_state: int | None = None):
        self.method = method
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.n_bootstrap = n_bootstrap
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
                  f"{self.factors.n_factors_} factors ({', '.join(self.factors.factor_names_)}); scale reliability (alpha) "
                  f"{self.reliability['alpha'].min():.2f}-{self.reliability['alpha'].max():.2f}.")]
        lines += [f"{r.segment}: {r.customers_pct:.0f}% of respondents" for r in self.profiles.itertuples()]
        return lines

    def payload(self) -> dict[str, Any]:
        return {
            "factors": self.factors.factor_names_,
            "n_factors_reason": self.factors.n_factors_reason_,
            "eigenvalues": self.factors.eigenvalues_.round(4).tolist(),
            "loadings": self.factors.loadings_.round(4).to_dict(),
            "reliability": self.reliability.to_dict(orient="records"),
            "method": self.model.method,
        }


def segment_psychographic(
    survey: pd.DataFrame | None,
    customers: pd.DataFrame | None = None,
    transactions: pd.DataFrame | None = None,
    *,
    items: Sequence[str] | None = None,
    scales: dict[str, list[str]] | None = None,
    item_labels: dict[str, str] | None = None,
    reverse: Sequence[str] | None = None,
    spend: pd.Series | None = None,
    min_answered: float = 0.5,
    n_factors: int | None = None,
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
        To count respondents not in the customer table and to join purchase value.
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
    min_answered, n_factors, method, k, k_range, n_bootstrap
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
    factors = PsychographicFactors(n_factors=n_factors, scales=scales, item_labels=item_labels, random_state=random_state)
    factors.fit(responses.answers[usable])
    scales_used = {n: [i for i in its if i in usable] for n, its in (scales or {}).items()} or factors.item_scales()
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
                                   responses=responses, reliability=rel, reliability_source=source, factors=factors, scores=scores)
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
                               factors=factors, scores=scores, model=clusters, labels=out_labels, profiles=profiles,
                               value_source=value_source, reverse=list(reverse or []))
