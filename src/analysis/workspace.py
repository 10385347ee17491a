"""The handle a notebook uses for its run: config, validated tables, and where to leave results.

Every notebook starts with::

    run = workspace.open_run(config_path, run_dir)

``run_dir`` is the run folder the pipeline passes in; when a notebook is run on its own (e.g. in
JupyterLab with its defaults) and the folder holds no validated tables yet, they are prepared
on first use, so any notebook runs top to bottom by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import contract, io
from .config import PROJECT_ROOT, NotApplicable, RunConfig, config_as_dict, load_config

TABLE_ORDER = ("customers", "transactions", "survey", "events")




def default_run_dir(cfg: RunConfig) -> Path:
    """Scratch folder for a notebook run outside the pipeline."""
    return PROJECT_ROOT / "reports" / "_scratch" / cfg.name


def read_raw(cfg: RunConfig) -> dict[str, io.RawTable]:
    """Read every source the config names."""
    return {table: io.read_source(cfg, table) for table in TABLE_ORDER if table in cfg.sources}


def prepare_run(cfg: RunConfig, folder: io.RunFolder) -> contract.Prepared:
    """Read, validate and write a run's tables, set-aside rows and ledger."""
    raw = read_raw(cfg)
    prepared = contract.prepare(raw, cfg)
    inputs = {table: r.files for table, r in raw.items()}
    unmapped = {table: r.unmapped for table, r in raw.items()}
    del raw  # the raw tables (as large as the validated ones) are not needed to write those
    for table, frame in prepared.tables.items():
        folder.write_table(table, frame)
    for table, frame in prepared.set_aside.items():
        folder.write_set_aside(table, frame)
    folder.write_fact("inputs", {"files": inputs, "mappings": prepared.mappings, "unmapped_columns": unmapped})
    # the ledger file marks the tables as complete; it is written last
    folder.write_ledger(prepared.ledger.to_dict())
    return prepared


@dataclass
class Run:
    """One run as a notebook sees it."""

    config: RunConfig
    folder: io.RunFolder
    #: Tables read so far, by (name, columns read); ``None`` columns: the whole table.
    _tables: dict[tuple[str, tuple[str, ...] | None], pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def as_of(self) -> pd.Timestamp:
        return pd.Timestamp(self.config.as_of)

    def ensure_prepared(self) -> None:
        if not self.folder.has_tables():
            prepare_run(self.config, self.folder)

    def table(self, name: str, columns: list[str] | tuple[str, ...] | None = None, *,
              optional: list[str] | tuple[str, ...] = ()) -> pd.DataFrame | None:
        """A validated table, or None when the run has no such source.

        Each table, and each column subset of it, is read once per run handle; a subset of a table
        already read in full is taken from it.

        Parameters
        ----------
        name : str
            Table name (``customers``, ``transactions``, ``survey``, ``events``, ``features``).
        columns : list of str, optional
            Only these columns (the others are never read from disk). Pass the list the function
            you call declares, e.g. ``run.table("transactions", columns=geographic.TRANSACTION_COLUMNS)``:
            an order-line table is many times the size of the three columns a page uses. None: all.
        optional : list of str
            With ``columns``: also these where the table has them (``margin``, ``product_name``).

        Raises
        ------
        ValueError
            When a column of ``columns`` is not in the table; the message lists the columns found.
        """
        self.ensure_prepared()
        wanted = None if columns is None else self.folder.select_columns(name, columns, optional=optional)
        if columns is not None and wanted is None:
            return None
        key = (name, None if wanted is None else tuple(wanted))
        if key not in self._tables:
            whole = self._tables.get((name, None))
            frame = whole[wanted] if whole is not None and wanted is not None else self.folder.read_table(name, wanted)
            if frame is None:
                return None
            self._tables[key] = frame
        return self._tables[key]

    def columns(self, name: str) -> list[str] | None:
        """Column names of a validated table (its Parquet schema; no rows read), or None without the table."""
        self.ensure_prepared()
        return self.folder.table_columns(name)

    def has(self, name: str) -> bool:
        """Whether the run has the validated table ``name``: the run folder's file is there (nothing is read)."""
        self.ensure_prepared()
        return self.folder.has("table", name)

    def _forget(self, name: str) -> None:
        """Drop every cached read of ``name`` (after the table is written again)."""
        for key in [k for k in self._tables if k[0] == name]:
            del self._tables[key]

    def customer_features(self, refresh: bool = False) -> pd.DataFrame:
        """Behavioral features per customer (indexed by customer_id), computed once per run and reused.

        The behavioral page computes them (``refresh=True``); later pages read the saved table, or
        compute it the same way when run on their own.
        """
        from . import engines, features  # the handle composes the feature step for the pages

        saved = None if refresh else self.table("features")
        if saved is not None:
            return saved.set_index("customer_id")
        self.require("transactions", page="Customer features")
        spark = self.config.spark
        with engines.connect(self.config.engine, master=spark.master, conf=spark.conf) as engine:
            feats = features.customer_features(
                self.parquet("transactions"), self.as_of, returns=self.parquet("returns"), events=self.parquet("events"),
                engine=engine,
            )
        self.save_table("features", feats.reset_index())
        return feats

    def parquet(self, name: str) -> Path | None:
        """Path of a validated table's Parquet file, or None without it: for steps that read it in place.

        ``segment_value(run.parquet("transactions"), ...)``: DuckDB aggregates the order lines where
        they lie, so the notebook never holds them in memory.
        """
        self.ensure_prepared()
        path = self.folder.table_path(name)
        return path if path.exists() else None

    def require(self, *tables: str, page: str = "This page") -> None:
        """Stop the notebook cleanly when the run lacks a table the page needs."""
        missing = [t for t in tables if not self.has(t)]
        if missing:
            raise NotApplicable(
                f"{page} needs the {' and '.join(missing)} table(s), which this run's config "
                f"({self.config.display_path()}) does not provide. Add them under sources to enable it."
            )

    def ledger(self) -> contract.Ledger:
        self.ensure_prepared()
        payload = self.folder.read_ledger()
        return contract.Ledger(rows=payload["rows"], notes=payload["notes"])

    def params(self, notebook: str) -> dict[str, Any]:
        return self.config.notebook_params(notebook)

    # outputs -------------------------------------------------------------------------------
    def save_labels(self, basis: str, frame: pd.DataFrame) -> None:
        """Per-customer labels/scores of one basis; they join ``exports/customers.csv``."""
        self.folder.write_labels(basis, frame)

    def save_model(self, name: str, payload: dict[str, Any]) -> None:
        """Fitted parameters; they appear in the manifest under ``models.<name>``."""
        self.folder.write_model(name, payload)

    def save_fact(self, name: str, payload: Any) -> None:
        """Small results for the run's index page and manifest."""
        self.folder.write_fact(name, payload)

    def save_estimator(self, name: str, estimator: Any) -> None:
        """A fitted model later runs score new data with (see the monitoring page)."""
        io.write_estimator(self.folder, name, estimator)

    def previous_run(self, path: str | Path | None = None, needs: tuple[io.Need, ...] = ()) -> io.RunFolder | None:
        """The previous complete run of this config holding ``needs`` (or the folder ``path``).

        Parameters
        ----------
        path : str or Path, optional
            A run folder to use as it is (a notebook parameter); empty means search.
        needs : tuple of (kind, name)
            Artefacts the run must hold, e.g. ``(("labels", "behavioral"), ("estimator",
            "behavioral_clusters"))``; kinds are :attr:`analysis.io.RunFolder.KINDS`.
        """
        if path:
            return io.RunFolder(path)
        reports = self.folder.path.parent
        if reports.name == ".staging":
            reports = reports.parent
        return io.find_previous_run(reports, self.config.name, exclude=self.folder.path, needs=needs)

    def save_result(self, result: Any) -> None:
        """Save everything one basis produced, the same way for every basis.

        Writes the per-customer labels (they join ``exports/customers.csv``), the segment
        profiles (``exports/segments.csv``, plus any ``result.extra_profiles`` such as RFM),
        the fitted model for scoring later data (with any fitted part it needs, as
        ``<basis>_<part>``), the manifest entry ``models.<basis>`` (with the verdict, and the
        model card under ``saved_model``: package and contract versions, features, training
        period, see :func:`analysis.scoring.model_card`) and the index summary.

        Parameters
        ----------
        result : analysis.segment.base.SegmentationResult
        """
        from .segment.registry import get  # the registry imports no model code

        basis = get(result.basis)
        payload = result.model_payload()
        if result.available:
            self.save_labels(basis.name, result.labels)
            if len(result.profiles):
                self.save_segments(basis.name, result.profiles)
            for name, frame in getattr(result, "extra_profiles", {}).items():
                self.save_segments(name, frame)
            if result.model is not None:
                self.save_estimator(basis.name, result.model)
            from .scoring import model_card  # scoring reads the card back (``analysis score``)

            card, parts = model_card(result, self)
            for part, estimator in parts.items():
                self.save_estimator(f"{basis.name}_{part}", estimator)
            if card:
                payload["saved_model"] = card
        self.save_model(basis.name, payload)
        self.save_fact(f"summary_{basis.notebook}", result.summary())

    def save_table(self, name: str, frame: pd.DataFrame) -> None:
        """A per-customer table later pages of the run reuse (e.g. ``features``)."""
        self.folder.write_table(name, frame)
        self._forget(name)

    def save_segments(self, basis: str, frame: pd.DataFrame) -> None:
        """Segment profiles of one basis; they join ``exports/segments.csv``."""
        self.folder.write_segments(basis, frame.assign(basis=basis))


def open_run(config_path: str | Path, run_dir: str | Path | None = None) -> Run:
    """Open the run a notebook belongs to.

    Parameters
    ----------
    config_path : str or Path
        Run config (YAML).
    run_dir : str or Path, optional
        The run folder; empty means a scratch folder under ``reports/_scratch/<config name>``.
    """
    cfg = load_config(config_path)
    folder = io.RunFolder(run_dir or default_run_dir(cfg))
    folder.path.mkdir(parents=True, exist_ok=True)
    if folder.read_fact("config") is None:
        folder.write_fact("config", config_as_dict(cfg))
    return Run(config=cfg, folder=folder)
