"""Scoring new data with a run's saved models, without refitting.

A run saves, for every basis (:meth:`analysis.workspace.Run.save_result`):

* the fitted segmenter (``models/<basis>.joblib``: its ``predict(X)`` reassigns without refitting)
  and any fitted part the basis needs before it (the psychographic factor model);
* a **model card** in the manifest (``models.<basis>.saved_model``, :func:`model_card`): the
  package version, the contract version, the features the model reads, the training period, the
  notebook parameters it was fitted with, and the state that turns predictions into the run's
  labels (segment names of each cluster, RFM rules and cut points, areas and their segments).

:func:`load_model` reads both back and :func:`check_features` refuses a model whose features or
contract differ from what the new data give, in one sentence naming the differences.
:func:`score_basis` then labels the new customers the way the fitting run labelled its own:
scoring a run's own data with its own models reproduces its labels exactly.

One small adapter per basis (:data:`ADAPTERS`) says how to build the model's input from a run's
validated tables and how to turn predictions into labels; the fitted models do the rest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from . import io
from .config import CONTRACT_COLUMNS, NOTEBOOK_DIR, notebook_parameters

#: Version of the model card layout; a card from a newer layout is refused.
CARD_FORMAT = 1

#: Placeholder in labels for customers a saved model cannot place (e.g. no coordinates).
UNPLACED = "(not scored)"


class ModelMismatch(ValueError):
    """A saved model does not fit the data it is applied to (features, contract or card format)."""


def contract_version() -> str:
    """A short fingerprint of the data contract (its tables and column names).

    Models read contract columns, so a model saved under another contract may read columns that
    mean something else now; the fingerprint changes whenever a table or column is added,
    removed or renamed in :data:`analysis.config.CONTRACT_COLUMNS`.

    Examples
    --------
    >>> len(contract_version())
    12
    """
    text = json.dumps({t: list(c) for t, c in sorted(CONTRACT_COLUMNS.items())}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def package_version() -> str:
    """The installed version of this package (``clientele``)."""
    try:
        return metadata.version("clientele")
    except metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------


@dataclass
class SavedModel:
    """A basis's saved model as read back from a run folder.

    Attributes
    ----------
    basis : str
    run_id : str
        The run (folder name) that fitted it.
    estimator : object or None
        The fitted segmenter (``predict(X)``), None for rule-based segments (areas).
    parts : dict
        Other fitted pieces the basis needs (e.g. ``{"factors": PsychographicFactors}``).
    card : dict
        The model card (:func:`model_card`).
    verdict : str or None
        The basis's verdict in the fitting run (``clear``, ``weak``, ``none``, ``rules``).
    verdict_evidence : dict or None
        The numbers and the sentence behind it.
    folder : RunFolder or None
        The fitting run.
    """

    basis: str
    run_id: str
    estimator: Any
    parts: dict[str, Any]
    card: dict[str, Any]
    verdict: str | None = None
    folder: io.RunFolder | None = None
    verdict_evidence: dict[str, Any] | None = None

    @property
    def features(self) -> list[str]:
        return list(self.card.get("features", []))

    @property
    def trained_on(self) -> dict[str, Any]:
        return dict(self.card.get("trained_on", {}))

    def describe(self) -> pd.DataFrame:
        """The card as a two-column table for a page (item, detail)."""
        period = self.trained_on
        rows = [
            ("fitted in run", self.run_id),
            ("model", self.card.get("estimator") or "rules (no fitted estimator)"),
            ("features", ", ".join(self.features)),
            ("training data", f"{period.get('first') or '?'} to {period.get('last') or '?'} (as of {period.get('as_of', '?')})"),
            ("customers fitted on", f"{period.get('customers', 0):,}"),
            ("verdict when fitted", self.verdict or "–"),
            ("package version", self.card.get("package_version", "?")),
            ("contract version", self.card.get("contract_version", "?")),
        ]
        return pd.DataFrame(rows, columns=["item", "detail"])


def _training_period(run: Any) -> dict[str, Any]:
    transactions = run.table("transactions", columns=["timestamp"])
    period: dict[str, Any] = {"config": run.config.name, "as_of": str(run.config.as_of), "min_date": str(run.config.min_date)}
    if transactions is not None and len(transactions):
        stamps = pd.to_datetime(transactions["timestamp"])
        period.update(first=f"{stamps.min():%Y-%m-%d}", last=f"{stamps.max():%Y-%m-%d}")
    return period


def fit_parameters(run: Any, notebook: str) -> dict[str, Any]:
    """The parameters a basis notebook ran with: its parameters cell's defaults, then the config's
    ``params.<notebook>`` and the run-level ``seed`` (what papermill injected)."""
    path = NOTEBOOK_DIR / f"{notebook}.ipynb"
    declared = notebook_parameters(path) if path.exists() else {}
    out = {k: v for k, v in declared.items() if k not in ("config_path", "run_dir")}
    out.update(run.config.run_parameters(declared))
    out.update(run.params(notebook))
    return out


def model_card(result: Any, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model card of a basis result, and the fitted parts saved beside its estimator.

    Parameters
    ----------
    result : analysis.segment.base.SegmentationResult
        An available result.
    run : analysis.workspace.Run
        The run that fitted it (config, tables, notebook parameters).

    Returns
    -------
    card : dict
        ``card_format``, ``basis``, ``estimator``, ``features``, ``package_version``,
        ``contract_version``, ``trained_on`` (config, as_of, first and last transaction date,
        customers), ``fit_parameters`` and ``state`` (what turns predictions into labels).
    parts : dict
        Name -> fitted object to save as ``<basis>_<name>`` (empty for most bases).
    """
    adapter = ADAPTERS.get(result.basis)
    if adapter is None:
        return {}, {}
    from .segment.registry import get  # the registry imports no model code

    params = fit_parameters(run, get(result.basis).notebook)
    card = {
        "card_format": CARD_FORMAT,
        "basis": result.basis,
        "estimator": type(result.model).__name__ if result.model is not None else None,
        "features": adapter.features(result, run),
        "package_version": package_version(),
        "contract_version": contract_version(),
        "trained_on": {**_training_period(run), "customers": len(result.labels)},
        "fit_parameters": params,
        "state": adapter.state(result, run, params),
        "label_columns": [str(c) for c in result.labels.columns],
    }
    parts = adapter.parts(result)
    card["parts"] = sorted(parts)
    return card, parts


def load_model(folder: io.RunFolder, basis: str) -> SavedModel | None:
    """The saved model of ``basis`` in a run folder, or None when the run saved none.

    Raises
    ------
    ModelMismatch
        When the card is from a newer layout than this package reads, or the estimator file
        is missing although the card names one.
    """
    entry = folder.read_model(basis) or {}
    card = entry.get("saved_model")
    if not card:
        return None
    where = f"run {folder.path.name}"
    if int(card.get("card_format", 0)) > CARD_FORMAT:
        raise ModelMismatch(f"{where}: the saved {basis} model card has layout {card.get('card_format')}, newer than this "
                            f"package reads ({CARD_FORMAT}; package {package_version()}). Update the package, or refit.")
    estimator = io.read_estimator(folder, basis) if card.get("estimator") else None
    if card.get("estimator") and estimator is None:
        raise ModelMismatch(f"{where}: the manifest names a saved {basis} model ({card['estimator']}) but its file is "
                            f"missing from the run's models. Refit with `analysis run`, or score with a complete run.")
    parts = {name: io.read_estimator(folder, f"{basis}_{name}") for name in card.get("parts", [])}
    return SavedModel(basis, folder.path.name, estimator, parts, card, entry.get("verdict"), folder, entry.get("verdict_evidence"))


def fitted_profiles(model: SavedModel) -> pd.DataFrame | None:
    """The segment profiles the fitting run saved for the model's basis (None when unknown)."""
    return model.folder.segments_tables().get(model.basis) if model.folder is not None else None


def feature_differences(saved: list[str], found: list[str]) -> tuple[list[str], list[str]]:
    """(features the model reads that the data lack, features the data give that the model lacks)."""
    return [f for f in saved if f not in found], [f for f in found if f not in saved]


def check_features(model: SavedModel, found: list[str]) -> list[str]:
    """Refuse a saved model that does not fit this run's data; return notes when it does.

    The model must have been saved under the same contract, and read exactly the features the
    basis would use on this data (same names, none missing, none added); a different package
    version is only noted.

    Parameters
    ----------
    model : SavedModel
    found : list of str
        The features this run's data give for the basis (``ADAPTERS[basis].found``).

    Returns
    -------
    list of str
        Notes (e.g. another package version).

    Raises
    ------
    ModelMismatch
        One sentence naming what differs and how to fix it.

    Examples
    --------
    >>> m = SavedModel("behavioral", "r1", None, {}, {"features": ["frequency", "recency_days"],
    ...                "contract_version": contract_version(), "package_version": package_version()})
    >>> check_features(m, ["frequency", "sessions_per_month"])
    Traceback (most recent call last):
    ...
    analysis.scoring.ModelMismatch: The behavioral model saved by run r1 reads features ['frequency', 'recency_days'], but this run's data give ['frequency', 'sessions_per_month']: missing here ['recency_days']; not in the model ['sessions_per_month']. Score with a model fitted on data with the same columns (refit with `analysis run`), or map the missing columns in the run config.
    """
    card = model.card
    saved_contract = card.get("contract_version")
    if saved_contract != contract_version():
        raise ModelMismatch(
            f"The {model.basis} model saved by run {model.run_id} was fitted under data contract {saved_contract}, and this "
            f"package reads contract {contract_version()} (package {package_version()}, saved with {card.get('package_version', '?')}): "
            f"columns may mean something else now. Refit with `analysis run` on this package.")
    missing, extra = feature_differences(model.features, list(found))
    if missing or extra:
        parts = ([f"missing here {missing}"] if missing else []) + ([f"not in the model {extra}"] if extra else [])
        raise ModelMismatch(
            f"The {model.basis} model saved by run {model.run_id} reads features {model.features}, but this run's data give "
            f"{list(found)}: {'; '.join(parts)}. Score with a model fitted on data with the same columns (refit with "
            f"`analysis run`), or map the missing columns in the run config.")
    notes = []
    if card.get("package_version") != package_version():
        notes.append(f"The {model.basis} model was saved by package version {card.get('package_version')}; this is {package_version()}.")
    return notes


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


@dataclass
class ScoredBasis:
    """One basis scored on a run's data with a saved model.

    Attributes
    ----------
    basis : str
    labels : DataFrame
        The same columns the fitting run saved for this basis (``customer_id`` first).
    profiles : DataFrame
        ``segment``, ``customers``, ``customers_pct``, ``revenue``, ``revenue_pct``,
        ``revenue_per_customer`` per segment on this run's data.
    model : SavedModel
    notes : list of str
    """

    basis: str
    labels: pd.DataFrame
    profiles: pd.DataFrame
    model: SavedModel
    notes: list[str] = field(default_factory=list)

    @property
    def segment_column(self) -> str:
        from .segment.registry import get

        return get(self.basis).segment_column

    def shares(self, fitted_profiles: pd.DataFrame | None) -> pd.DataFrame:
        """Share of customers per segment here and in the fitting run (``customers_pct_fitted``)."""
        out = self.profiles[["segment", "customers", "customers_pct"]].copy()
        if fitted_profiles is not None and {"segment", "customers_pct"} <= set(fitted_profiles.columns):
            out["customers_pct_fitted"] = out["segment"].map(fitted_profiles.set_index("segment")["customers_pct"])
            out["change_pp"] = out["customers_pct"] - out["customers_pct_fitted"]
        return out

    def summary(self) -> dict[str, Any]:
        """Headline facts for the index (``title``, ``lines``, ``verdict``), like a fitted basis's."""
        from .segment.registry import get

        period = self.model.trained_on
        top = self.profiles.head(4)
        lines = [(f"Scored with the saved model of run {self.model.run_id} (fitted on data to {period.get('last') or period.get('as_of')}), "
                  f"no refit: {len(self.labels):,} customers in {len(self.profiles)} segments.")]
        lines += [f"{r.segment}: {r.customers_pct:.0f}% of customers" for r in top.itertuples()]
        return {"title": get(self.basis).title + " (scored)", "lines": lines + self.notes, "verdict": self.model.verdict}

    def model_payload(self) -> dict[str, Any]:
        """The manifest entry ``models.<basis>`` of the scoring run: the fitting run's card and verdict."""
        return {"available": True, "scored_from": self.model.run_id, "verdict": self.model.verdict,
                "verdict_evidence": self.model.verdict_evidence, "saved_model": self.model.card, "segments": self.profiles.set_index("segment")["customers"].astype(int).to_dict(),
                "notes": list(self.notes)}


def score_basis(model: SavedModel, run: Any) -> ScoredBasis:
    """Label a run's customers with a saved model, without refitting.

    Parameters
    ----------
    model : SavedModel
        From :func:`load_model` on the fitting run.
    run : analysis.workspace.Run
        The run whose data are scored.

    Returns
    -------
    ScoredBasis

    Raises
    ------
    ModelMismatch
        When the model's features or contract differ from this data (:func:`check_features`).
    analysis.config.NotApplicable
        When the run lacks the table the basis needs.
    """
    adapter = ADAPTERS[model.basis]
    notes = check_features(model, adapter.found(run, model.card))
    labels = adapter.score(model, run)
    saved_columns = model.card.get("label_columns") or list(labels.columns)
    lacking = [c for c in saved_columns if c not in labels.columns]
    if lacking:  # e.g. CLV intervals, which come from posterior draws of a fit
        notes.append(f"Not scored without a refit: {', '.join(lacking)} (the fitting run's export has them).")
    labels = labels[[c for c in saved_columns if c in labels.columns]]
    from .segment.common import VALUE_COLUMNS, customer_value, segment_sizes
    from .segment.registry import get

    column = get(model.basis).segment_column
    customers = run.table("customers")
    value = customer_value(customers, run.table("transactions", columns=VALUE_COLUMNS))[0] if customers is not None else None
    segments = labels.set_index("customer_id")[column]
    profiles = segment_sizes(segments, value)
    return ScoredBasis(model.basis, labels, profiles, model, notes)


def rescore(folder: io.RunFolder, run: Any) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """This run's customers labelled by every saved model of an earlier run (no refit).

    Migration read on these labels compares customers against *fixed* segment definitions (the
    earlier run's), where two refits could rename or redraw segments between runs.

    Parameters
    ----------
    folder : analysis.io.RunFolder
        The earlier run.
    run : analysis.workspace.Run
        This run.

    Returns
    -------
    labels : dict
        Basis -> labels frame (the columns the earlier run saved), for every basis scored.
    notes : list of str
        One sentence per basis that could not be scored, and why.
    """
    from .config import NotApplicable
    from .segment.registry import BASES

    scored, notes = {}, []
    for name in BASES:  # five bases at most
        if name not in ADAPTERS:
            continue
        try:
            model = load_model(folder, name)
            if model is not None:
                scored[name] = score_basis(model, run).labels
        except (ModelMismatch, NotApplicable) as exc:
            notes.append(f"{name}: not scored with run {folder.path.name}'s model. {exc}")
    return scored, notes


# --------------------------------------------------------------------------------------------
# Runs: which run's models score this one, saving what they assign
# --------------------------------------------------------------------------------------------

#: Fact a scoring run holds (written by :func:`analysis.runner.score` before any page runs).
SCORED_FROM = "scored_from"


def scored_from(run: Any) -> io.RunFolder | None:
    """The run whose saved models score this run (``analysis score --model-run``), or None."""
    fact = run.folder.read_fact(SCORED_FROM)
    return io.RunFolder(fact["path"]) if fact and fact.get("path") else None


def saved_model_for(run: Any, basis: str, model_run: str = "") -> SavedModel:
    """The saved model of ``basis`` that scores this run: from ``model_run`` (a run folder) or,
    when empty, from the run this scoring run was started from.

    Raises
    ------
    analysis.config.NotApplicable
        When no model run is known, or it saved no model of this basis; the sentence says how
        to get one.
    ModelMismatch
        See :func:`load_model`.
    """
    from .config import NotApplicable
    from .segment.registry import get

    folder = io.RunFolder(model_run) if model_run else scored_from(run)
    if folder is None:
        raise NotApplicable(
            "This page labels a run's customers with another run's saved models. Start it with "
            f"`analysis score --model-run <run id> --config {run.config.display_path()}`, or set model_run to a run folder.")
    model = load_model(folder, basis)
    if model is None:
        page = get(basis).notebook
        raise NotApplicable(
            f"Run {folder.path.name} saved no {basis} model (its {page} page did not apply or was not run), so there is "
            f"nothing to score this basis with. Fit one with `analysis run` on data that have it, then score with that run.")
    if basis not in ADAPTERS:
        raise NotApplicable(f"Scoring the {basis} basis with a saved model is not supported by this package version.")
    return model


def save_scored(run: Any, scored: ScoredBasis) -> None:
    """Save a scored basis the way a fitting run saves its result: labels, profiles (and those of
    extra segmentations such as RFM), the manifest entry with the fitting run's card, the index
    summary, and the model itself, so this run can in turn score later data."""
    from .segment.common import segment_sizes
    from .segment.registry import get

    basis = get(scored.basis)
    run.save_labels(basis.name, scored.labels)
    run.save_segments(basis.name, scored.profiles)
    by_customer = scored.labels.set_index("customer_id")
    for column in basis.extra_segment_columns:  # e.g. rfm_segment, profiled like the fitting run did
        if column in by_customer:
            run.save_segments(column.removesuffix("_segment"), segment_sizes(by_customer[column]))
    if scored.model.estimator is not None:
        run.save_estimator(basis.name, scored.model.estimator)
    for part, estimator in scored.model.parts.items():
        run.save_estimator(f"{basis.name}_{part}", estimator)
    run.save_model(basis.name, scored.model_payload())
    run.save_fact(f"summary_{basis.notebook}", scored.summary())


def previous_for(run: Any, previous_run: str = "") -> io.RunFolder | None:
    """The run the monitoring page compares with: ``previous_run`` when given, else the run this
    run was scored from, else the newest earlier complete run of the same config; None if none."""
    if previous_run:
        return io.RunFolder(previous_run)
    return scored_from(run) or run.previous_run()


def save_migration(run: Any, previous: io.RunFolder, transitions: pd.DataFrame) -> str:
    """Keep every transition with the run, and say where.

    Always a run table (``migration``). In a scoring run it is also ``exports/migration.csv``: the
    comparison run is then fixed by ``--model-run`` (``scored_from`` in the manifest). A refitted run
    compares with whichever run came before it, so the table stays out of its exports, which depend
    only on the inputs and the config.
    """
    run.save_table("migration", transitions)
    source = scored_from(run)
    if source is not None and source.path.resolve() == previous.path.resolve():
        run.folder.write_export("migration.csv", transitions)
        return f"Every transition ({len(transitions):,} rows) is in `exports/migration.csv`."
    return (f"Every transition ({len(transitions):,} rows) is kept with the run's tables; it is exported as "
            "`exports/migration.csv` by scoring runs (`analysis score`), whose comparison run is fixed.")


@dataclass
class CurrentView:
    """This run's labels as the monitoring page compares them with a previous run's.

    Attributes
    ----------
    labels : dict
        Basis -> labels frame: this run's data assigned by the previous run's saved models where
        they fit (fixed segment definitions), else this run's own segments (matched by name).
    rescored : list of str
        Bases assigned by the previous run's models.
    refit : dict
        This run's own labels (for the agreement with the saved models).
    how : str
        One sentence for the page.
    notes : list of str
    scored_run : bool
        True when this run was itself scored with the previous run's models (nothing refitted).
    """

    labels: dict[str, pd.DataFrame]
    rescored: list[str]
    refit: dict[str, pd.DataFrame]
    how: str
    notes: list[str] = field(default_factory=list)
    scored_run: bool = False

    def agreement(self) -> pd.DataFrame | None:
        """Per segmentation, the saved models' assignment against this run's refit (None in a scored run)."""
        from .monitoring import model_agreement

        if self.scored_run:
            return None
        return model_agreement({b: self.labels[b] for b in self.rescored}, self.refit)


def current_view(previous: io.RunFolder, run: Any) -> CurrentView:
    """This run's customers as assigned by ``previous``'s saved models (see :class:`CurrentView`)."""
    own = run.folder.read_labels()
    source = scored_from(run)
    if source is not None and source.path.resolve() == previous.path.resolve():
        return CurrentView(own, sorted(own), own, f"This run was scored with run {previous.path.name}'s saved models (no refit), "
                           "so segments mean the same in both runs.", scored_run=True)
    rescored, notes = rescore(previous, run)
    labels = {**own, **rescored}
    if rescored:
        how = (f"Segments of {', '.join(sorted(rescored))} are read with run {previous.path.name}'s saved models applied to this "
               "run's customers, so migration compares customers against fixed segment definitions")
        rest = sorted(set(own) - set(rescored))
        how += (f"; {', '.join(rest)} compare(s) this run's own segments with the previous run's by name." if rest else ".")
    else:
        how = (f"Run {previous.path.name} holds no saved model this run's data fit, so this run's own segments are compared with "
               "the previous run's by name (a refit can redraw segments under the same name).")
    return CurrentView(labels, sorted(rescored), own, how, notes)


# --------------------------------------------------------------------------------------------
# One adapter per basis: the model's input from the run's tables, predictions -> labels
# --------------------------------------------------------------------------------------------


def _names_by_cluster(clusters: np.ndarray, names: np.ndarray) -> dict[str, str]:
    """Segment name of each cluster id (names are a function of the cluster), keys as text (JSON)."""
    frame = pd.DataFrame({"cluster": np.asarray(clusters).astype(int), "name": np.asarray(names, dtype=object)})
    return {str(c): str(n) for c, n in frame.drop_duplicates("cluster").sort_values("cluster").itertuples(index=False)}


def _named(clusters: np.ndarray, state: dict[str, Any]) -> np.ndarray:
    names = state["segments"]
    return np.array([names.get(str(int(c)), UNPLACED) for c in clusters], dtype=object)


class _Adapter:
    """How one basis is scored: its features, its input and its labels."""

    basis: ClassVar[str] = ""

    def features(self, result: Any, run: Any) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self, result: Any, run: Any, params: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def parts(self, result: Any) -> dict[str, Any]:
        return {}

    def found(self, run: Any, card: dict[str, Any]) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, model: SavedModel, run: Any) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError


class _Behavioral(_Adapter):
    """Clusters from customer features; RFM scores from the saved cut points and rule table."""

    basis = "behavioral"

    @staticmethod
    def _rfm_columns() -> list[str]:
        from .segment.behavioral import RFM_SOURCES

        return [column for column, _ in RFM_SOURCES.values()]

    def features(self, result: Any, run: Any) -> list[str]:
        return list(dict.fromkeys([*result.model.columns_, *self._rfm_columns()]))

    def state(self, result: Any, run: Any, params: dict[str, Any]) -> dict[str, Any]:
        labels = result.labels
        return {"segments": _names_by_cluster(labels["behavioral_cluster"].to_numpy(), labels["behavioral_segment"].to_numpy()),
                "rfm_rules": result.rfm_rules, "rfm_edges": result.rfm_scores.attrs.get("edges", {}),
                "rfm_scores": int(result.rfm_rules.get("scores", 5))}

    def found(self, run: Any, card: dict[str, Any]) -> list[str]:
        from .features import constant_features
        from .segment.behavioral import cluster_columns

        feats = run.customer_features()  # the run's saved features, else from its transactions
        # a feature the same for every customer here counts only when the model reads it: the fit leaves such
        # a feature out (Online Retail's category loyalty, 1 for all without categories), and it separates no one
        same, read = set(constant_features(feats)), set(card.get("features", []))
        present = [c for c in cluster_columns(feats, vary=False) if c not in same or c in read]
        return list(dict.fromkeys([*present, *[c for c in self._rfm_columns() if c in feats]]))

    def score(self, model: SavedModel, run: Any) -> pd.DataFrame:
        from .segment.behavioral import behavioral_labels, rfm_scores, rfm_segments

        state = model.card["state"]
        feats = run.customer_features()
        clusters = np.asarray(model.estimator.predict(feats))
        scores = rfm_scores(feats, n_scores=state["rfm_scores"], edges=state["rfm_edges"])
        rfm = rfm_segments(scores, state["rfm_rules"])
        names = pd.DataFrame({"cluster": [int(c) for c in state["segments"]], "segment": list(state["segments"].values())})
        labels = behavioral_labels(feats.index, scores, rfm, clusters, names)
        labels["behavioral_segment"] = labels["behavioral_segment"].fillna(UNPLACED)
        return labels


class _Demographic(_Adapter):
    """k-prototypes on the customer table's attributes (numbers and categories)."""

    basis = "demographic"

    def features(self, result: Any, run: Any) -> list[str]:
        return [*result.model.numeric_, *result.model.categorical_]

    def state(self, result: Any, run: Any, params: dict[str, Any]) -> dict[str, Any]:
        profiles = result.profiles
        return {"segments": _names_by_cluster(profiles["cluster"].to_numpy(), profiles["segment"].to_numpy())}

    def found(self, run: Any, card: dict[str, Any]) -> list[str]:
        from .segment.demographic import DEFAULT_DERIVED, prepare_attributes

        params = card.get("fit_parameters", {})
        run.require("customers", page="Scoring demographic segments")
        attrs = prepare_attributes(run.table("customers"), numeric=params.get("numeric"), categorical=params.get("categorical"),
                                   derived=params.get("derived", DEFAULT_DERIVED))
        return [*attrs.numeric, *attrs.categorical]

    def score(self, model: SavedModel, run: Any) -> pd.DataFrame:
        from .segment.common import OTHER
        from .segment.demographic import prepare_attributes

        est = model.estimator
        attrs = prepare_attributes(run.table("customers"), numeric=list(est.numeric_), categorical=list(est.categorical_),
                                   derived=(), min_category_share=0.0)
        # column by column, as prepare_attributes builds it: the segmenter log-transforms income
        # in place in the array it reads, which must not be a read-only view of one numeric block
        frame = pd.DataFrame(index=attrs.frame.index)
        for col in [*est.numeric_, *est.categorical_]:  # a handful of columns
            values = attrs.frame[col]
            known = est.categories_.get(col, [])
            if OTHER in known:  # categories pooled as rare when fitted are unknown here: pool them the same way
                values = values.where(values.isin(known), OTHER)
            frame[col] = values.to_numpy(copy=True)
        clusters = np.asarray(est.predict(frame))
        return pd.DataFrame({"customer_id": frame.index.astype(str).to_numpy(), "demographic_segment": _named(clusters, model.card["state"])})


class _Geographic(_Adapter):
    """Spatial clusters of coordinates, or areas (full paths) mapped to the fitting run's segments."""

    basis = "geographic"
    COORDS: ClassVar[list[str]] = ["latitude", "longitude"]

    @staticmethod
    def _customers(run: Any, params: dict[str, Any]) -> pd.DataFrame:
        from .segment.geographic import enrich_from_lookup

        run.require("customers", page="Scoring geographic segments")
        lookup = io.read_yaml(params.get("region_lookup") or None, "us_states.yaml")
        return enrich_from_lookup(run.table("customers"), lookup)[0]

    @staticmethod
    def _paths(customers: pd.DataFrame, keys: list[str]) -> pd.Series:
        from .segment.common import MISSING

        text = customers[keys].astype(object).where(customers[keys].notna(), MISSING).astype(str)
        return text[keys[0]].str.cat([text[k] for k in keys[1:]], sep=" / ") if len(keys) > 1 else text[keys[0]]

    def features(self, result: Any, run: Any) -> list[str]:
        if result.model is not None:
            return list(self.COORDS)
        from .segment.geographic import level_keys

        level = self._level(result, run)
        return level_keys(level, result.levels)

    @staticmethod
    def _level(result: Any, run: Any) -> str:
        from .segment.geographic import rollup_segments

        return rollup_segments(result.customers, run.config.min_segment_size)[1]

    def state(self, result: Any, run: Any, params: dict[str, Any]) -> dict[str, Any]:
        labels = result.labels["geographic_segment"].to_numpy(dtype=object)
        if result.model is not None:
            located = result.customers[self.COORDS].notna().all(axis=1).to_numpy()
            return {"mode": "clusters", "segments": _names_by_cluster(result.model.labels_, labels[located])}
        from .segment.geographic import UNKNOWN_LOCATION, level_keys

        keys = level_keys(self._level(result, run), result.levels)
        known = labels != UNKNOWN_LOCATION
        paths = self._paths(result.customers, keys).to_numpy()[known]
        areas = pd.Series(labels[known], index=paths)
        # a pool: a segment named "Other ..." or holding several areas (small areas pooled within a parent)
        spread = pd.Series(paths).groupby(labels[known]).nunique()
        pooled = areas.str.startswith("Other").to_numpy() | (spread.reindex(labels[known]).to_numpy() > 1)
        pools: dict[str, str] = {}
        for depth in range(len(keys) - 1, 0, -1):  # parents, nearest first (a handful of levels)
            parents = pd.Series(labels[known][pooled], index=self._paths(result.customers, keys[:depth]).to_numpy()[known][pooled])
            pools.update({p: s.mode().iat[0] for p, s in parents.groupby(level=0) if p not in pools})
        return {"mode": "areas", "keys": keys, "areas": areas[~areas.index.duplicated()].to_dict(), "pools": pools,
                "other": "Other" if "Other" in set(labels) else None}

    def found(self, run: Any, card: dict[str, Any]) -> list[str]:
        customers = self._customers(run, card.get("fit_parameters", {}))
        if card["state"]["mode"] == "clusters":
            return [c for c in self.COORDS if c in customers and customers[c].notna().any()]
        from .segment.geographic import level_keys, levels_present

        keys = card["state"]["keys"]
        return level_keys(keys[-1], levels_present(customers))

    def score(self, model: SavedModel, run: Any) -> pd.DataFrame:
        from .segment.geographic import UNKNOWN_LOCATION

        state = model.card["state"]
        customers = self._customers(run, model.card.get("fit_parameters", {}))
        ids = customers["customer_id"].astype(str).to_numpy()
        segment = pd.Series(UNKNOWN_LOCATION, index=range(len(customers)), dtype=object)
        if state["mode"] == "clusters":
            located = customers[self.COORDS].notna().all(axis=1).to_numpy()
            if located.any():
                segment[located] = _named(np.asarray(model.estimator.predict(customers.loc[located, self.COORDS])), state)
        else:
            keys = state["keys"]
            known = customers[keys[-1]].notna().to_numpy()
            assigned = self._paths(customers, keys).map(state["areas"]).to_numpy(dtype=object)
            for depth in range(len(keys) - 1, 0, -1):  # a new area goes to its parent's pool, nearest first
                parent = self._paths(customers, keys[:depth]).map(state["pools"]).to_numpy(dtype=object)
                assigned = np.where(pd.isna(assigned), parent, assigned)
            fallback = state.get("other") or "(new area)"
            segment[known] = np.where(pd.isna(assigned), fallback, assigned)[known]
        return pd.DataFrame({"customer_id": ids, "geographic_segment": segment.to_numpy()})


class _Psychographic(_Adapter):
    """Survey answers -> the saved factor model's scores -> the saved clusters."""

    basis = "psychographic"

    def features(self, result: Any, run: Any) -> list[str]:
        return list(result.factors.items_)

    def parts(self, result: Any) -> dict[str, Any]:
        return {"factors": result.factors}

    def state(self, result: Any, run: Any, params: dict[str, Any]) -> dict[str, Any]:
        survey = run.config.survey
        return {"segments": _names_by_cluster(result.model.labels_, result.labels["psychographic_segment"].to_numpy()),
                "items": list(result.responses.observed.columns), "scales": dict(survey.scales or {}),
                "min_answered": float(params.get("min_answered", 0.5))}

    def found(self, run: Any, card: dict[str, Any]) -> list[str]:
        run.require("survey", page="Scoring psychographic segments")
        survey = run.table("survey")
        items = [c for c in card["state"]["items"] if c in survey]
        return [c for c in items if survey[c].nunique() >= 2]

    def score(self, model: SavedModel, run: Any) -> pd.DataFrame:
        from .features import slug
        from .segment.psychographic import prepare_responses

        state, factors = model.card["state"], model.parts["factors"]
        customers = run.table("customers")
        ids = customers["customer_id"].astype(str) if customers is not None else None
        responses = prepare_responses(run.table("survey"), state["items"], scales=state["scales"] or None,
                                      min_answered=state["min_answered"], customer_ids=ids)
        scores = factors.transform(responses.answers[factors.items_])
        clusters = np.asarray(model.estimator.predict(scores))
        out = pd.DataFrame({"customer_id": scores.index.to_numpy(), "psychographic_segment": _named(clusters, state)})
        for factor in scores.columns:
            out[f"factor_{slug(factor)}"] = scores[factor].round(4).to_numpy()
        return out


class _Value(_Adapter):
    """Purchase and spend models, tier cut points and churn bands: the value basis's saved
    :class:`~analysis.segment.value.ValueModel` scores a run's transactions itself (``score``)."""

    basis = "value"
    #: What the CLV models read: the customer summary of the transactions.
    SUMMARY: ClassVar[list[str]] = ["frequency", "recency", "T", "monetary_value"]
    #: The transaction columns the saved model scores from (all it is given).
    NEEDS: ClassVar[list[str]] = ["customer_id", "timestamp", "amount"]

    def features(self, result: Any, run: Any) -> list[str]:
        return list(self.SUMMARY)

    def state(self, result: Any, run: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"tier_cuts": dict(getattr(result.model, "tier_cuts", {}) or {})}

    def found(self, run: Any, card: dict[str, Any]) -> list[str]:
        run.require("transactions", page="Scoring customer value")
        return list(self.SUMMARY) if set(self.NEEDS) <= set(run.columns("transactions")) else []

    def score(self, model: SavedModel, run: Any) -> pd.DataFrame:
        scores = model.estimator.score(run.table("transactions", columns=self.NEEDS), run.as_of)
        scores["customer_id"] = scores["customer_id"].astype(str)
        return scores.reset_index(drop=True)


#: Scoring adapters by basis name; a basis without one is not scored (its page says so).
ADAPTERS: dict[str, _Adapter] = {a.basis: a for a in (_Demographic(), _Geographic(), _Psychographic(), _Behavioral(), _Value())}
