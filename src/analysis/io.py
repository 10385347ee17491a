"""All file-system access of the package: raw sources in, run-folder artefacts out.

Raw sources are read as text (every column ``str``) so that the data contract, not the CSV
reader, decides what a bad value is and can set the row aside with a reason.
"""

from __future__ import annotations

import bz2
import codecs
import difflib
import glob as _glob
import gzip
import hashlib
import json
import lzma
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .config import CONTRACT_COLUMNS, ConfigError, RunConfig


@dataclass
class RawTable:
    """A raw table as read from its files, with the mapping to contract names applied.

    Attributes
    ----------
    frame : DataFrame
        Contract-named columns, values as read (strings for text sources).
    original : DataFrame
        The same rows with the user's own column names (what set-aside files show).
    files : list of dict
        ``path``, ``bytes``, ``sha256`` and ``rows`` per file read.
    mapping : dict
        Contract name -> user column actually used.
    unmapped : list of str
        User columns not used by the contract (kept in ``original`` only).
    """

    frame: pd.DataFrame
    original: pd.DataFrame
    files: list[dict[str, Any]]
    mapping: dict[str, str]
    unmapped: list[str] = field(default_factory=list)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _expand(cfg: RunConfig, table: str) -> list[str]:
    pattern = cfg.resolve_path(table)
    files = sorted(_glob.glob(pattern)) if any(ch in pattern for ch in "*?[") else [pattern]
    key = f"sources.{table}.path"
    if not files or not all(os.path.exists(f) for f in files):
        missing = files[0] if files else pattern
        raise ConfigError(
            f"{missing}: file not found (config key {key} in {cfg.display_path()}). "
            f"Check the path; relative paths resolve against the config's folder, and "
            f"{{data_root}} against $CLIENTELE_DATA_ROOT (default ../shared/data)."
        )
    for f in files:
        if os.path.getsize(f) == 0:
            raise ConfigError(
                f"{f}: the file is empty (config key {key} in {cfg.display_path()}). "
                f"Export the {table} table again or point {key} at the right file."
            )
    return files


# Separators users' exports actually use; a header read as one column that contains one of
# them means ``sep`` is wrong.
_CANDIDATE_SEPARATORS = (",", ";", "\t", "|")
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def reading_encoding(cfg: RunConfig, table: str) -> str:
    """The codec used to read a source: its ``encoding``, with UTF-8 read as ``utf-8-sig``.

    Excel and many Windows tools start UTF-8 files with a byte-order mark; read as plain UTF-8
    it sticks to the first column name (``'\\ufeffcustomer_id'``) and the mapping fails. Reading
    UTF-8 as ``utf-8-sig`` drops a leading mark and changes nothing else.

    Raises
    ------
    ConfigError
        When ``sources.<table>.encoding`` is not a codec Python knows.
    """
    name = cfg.sources[table].encoding
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise ConfigError(
            f"sources.{table}.encoding: unknown encoding {name!r} (in {cfg.display_path()}). "
            f"Use e.g. utf-8, cp1252 or latin-1."
        ) from None
    return "utf-8-sig" if codec == "utf-8" else name


def _open_text(path: str, encoding: str):
    opener = _OPENERS.get(Path(path).suffix.lower(), open)
    return opener(path, "rt", encoding=encoding, newline="")


def _open_binary(path: str):
    opener = _OPENERS.get(Path(path).suffix.lower(), open)
    return opener(path, "rb")


def _check_decodes(path: str, cfg: RunConfig, table: str, chunk: int = 1 << 20) -> None:
    """Decode a whole text source once, so a wrong encoding fails before any notebook runs.

    Streams the file (compressed files included); about a second for 500 MB of UTF-8.
    """
    if Path(path).suffix.lower() in (".zip", ".zst", ".tar"):
        return  # pandas reads these; a decoding error still surfaces, with the same message, on read
    try:
        with _open_text(path, reading_encoding(cfg, table)) as fh:
            while fh.read(chunk):
                pass
    except UnicodeDecodeError:
        raise _decode_error(path, cfg, table) from None


def _first_undecodable_line(path: str, encoding: str) -> tuple[int, bytes, UnicodeDecodeError] | None:
    """Line number (1-based), raw bytes and error of the first line that does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with _open_binary(path) as fh:
        for number, line in enumerate(fh, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as exc:
                return number, line, exc
    return None


def _decode_error(path: str, cfg: RunConfig, table: str) -> ConfigError:
    """Where the file stops being valid in its configured encoding, and what it may be instead."""
    src = cfg.sources[table]
    found = _first_undecodable_line(path, reading_encoding(cfg, table))
    where = ""
    if found is not None:
        number, line, exc = found
        bad = line[exc.start:exc.start + 1]
        guess = line.decode("cp1252", errors="replace").strip()
        guess = guess if len(guess) <= 100 else guess[:97] + "..."
        where = f" Line {number} has byte 0x{bad.hex()} ({exc.reason}); read as cp1252 it says: {guess!r}."
    return ConfigError(
        f"{path}: cannot decode the file as {src.encoding}.{where} Set sources.{table}.encoding in "
        f"{cfg.display_path()} (e.g. cp1252 or latin-1 for Windows exports)."
    )


def _read_one(path: str, cfg: RunConfig, table: str, nrows: int | None = None) -> pd.DataFrame:
    src = cfg.sources[table]
    if src.format == "parquet":
        if nrows is None:
            return pd.read_parquet(path)
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        batch = next(parquet.iter_batches(batch_size=max(nrows, 1)), None)
        return batch.to_pandas().head(nrows) if batch is not None else parquet.schema_arrow.empty_table().to_pandas()
    kwargs: dict[str, Any] = dict(
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        encoding=reading_encoding(cfg, table),
        skiprows=src.skiprows or None,
        nrows=nrows,
    )
    if src.format == "whitespace":
        kwargs["sep"] = r"\s+"
    else:
        kwargs["sep"] = src.sep
    if not src.header:
        if not src.names:
            raise ConfigError(
                f"{path}: sources.{table}.header is false but sources.{table}.names is not given "
                f"(in {cfg.display_path()}). List the column names in file order."
            )
        kwargs["header"] = None
        kwargs["names"] = src.names
    elif src.names:
        kwargs["header"] = 0
        kwargs["names"] = src.names
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError:
        raise _decode_error(path, cfg, table) from None
    except pd.errors.EmptyDataError:
        raise ConfigError(
            f"{path}: no columns could be read (config key sources.{table}.path in "
            f"{cfg.display_path()}). The file is empty or has only blank lines."
        ) from None
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split())
        ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
        if ragged:
            want, line, got = ragged.groups()
            detail = (f"line {line} has {got} fields where the lines before have {want}; a value containing "
                      f"{src.sep!r} must be quoted (\"...\"). Fix that line in the export")
        raise ConfigError(
            f"{path}: cannot parse as {src.format} with separator {src.sep!r}: {detail}. "
            f"Check sources.{table}.sep and format in {cfg.display_path()}."
        ) from None


def resolve_mapping(cfg: RunConfig, table: str, found: list[str], path: str) -> dict[str, str]:
    """Contract name -> user column, checked against the columns found in the file.

    Contract names present in the file under their own name are taken without a mapping.

    Raises
    ------
    ConfigError
        Naming the config key, the missing column and the columns found.
    """
    declared = dict(cfg.columns.get(table, {}))
    contract = list(CONTRACT_COLUMNS[table])
    if table == "survey":
        contract += list(cfg.survey.items)
    found_str = [str(c) for c in found]
    for key, user_col in declared.items():
        if user_col not in found_str:
            close = difflib.get_close_matches(user_col, found_str, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            shown = found_str if len(found_str) <= 40 else found_str[:40] + ["..."]
            raise ConfigError(
                f"{os.path.basename(path)}: column '{user_col}' not found.{hint} Found: {shown}. "
                f"Map it in {cfg.display_path()} under columns.{table}.{key}."
            )
    mapping = dict(declared)
    used = set(declared.values())
    for name in contract:
        if name not in mapping and name in found_str and name not in used:
            mapping[name] = name
    if "customer_id" not in mapping:
        close = difflib.get_close_matches("customer_id", found_str, n=1, cutoff=0.4)
        hint = f" (perhaps '{close[0]}')" if close else ""
        raise ConfigError(
            f"{os.path.basename(path)}: no customer id column{hint}. Found: {found_str[:40]}. "
            f"Map it in {cfg.display_path()} under columns.{table}.customer_id."
        )
    if table == "survey":
        missing_items = [i for i in cfg.survey.items if i not in mapping]
        if missing_items:
            raise ConfigError(
                f"{os.path.basename(path)}: survey items {missing_items} not found. Found: {found_str[:40]}. "
                f"Map each under columns.survey.<item> in {cfg.display_path()}, or remove it from survey.items."
            )
    return mapping


def _check_separator(path: str, cfg: RunConfig, table: str, columns: list[str]) -> None:
    """A header read as a single column that holds another separator: ``sep`` is wrong."""
    src = cfg.sources[table]
    if src.format != "csv" or len(columns) != 1:
        return
    header = str(columns[0])
    found = [sep for sep in _CANDIDATE_SEPARATORS if sep != src.sep and sep in header]
    if found:
        best = max(found, key=header.count)
        shown = header if len(header) <= 80 else header[:77] + "..."
        raise ConfigError(
            f"{os.path.basename(path)}: the header was read as one column ({shown!r}) with separator "
            f"{src.sep!r}, but it contains {header.count(best)} x {best!r}: the file looks {best!r}-separated. "
            f"Set sources.{table}.sep: {best!r} in {cfg.display_path()}."
        )


def required_columns(table: str) -> list[tuple[str, ...]]:
    """Contract columns a table cannot do without; a tuple means "one of these"."""
    return {
        "customers": [("customer_id",)],
        "transactions": [("customer_id",), ("timestamp",), ("amount", "unit_price")],
        "survey": [("customer_id",)],
        "events": [("customer_id",), ("timestamp",), ("event_type",)],
    }[table]


def _check_required(cfg: RunConfig, table: str, mapping: dict[str, str], found: list[str], path: str) -> None:
    for options in required_columns(table):
        if any(name in mapping for name in options):
            continue
        close = difflib.get_close_matches(options[0], found, n=1, cutoff=0.5)
        hint = f" (perhaps '{close[0]}')" if close else ""
        keys = " or ".join(f"columns.{table}.{name}" for name in options)
        wanted = " or ".join(f"'{name}'" for name in options)
        raise ConfigError(
            f"{os.path.basename(path)}: no {wanted} column{hint}. Found: {found[:40]}. "
            f"Map it in {cfg.display_path()} under {keys}."
        )


def check_source(cfg: RunConfig, table: str) -> tuple[list[str], dict[str, str]]:
    """Check a source before any data are prepared: files, separator, mapping, rows, encoding.

    Reads the header and one row of the first file, then decodes every text file once (no
    parsing). Returns the files and the resolved mapping. A misspelt mapping fails in well
    under a second, even on large files, as it is checked before the files are decoded.

    Raises
    ------
    ConfigError
        Naming the file, the column or config key, and the fix.
    """
    files = _expand(cfg, table)
    head = _read_one(files[0], cfg, table, nrows=1)
    found = [str(c) for c in head.columns]
    _check_separator(files[0], cfg, table, found)
    mapping = resolve_mapping(cfg, table, found, files[0])
    _check_required(cfg, table, mapping, found, files[0])
    if head.empty and len(files) == 1:
        raise ConfigError(
            f"{files[0]}: the file has a header but no data rows (config key sources.{table}.path in "
            f"{cfg.display_path()}). Export the {table} table again with its rows, or remove sources.{table}."
        )
    if cfg.sources[table].format != "parquet":
        for f in files:
            _check_decodes(f, cfg, table)
    return files, mapping


def read_source(cfg: RunConfig, table: str) -> RawTable:
    """Read one table's raw files (CSV, Parquet or whitespace-separated; globs allowed)."""
    files, mapping = check_source(cfg, table)
    parts, info = [], []
    for f in files:
        part = _read_one(f, cfg, table)
        missing = [c for c in mapping.values() if c not in part.columns]
        if missing:
            raise ConfigError(
                f"{os.path.basename(f)}: columns {missing} not found although {os.path.basename(files[0])} "
                f"has them (config key sources.{table}.path in {cfg.display_path()}). All files of a "
                f"glob must share one layout."
            )
        parts.append(part)
        info.append({"path": f, "bytes": os.path.getsize(f), "sha256": sha256_file(f), "rows": len(part)})
    original = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    if original.empty:
        raise ConfigError(
            f"{cfg.resolve_path(table)}: {len(files)} file(s) with a header but no data rows (config key "
            f"sources.{table}.path in {cfg.display_path()}). Point it at files that hold the {table} rows."
        )
    frame = pd.DataFrame({contract: original[user] for contract, user in mapping.items()})
    unmapped = [c for c in original.columns if c not in set(mapping.values())]
    return RawTable(frame=frame, original=original, files=info, mapping=mapping, unmapped=unmapped)


# --------------------------------------------------------------------------------------------
# The run folder: where notebooks of one run leave tables, labels and model facts for each other.
# --------------------------------------------------------------------------------------------


class RunFolder:
    """Layout of one run's folder: the one place that spells a run-folder path.

    ``data/<table>.parquet`` validated tables (and ``data/ledger.json``, written last, marking
    them complete); ``set_aside/<table>.csv`` rows not kept, with ``reason``;
    ``labels/<basis>.parquet`` per-customer outputs of a notebook; ``models/<name>.json`` fitted
    parameters and ``models/<name>.joblib`` fitted estimators; ``facts/<name>.json`` small results
    for the index page and manifest; ``exports/`` files for CRM and spreadsheet users;
    ``manifest.json`` and ``index.html`` at the top.

    Everyone else names artefacts by kind and name (``folder.labels_path("behavioral")``,
    ``folder.has("estimator", "behavioral_clusters")``), never by path.

    Parameters
    ----------
    path : str or Path
        The run folder (it need not exist yet).

    Examples
    --------
    >>> folder = RunFolder("/tmp/run")
    >>> folder.labels_path("behavioral").relative_to(folder.path).as_posix()
    'labels/behavioral.parquet'
    >>> folder.has("table", "customers")
    False
    """

    DATA = "data"
    LABELS = "labels"
    MODELS = "models"
    FACTS = "facts"
    SET_ASIDE = "set_aside"
    EXPORTS = "exports"
    MANIFEST = "manifest.json"
    INDEX = "index.html"
    #: Kinds of artefact a caller may ask for by name (see :meth:`artefact_path` and :meth:`has`).
    KINDS = ("table", "labels", "segments", "model", "estimator", "fact", "set_aside", "export")
    _SEGMENTS_PREFIX = "segments_"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def sub(self, name: str) -> Path:
        """A sub-folder of the run (created)."""
        p = self.path / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    @staticmethod
    def _writable(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def _file_name(name: str, what: str) -> str:
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"{what} name {name!r}: give a plain name without folders.")
        return name

    # layout --------------------------------------------------------------------------------
    def artefact_path(self, kind: str, name: str) -> Path:
        """Where an artefact of ``kind`` (one of :attr:`KINDS`) called ``name`` lives."""
        paths = {
            "table": self.table_path, "labels": self.labels_path, "segments": self.segments_path,
            "model": self.model_path, "estimator": self.estimator_path, "fact": self.fact_path,
            "set_aside": self.set_aside_path, "export": lambda n: self.path / self.EXPORTS / self._file_name(n, "export"),
        }
        if kind not in paths:
            raise ValueError(f"unknown run artefact kind {kind!r}; use one of {list(self.KINDS)}.")
        return paths[kind](name)

    def has(self, kind: str, name: str) -> bool:
        """Whether the run holds the artefact, e.g. ``has("estimator", "behavioral_clusters")``."""
        return self.artefact_path(kind, name).exists()

    def relative(self, path: str | Path) -> str:
        """A run file's path relative to the run folder (for links in the run's pages)."""
        return Path(path).relative_to(self.path).as_posix()

    @property
    def manifest_path(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def index_path(self) -> Path:
        return self.path / self.INDEX

    def read_manifest(self) -> dict[str, Any] | None:
        """The run's manifest, or None for a run without one (in progress or killed)."""
        path = self.manifest_path
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def write_manifest(self, payload: dict[str, Any]) -> Path:
        path = self._writable(self.manifest_path)
        path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str), encoding="utf-8")
        return path

    # tables --------------------------------------------------------------------------------
    def table_path(self, table: str) -> Path:
        return self.path / self.DATA / f"{self._file_name(table, 'table')}.parquet"

    def has_tables(self) -> bool:
        return self.ledger_path.exists()

    def write_table(self, table: str, frame: pd.DataFrame) -> Path:
        path = self._writable(self.table_path(table))
        frame.to_parquet(path, index=False)
        return path

    def read_table(self, table: str) -> pd.DataFrame | None:
        path = self.table_path(table)
        return pd.read_parquet(path) if path.exists() else None

    @property
    def ledger_path(self) -> Path:
        return self.path / self.DATA / "ledger.json"

    def write_ledger(self, payload: dict[str, Any]) -> Path:
        """The row ledger of the run's tables; written last, it marks the tables complete."""
        return self.write_json(self.DATA, "ledger", payload)

    def read_ledger(self) -> dict[str, Any] | None:
        return self.read_json(self.DATA, "ledger")

    def set_aside_path(self, table: str) -> Path:
        return self.path / self.SET_ASIDE / f"{self._file_name(table, 'table')}.csv"

    def write_set_aside(self, table: str, frame: pd.DataFrame) -> Path:
        """Set-aside rows as CSV; text a spreadsheet would run as a formula is neutralised."""
        from .text import spreadsheet_safe

        path = self._writable(self.set_aside_path(table))
        spreadsheet_safe(frame).to_csv(path, index=False)
        return path

    def set_aside_files(self) -> list[Path]:
        """Set-aside row files of the run, by name."""
        folder = self.path / self.SET_ASIDE
        return sorted(folder.glob("*.csv")) if folder.exists() else []

    # segment profiles ----------------------------------------------------------------------
    def segments_path(self, basis: str) -> Path:
        return self.table_path(f"{self._SEGMENTS_PREFIX}{self._file_name(basis, 'basis')}")

    def write_segments(self, basis: str, frame: pd.DataFrame) -> Path:
        """Segment profiles of one basis (rows of ``exports/segments.csv``)."""
        path = self._writable(self.segments_path(basis))
        frame.to_parquet(path, index=False)
        return path

    def segments_tables(self) -> dict[str, pd.DataFrame]:
        """Segment profiles of every basis that saved some, by basis (sorted)."""
        folder = self.path / self.DATA
        if not folder.exists():
            return {}
        prefix = self._SEGMENTS_PREFIX
        return {p.stem[len(prefix):]: pd.read_parquet(p) for p in sorted(folder.glob(f"{prefix}*.parquet"))}

    # json facts ----------------------------------------------------------------------------
    def write_json(self, kind: str, name: str, payload: Any) -> Path:
        path = self.sub(kind) / f"{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def read_json(self, kind: str, name: str) -> Any:
        path = self.path / kind / f"{name}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def read_all_json(self, kind: str) -> dict[str, Any]:
        folder = self.path / kind
        if not folder.exists():
            return {}
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}

    def fact_path(self, name: str) -> Path:
        return self.path / self.FACTS / f"{self._file_name(name, 'fact')}.json"

    def write_fact(self, name: str, payload: Any) -> Path:
        """A small result for the index page and manifest (``facts.<name>``)."""
        return self.write_json(self.FACTS, self._file_name(name, "fact"), payload)

    def read_fact(self, name: str) -> Any:
        return self.read_json(self.FACTS, self._file_name(name, "fact"))

    def read_facts(self) -> dict[str, Any]:
        return self.read_all_json(self.FACTS)

    def model_path(self, name: str) -> Path:
        return self.path / self.MODELS / f"{self._file_name(name, 'model')}.json"

    def write_model(self, name: str, payload: dict[str, Any]) -> Path:
        """Fitted parameters (``models.<name>`` in the manifest)."""
        return self.write_json(self.MODELS, self._file_name(name, "model"), payload)

    def read_model(self, name: str) -> Any:
        return self.read_json(self.MODELS, self._file_name(name, "model"))

    def read_models(self) -> dict[str, Any]:
        return self.read_all_json(self.MODELS)

    def estimator_path(self, name: str) -> Path:
        return self.path / self.MODELS / f"{self._file_name(name, 'estimator')}.joblib"

    # labels --------------------------------------------------------------------------------
    def labels_path(self, basis: str) -> Path:
        return self.path / self.LABELS / f"{self._file_name(basis, 'basis')}.parquet"

    def write_labels(self, basis: str, frame: pd.DataFrame) -> Path:
        if "customer_id" not in frame.columns:
            raise ValueError("labels need a customer_id column")
        path = self._writable(self.labels_path(basis))
        frame.to_parquet(path, index=False)
        return path

    def read_labels(self) -> dict[str, pd.DataFrame]:
        folder = self.path / self.LABELS
        if not folder.exists():
            return {}
        return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}

    # exports -------------------------------------------------------------------------------
    def export_path(self, name: str) -> Path:
        """Where the export ``name`` (a plain file name) goes; the exports folder is created."""
        return self._writable(self.artefact_path("export", name))

    def export_files(self) -> list[Path]:
        """The run's export files, by name."""
        folder = self.path / self.EXPORTS
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.exists() else []

    def write_export(self, name: str, frame: pd.DataFrame) -> Path:
        """An export as CSV; text a spreadsheet would run as a formula is neutralised
        (see :func:`analysis.text.spreadsheet_cell`)."""
        from .text import spreadsheet_safe

        path = self.export_path(name)
        spreadsheet_safe(frame).to_csv(path, index=False, float_format="%.6g", lineterminator="\n")
        return path


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


PACKAGE_DATA = Path(__file__).parent / "data"


def read_yaml(path: str | Path | None, default_name: str) -> dict[str, Any]:
    """A YAML file given by the user, or the package's default of that name (``analysis/data``)."""
    import yaml

    target = Path(path) if path else PACKAGE_DATA / default_name
    if not target.exists():
        raise ConfigError(f"{target}: file not found. Give an existing YAML file or leave the parameter empty for the default.")
    with open(target, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def write_estimator(folder: RunFolder, name: str, estimator: Any) -> Path:
    """Persist a fitted estimator (joblib) under ``models/<name>.joblib`` so later runs can score with it."""
    import joblib

    path = RunFolder._writable(folder.estimator_path(name))
    joblib.dump(estimator, path)
    return path


def read_estimator(folder: RunFolder, name: str) -> Any | None:
    """A fitted estimator saved by :func:`write_estimator`, or None."""
    import joblib

    path = folder.estimator_path(name)
    return joblib.load(path) if path.exists() else None


Need = tuple[str, str]


def _has_need(folder: RunFolder, need: Need | str) -> bool:
    if isinstance(need, str):  # a path relative to the run folder (before needs were named)
        return (folder.path / need).exists()
    kind, name = need
    return folder.has(kind, name)


def find_previous_run(
    reports_dir: Path, config_name: str, exclude: Path | None = None, needs: tuple[Need | str, ...] = ()
) -> RunFolder | None:
    """The newest complete run of the same config under ``reports_dir`` (by manifest time), or None.

    ``needs`` names artefacts a candidate must hold, as ``(kind, name)`` pairs (kinds: see
    :attr:`RunFolder.KINDS`), e.g. ``(("labels", "behavioral"), ("estimator", "behavioral_clusters"))``:
    a partial run (``--only``) without them is skipped.
    """
    best: tuple[str, Path] | None = None
    if not reports_dir.exists():
        return None
    for manifest in reports_dir.glob(f"*/{RunFolder.MANIFEST}"):
        candidate = RunFolder(manifest.parent)
        if exclude is not None and candidate.path.resolve() == Path(exclude).resolve():
            continue
        if not all(_has_need(candidate, need) for need in needs):
            continue
        try:
            data = candidate.read_manifest() or {}
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("status") == "complete" and data.get("config", {}).get("name") == config_name:
            stamp = data.get("created_utc", "")
            if best is None or stamp > best[0]:
                best = (stamp, candidate.path)
    return RunFolder(best[1]) if best else None
