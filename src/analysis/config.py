"""Run configuration: load a YAML file, validate it, resolve its paths.

A run config says where the data are (``sources``), how the user's column names map onto the
data contract (``columns``), the analysis date (``as_of``) and per-notebook parameters
(``params``). Every error names the config file and the key to fix.

Relative source paths resolve against the folder of the config file. A path may start with
``{data_root}``, which resolves to, in order: the ``CLIENTELE_DATA_ROOT`` environment variable,
the config's ``data_root`` key, or ``<project>/../shared/data``.

``params.<notebook>.<name>`` is checked against the notebook's ``parameters`` cell (read, never
run): the notebook must exist, the name must be one of its parameters and the value a plain
literal of the default's type. Nothing in a config is ever executed.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import json
import keyword
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

DATA_ROOT_ENV = "CLIENTELE_DATA_ROOT"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = PROJECT_ROOT.parent / "shared" / "data"
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"

#: Parameters the runner sets itself: a config may not set them under ``params``.
RESERVED_PARAMETERS = ("config_path", "run_dir")
#: Parameters the runner fills from a top-level config key (``params.<nb>.seed`` is refused).
RUN_LEVEL_PARAMETERS = {"seed": "seed"}

TABLES = ("customers", "transactions", "survey", "events")


class ConfigError(ValueError):
    """A run config (or the data it points at) cannot be used as written.

    The message is one sentence naming the file, the column or config key, and the fix; a
    notebook page that stops on it shows that sentence, not a traceback.
    """

    def _render_traceback_(self) -> list[str]:  # IPython: show the message, not a traceback
        return [f"Input problem: {self}"]


class NotApplicable(Exception):
    """A page's analysis does not apply to the run's data (e.g. no transactions, too few customers).

    The runner marks the page "not applicable" (not failed) and the page shows only the message.
    Defined here, at the bottom of the dependency chain, so any layer may raise it.
    """

    def _render_traceback_(self) -> list[str]:  # IPython: show the message, not a traceback
        return [f"Not applicable to this data: {self}"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """Where one table's raw data live and how to parse them.

    ``format``: ``csv`` (any separator), ``parquet`` or ``whitespace`` (fixed-width style
    columns separated by runs of blanks, e.g. CDNOW). ``header``: whether the first line holds
    column names; when it does not, give ``names``. ``skiprows`` drops leading lines (e.g. a
    header you want to replace with ``names``). ``cancellation_prefix``: order ids starting with it
    are cancellations (Online Retail: ``C``). ``keep_zero_amounts``: keep zero-value lines (free
    items that still count as purchases, as in CDNOW); negative amounts are always set aside.
    ``drop_duplicate_lines``: set aside exact repeats of an earlier line (turn off where repeated
    identical lines are genuine, e.g. CDNOW's same-day repeat purchases).

    Binary formats are recognised by their content, whatever the extension or ``format``:
    Parquet, Excel ``.xlsx`` (``sheet``: a sheet name or 0-based number, default the first),
    SPSS ``.sav``, Stata ``.dta`` and R ``.rds``/``.rda`` (``r_object``: which data frame of an
    ``.rda`` holding several); so are gzip, bz2, xz, zip and zstd compression and UTF-8/UTF-16
    byte-order marks. ``format`` may name them too (``excel``, ``spss``, ``stata``, ``r``).

    ``date_format`` (Python ``strftime`` codes, e.g. ``%d/%m/%Y``) reads dates in that format only;
    without it ISO dates and unambiguous other forms are read, and ``dayfirst`` says how to read
    ``03/04/2024``. ``decimal``: ``.`` or ``,``.

    ``customer_id_from: row_number`` numbers the rows as customer ids (``row-1``, ``row-2``, ...;
    ``response-1``, ... for a survey) for a customer or survey table that has no id column.
    """

    path: str
    format: Literal["csv", "parquet", "whitespace", "excel", "spss", "stata", "r"] = "csv"
    encoding: str = "utf-8"
    sep: str = ","
    header: bool = True
    names: list[str] | None = None
    skiprows: int = 0
    sheet: str | int | None = None
    r_object: str | None = None
    date_format: str | None = None
    dayfirst: bool = False
    decimal: Literal[".", ","] = "."
    cancellation_prefix: str | None = None
    keep_zero_amounts: bool = False
    drop_duplicate_lines: bool = True
    customer_id_from: Literal["column", "row_number"] = "column"

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, v: str | None) -> str | None:
        return None if v is None else check_date_format(v)

    @field_validator("sep")
    @classmethod
    def _sep(cls, v: str) -> str:
        if not v or v in ("\n", "\r", '"'):
            raise ValueError(f"{v!r} cannot separate columns; use e.g. ',', ';', '\\t' or '|'")
        return v


#: ``strftime`` codes pandas reads; at least one of :data:`_DATE_CODES` must be in a date format.
_FORMAT_CODES = set("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")
_DATE_CODES = set("bBcdjmxyY")


def check_date_format(fmt: str) -> str:
    """``fmt`` when it is a usable ``strftime`` date format; else ValueError saying why.

    Examples
    --------
    >>> check_date_format("%d/%m/%Y")
    '%d/%m/%Y'
    """
    codes = re.findall(r"%(.|$)", fmt)
    bad = [c for c in codes if c not in _FORMAT_CODES]
    if bad:
        raise ValueError(f"'%{bad[0]}' in {fmt!r} is not a date code; use codes such as %Y %m %d %H %M %S, e.g. '%d/%m/%Y %H:%M'")
    if not set(codes) & _DATE_CODES:
        raise ValueError(f"{fmt!r} has no day, month or year code (%d %m %Y ...); write it like '%d/%m/%Y'")
    twice = sorted({c for c in codes if c != "%" and codes.count(c) > 1})
    if twice:
        raise ValueError(f"{fmt!r} gives '%{twice[0]}' twice; give each code once, e.g. '%d/%m/%Y'")
    example = dt.datetime(2024, 3, 5, 10, 7, 9, tzinfo=dt.UTC).strftime(fmt)
    try:
        dt.datetime.strptime(example, fmt)
    except (ValueError, re.error) as exc:
        raise ValueError(f"{fmt!r} cannot read the dates it writes ({exc}); write it like '%d/%m/%Y %H:%M'") from None
    return fmt


class SurveyConfig(_Strict):
    """Survey items and how to read them.

    ``items`` are contract names of the Likert columns (map user names in ``columns.survey``).
    ``reverse`` lists items worded in reverse; their answers are flipped on the scale.
    ``scales`` optionally groups items into named scales (for reliability checks).
    """

    items: list[str] = Field(default_factory=list)
    reverse: list[str] = Field(default_factory=list)
    likert_min: int = 1
    likert_max: int = 5
    scales: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("likert_max")
    @classmethod
    def _range(cls, v: int, info: Any) -> int:
        lo = info.data.get("likert_min", 1)
        if v <= lo:
            raise ValueError(f"likert_max ({v}) must be greater than likert_min ({lo})")
        return v


class SparkConfig(_Strict):
    """Where Spark runs when ``engine: spark``.

    ``master``: the cluster's master URL (``spark://host:7077``, ``yarn``, ``k8s://https://...``)
    or ``local[*]`` for every core of this machine. ``conf``: further Spark settings, e.g.
    ``spark.executor.memory: 8g``. The sources' paths must then be readable by the executors too.
    """

    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)


class ContactListConfig(_Strict):
    """One contact list an associate can work (``contact_lists:`` in the run config).

    ``where`` filters clients on their columns: a level (``churn_risk: high``), a list of levels
    (``value_tier: [Top 1%, Top 20%]``) or a comparison (``recency_days: ">= 90"``); any segment,
    persona, value tier, churn risk, location, store or owner column of the run. ``capacity`` is the
    most clients on the list, per group of ``per`` (e.g. ``country``) when given. ``owner`` names the
    column holding each client's associate or store, where the data have one.
    """

    name: str
    where: dict[str, Any] = Field(default_factory=dict)
    capacity: int = Field(default=50, gt=0)
    per: str | None = None
    owner: str | None = None


class CrmConfig(_Strict):
    """The CRM export (``crm:`` in the run config).

    ``include_contact_details``: write the customers' e-mail and phone (removed from every other
    output) into ``exports/crm_contacts.csv`` / ``.jsonl`` only. Off by default: opt in per run.
    """

    include_contact_details: bool = False


class RunConfig(_Strict):
    """A validated run configuration.

    ``engine`` says where the feature step's SQL runs: ``duckdb`` (embedded, the default) or
    ``spark`` (settings under ``spark``, see :class:`SparkConfig`).
    """

    name: str
    description: str = ""
    as_of: dt.date
    seed: int = 42
    data_root: str | None = None
    min_date: dt.date = dt.date(1990, 1, 1)
    min_segment_size: int = 30
    pii_columns: list[str] = Field(default_factory=lambda: ["name", "email", "phone"])
    sources: dict[Literal["customers", "transactions", "survey", "events"], SourceConfig]
    columns: dict[Literal["customers", "transactions", "survey", "events"], dict[str, str]] = Field(
        default_factory=dict
    )
    survey: SurveyConfig = Field(default_factory=SurveyConfig)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkConfig = Field(default_factory=SparkConfig)
    contact_lists: list[ContactListConfig] = Field(default_factory=list)
    crm: CrmConfig = Field(default_factory=CrmConfig)

    # Set by load_config, not by the user.
    config_path: Path | None = None

    @field_validator("sources")
    @classmethod
    def _needs_data(cls, v: dict) -> dict:
        if not v:
            raise ValueError("at least one source (customers or transactions) is needed")
        if "customers" not in v and "transactions" not in v:
            raise ValueError("give a 'customers' or a 'transactions' source (or both)")
        return v

    def resolve_path(self, table: str) -> str:
        """Return the absolute path (or glob) of a table's source."""
        raw = self.sources[table].path
        root = os.environ.get(DATA_ROOT_ENV) or self.data_root or str(DEFAULT_DATA_ROOT)
        if "{data_root}" in raw:
            raw = raw.replace("{data_root}", root)
        path = Path(raw).expanduser()
        if not path.is_absolute():
            base = self.config_path.parent if self.config_path else Path.cwd()
            path = base / path
        return str(path)

    def notebook_params(self, notebook: str) -> dict[str, Any]:
        """Parameters the config sets for one notebook (by stem, e.g. ``13_behavioral``).

        Checked by :func:`load_config`: identifiers with plain literal values (dates as
        ``YYYY-MM-DD`` text). Run-level parameters (``seed``) are not among them; see
        :meth:`run_parameters`.
        """
        return dict(self.params.get(notebook, {}))

    def run_parameters(self, declared: dict[str, Any] | Any) -> dict[str, Any]:
        """Top-level settings a notebook receives when its parameters cell declares them.

        Parameters
        ----------
        declared : mapping or collection of str
            The notebook's parameter names (e.g. from :func:`notebook_parameters`).

        Returns
        -------
        dict
            ``{"seed": self.seed}`` for a notebook that declares ``seed``, else empty.
        """
        return {name: getattr(self, key) for name, key in RUN_LEVEL_PARAMETERS.items() if name in declared}

    def display_path(self) -> str:
        """The config path as a user would type it: relative to the project when inside it, else
        its file name only (pages and messages never show where a machine keeps its files).

        Examples
        --------
        >>> from pathlib import Path
        >>> RunConfig.model_construct(config_path=PROJECT_ROOT / "config" / "sample.yaml").display_path()
        'config/sample.yaml'
        >>> RunConfig.model_construct(config_path=Path("/home/ana/private/run.yaml")).display_path()
        'run.yaml'
        """
        if self.config_path is None:
            return "<config>"
        try:
            return str(self.config_path.relative_to(PROJECT_ROOT))
        except ValueError:
            return self.config_path.name


# Contract names a user may map, per table; used to catch misspelt contract keys.
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "name", "email", "phone", "age", "birth_year", "gender", "income",
        "education", "occupation", "marital_status", "children", "teens", "country", "region",
        "state", "city", "postal_code", "latitude", "longitude", "urban_rural", "climate_zone",
        "population", "signup_date", "customer_segment", "spend",
    ),
    "transactions": (
        "customer_id", "order_id", "timestamp", "product_id", "product_name", "category",
        "quantity", "unit_price", "amount", "margin", "channel", "brand",
        # customer-level attributes carried on order lines (rolled up into customers)
        "customer_name", "country", "region", "state", "city", "postal_code", "customer_segment",
    ),
    "survey": ("customer_id", "response_date"),
    "events": ("customer_id", "timestamp", "event_type", "product_id", "channel"),
}


# Words users reach for, mapped to the key we use.
KEY_ALIASES = {
    "separator": "sep", "seperator": "sep", "delimiter": "sep", "delimeter": "sep", "delim": "sep", "file": "path", "files": "path", "glob": "path",
    "analysis_date": "as_of", "date": "as_of", "asof": "as_of", "as-of": "as_of", "random_state": "seed", "mapping": "columns",
    "parameters": "params", "notebooks": "params", "fmt": "format", "charset": "encoding",
}


def _format_loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, line: int, first_line: int):
        super().__init__(key)
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping.

    Plain YAML keeps the last of two equal keys, so a second ``sources:`` block silently
    replaces the first. Merge keys (``<<: *anchor``) may still be overridden.
    """

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        self._key_paths: dict[int, tuple[str, ...]] = {}
        if node is not None:
            self._index_paths(node, ())
        return node

    def _index_paths(self, node: Any, path: tuple[str, ...]) -> None:
        if id(node) in self._key_paths:  # an alias: indexed where it was defined
            return
        self._key_paths[id(node)] = path
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, ScalarNode) else "?"
                self._index_paths(value_node, (*path, str(name)))
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self._index_paths(item, (*path, str(i)))

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: the base loader reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    dotted = ".".join((*getattr(self, "_key_paths", {}).get(id(node), ()), str(key)))
                    raise _DuplicateKey(dotted, line, first)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml_text(text: str, source: str | Path) -> Any:
    """Parse YAML safely (no tags that build objects), refusing duplicate keys.

    Raises
    ------
    ConfigError
        Naming ``source``, the key and its lines for a duplicate key; the parser's message
        (with line and column) for invalid YAML.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: builds no objects
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{source}: line {exc.line}: duplicate key '{exc.key}' (first given on line {exc.first_line}); "
            f"YAML would silently keep only the last one. Remove one of them or merge the two."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


def load_config(path: str | Path, notebook_dir: str | Path | None = NOTEBOOK_DIR) -> RunConfig:
    """Load and validate a run config.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    notebook_dir : str or Path, optional
        Notebooks whose ``parameters`` cells ``params`` is checked against (default: the
        project's ``notebooks/``). ``None`` checks names and values only, not that the
        notebooks and parameters exist.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        With the file and key that need fixing.

    Examples
    --------
    >>> cfg = load_config(PROJECT_ROOT / "config" / "sample.yaml")
    >>> cfg.name, cfg.seed
    ('sample', 42)
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"config file {path} not found. Pass an existing file, e.g. config/sample.yaml.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file in UTF-8 (byte 0x{exc.object[exc.start]:02x} at position {exc.start}). "
                          f"Give the YAML run config, e.g. config/sample.yaml, saved as UTF-8.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder. Pass the run config file, e.g. config/sample.yaml.") from None
    raw = read_yaml_text(text, path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (name, as_of, sources, ...), found {type(raw).__name__}.")
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        known = set(RunConfig.model_fields) - {"config_path"}
        for err in exc.errors():
            key = _format_loc(err["loc"]) or "<top level>"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                last = str(err["loc"][-1])
                close = [KEY_ALIASES[last]] if last in KEY_ALIASES else difflib.get_close_matches(
                    last, sorted(known | set(SourceConfig.model_fields) | set(SurveyConfig.model_fields)), n=1
                )
                msg = "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
            elif err["type"] == "missing":
                msg = "required key is missing"
            elif err["type"].startswith(("date", "datetime")):
                msg += f" (found {err.get('input')!r}; write dates as YYYY-MM-DD, e.g. 2024-12-31)"
            elif err["type"] == "value_error":
                msg = msg.removeprefix("Value error, ")
            elif err["type"] == "literal_error":
                msg += f" (found {err.get('input')!r})"
            lines.append(f"  - {key}: {msg}")
        raise ConfigError(f"{path}: invalid config:\n" + "\n".join(lines)) from None
    cfg.config_path = path
    _check_contract_keys(cfg)
    cfg.params = check_params(cfg.params, None if notebook_dir is None else available_parameters(notebook_dir), path)
    return cfg


def _check_contract_keys(cfg: RunConfig) -> None:
    for table, mapping in cfg.columns.items():
        allowed = set(CONTRACT_COLUMNS[table])
        if table == "survey":
            allowed |= set(cfg.survey.items)
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{cfg.config_path}: columns.{table}.{key}: '{key}' is not a contract column of "
                    f"'{table}'.{hint} Contract columns: {sorted(allowed)}."
                )
        if table in cfg.columns and table not in cfg.sources:
            raise ConfigError(
                f"{cfg.config_path}: columns.{table} is given but sources.{table} is not. "
                f"Add sources.{table}.path or remove columns.{table}."
            )
    missing_items = [i for i in cfg.survey.reverse if i not in cfg.survey.items]
    if missing_items:
        raise ConfigError(
            f"{cfg.config_path}: survey.reverse lists {missing_items}, which are not in survey.items."
        )
    for scale, items in cfg.survey.scales.items():
        unknown = [i for i in items if i not in cfg.survey.items]
        if unknown:
            raise ConfigError(
                f"{cfg.config_path}: survey.scales.{_shown(scale)} lists {unknown}, which are not in survey.items "
                f"{list(cfg.survey.items)}. Add them to survey.items or remove them from the scale."
            )
    if "survey" in cfg.sources and not cfg.survey.items:
        raise ConfigError(
            f"{cfg.config_path}: sources.survey is given but survey.items is empty, so no answer could be read. "
            f"List the Likert item columns under survey.items (e.g. items: [q1, q2, q3])."
        )
    _check_row_number_ids(cfg)


def _check_row_number_ids(cfg: RunConfig) -> None:
    """``customer_id_from: row_number`` only where numbered rows cannot be mistaken for real customers."""
    for table, src in cfg.sources.items():
        if src.customer_id_from != "row_number":
            continue
        key = f"sources.{table}.customer_id_from"
        if table not in ("customers", "survey"):
            raise ConfigError(
                f"{cfg.config_path}: {key}: row numbers can stand in for the id of a customer or survey table only; "
                f"the {table} rows must name their customer. Map columns.{table}.customer_id instead."
            )
        if "customer_id" in cfg.columns.get(table, {}):
            raise ConfigError(
                f"{cfg.config_path}: {key} is row_number but columns.{table}.customer_id maps an id column. "
                f"Keep one of the two."
            )
        if table == "customers" and ("transactions" in cfg.sources or "events" in cfg.sources):
            other = "transactions" if "transactions" in cfg.sources else "events"
            raise ConfigError(
                f"{cfg.config_path}: {key} is row_number, but the {other} name customers by their own ids, which "
                f"numbered rows cannot match. Map columns.customers.customer_id to the id the {other} use."
            )


def config_as_dict(cfg: RunConfig) -> dict[str, Any]:
    """The config as resolved (paths absolute), for the manifest."""
    out = cfg.model_dump(mode="json", exclude={"config_path"})
    out["config_path"] = str(cfg.config_path) if cfg.config_path else None
    for table in cfg.sources:
        out["sources"][table]["resolved_path"] = cfg.resolve_path(table)
    return out


# --------------------------------------------------------------------------------------------
# Notebook parameters: read from each notebook's ``parameters`` cell, never executed.
# --------------------------------------------------------------------------------------------

_PARAMETER_CACHE: dict[Path, tuple[int, int, dict[str, Any]]] = {}


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """The parameters a notebook declares, with their defaults, read from its ``parameters`` cell.

    The cell is parsed with :mod:`ast`, not run: every statement must assign a plain literal to
    a name (the house rule for parameters cells), so reading it is fast and safe.

    Parameters
    ----------
    notebook : str or Path
        An ``.ipynb`` file.

    Returns
    -------
    dict
        Parameter name -> default value, in the cell's order (empty without a parameters cell).

    Raises
    ------
    ConfigError
        When the file is not a notebook or its parameters cell computes instead of assigning literals.

    Examples
    --------
    >>> params = notebook_parameters(NOTEBOOK_DIR / "13_behavioral.ipynb")
    >>> params["config_path"], "seed" in params
    ('../config/sample.yaml', True)
    """
    path = Path(notebook)
    stat = path.stat()
    cached = _PARAMETER_CACHE.get(path)
    if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
        return dict(cached[2])
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: cannot read the notebook ({exc}). Restore it from git or save it again from Jupyter.") from None
    cell = next((c for c in cells if c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", [])), None)
    declared: dict[str, Any] = {}
    if cell is not None:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise ConfigError(f"{path}: the parameters cell is not valid Python (line {exc.lineno}). Fix the notebook.") from None
        for stmt in tree.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
            value = getattr(stmt, "value", None)
            if len(targets) != 1 or not isinstance(targets[0], ast.Name) or value is None:
                raise ConfigError(
                    f"{path}: parameters cell line {stmt.lineno}: only `name = <literal>` assignments belong in the "
                    f"parameters cell. Move computations to the next cell."
                )
            try:
                declared[targets[0].id] = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError):
                raise ConfigError(
                    f"{path}: parameters cell line {stmt.lineno}: {targets[0].id} is not a plain literal. "
                    f"Give it a literal default (number, text, list, ...) and compute in the next cell."
                ) from None
    _PARAMETER_CACHE[path] = (stat.st_mtime_ns, stat.st_size, declared)
    return dict(declared)


def available_parameters(notebook_dir: str | Path = NOTEBOOK_DIR) -> dict[str, dict[str, Any]]:
    """Parameters of every notebook of a run (``NN_name.ipynb``), by notebook stem."""
    return {p.stem: notebook_parameters(p) for p in sorted(Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))}


def settable_parameters(declared: dict[str, Any]) -> dict[str, Any]:
    """The parameters a config may set under ``params.<notebook>``: all but the reserved and run-level ones."""
    return {k: v for k, v in declared.items() if k not in RESERVED_PARAMETERS and k not in RUN_LEVEL_PARAMETERS}


def is_parameter_name(name: Any) -> bool:
    """A name papermill can assign safely: a Python identifier that is not a keyword."""
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


_TYPE_WORDS = {
    bool: "true or false", int: "a whole number", float: "a number", str: "text",
    list: "a list", tuple: "a list", dict: "a mapping",
}


def plain_value(value: Any, where: str) -> Any:
    """``value`` as a plain literal a notebook can receive, or an error for ``where``.

    Plain literals are None, booleans, numbers, text, lists and mappings with text keys of
    those. YAML dates (``2024-06-30`` unquoted) become ``YYYY-MM-DD`` text, as notebooks take
    dates as text. Non-finite numbers are refused (papermill would write them as code).

    Raises
    ------
    ValueError
        With a sentence saying what is wrong with ``where``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} must be text (quote it)")  # noqa: TRY004 - one error type for callers
            out[k] = plain_value(v, f"{where}.{k}")
        return out
    raise ValueError(f"{where}: a {type(value).__name__} is not a plain value (use numbers, text, lists or mappings)")


def _type_problem(value: Any, default: Any) -> str | None:
    if default is None:
        return None
    expected = type(default)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif expected in (list, tuple):
        ok = isinstance(value, list)
    else:
        ok = isinstance(value, expected)
    if ok:
        return None
    hint = " (quote dates and other text)" if expected is str else ""
    return (f"expected {_TYPE_WORDS.get(expected, expected.__name__)} like the notebook's default {default!r}, "
            f"found {value!r} ({_TYPE_WORDS.get(type(value), type(value).__name__)}){hint}")


def _shown(name: Any, quoted: bool = False) -> str:
    """A config key for a message: as typed when it is a plain name, else its repr (shortened)."""
    plain = isinstance(name, str) and name.replace("_", "").isalnum()
    text = f"'{name}'" if plain and quoted else str(name) if plain else repr(name)
    return text if len(text) <= 80 else text[:76] + "...'"


def _close(name: Any, options: list[str]) -> str:
    close = difflib.get_close_matches(str(name), options, n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_params(
    params: dict[str, dict[str, Any]], notebooks: dict[str, dict[str, Any]] | None, source: str | Path
) -> dict[str, dict[str, Any]]:
    """Check ``params`` against the notebooks' parameters cells; return it with plain values.

    Refused, each with the config file, the key (``params.13_behavioral.kk``), close matches
    and the valid choices: a notebook that does not exist, a parameter the notebook does not
    declare, a name that is not a Python identifier, the reserved ``config_path``/``run_dir``,
    ``seed`` (set the top-level ``seed``), a value that is not a plain literal, and a value of
    another type than the default's (a ``None`` default takes any literal; a whole number is
    fine where a number is expected).

    Parameters
    ----------
    params : dict
        ``params`` as read from the config.
    notebooks : dict or None
        Notebook stem -> declared parameters (see :func:`available_parameters`); ``None``
        skips the checks that need the notebooks.
    source : str or Path
        The config file, for messages.

    Raises
    ------
    ConfigError
        Listing every problem found.
    """
    problems: list[str] = []
    checked: dict[str, dict[str, Any]] = {}
    stems = sorted(notebooks) if notebooks is not None else []
    for notebook, values in params.items():
        key = f"params.{_shown(notebook)}"
        if notebooks is not None and notebook not in notebooks:
            problems.append(f"{key}: no notebook named {_shown(notebook, quoted=True)}.{_close(notebook, stems)} Notebooks: {stems}.")
            continue
        declared = notebooks[notebook] if notebooks is not None else None
        valid = sorted(settable_parameters(declared)) if declared is not None else []
        listing = f" Parameters of {notebook}: {valid}." if declared is not None else ""
        checked[notebook] = {}
        for name, value in values.items():
            where = f"{key}.{_shown(name)}"
            if not is_parameter_name(name):
                problems.append(f"{where}: not a parameter name; names are Python identifiers such as k_min "
                                f"(config values are passed as data, never run).{_close(name, valid)}{listing}")
                continue
            if name in RESERVED_PARAMETERS:
                problems.append(f"{where}: set by the runner for every notebook; remove it from the config.{listing}")
                continue
            if name in RUN_LEVEL_PARAMETERS:
                problems.append(f"{where}: set the top-level '{RUN_LEVEL_PARAMETERS[name]}' instead; it reaches every "
                                f"notebook that draws random numbers, so one run uses one {name}.")
                continue
            if declared is not None and name not in declared:
                problems.append(f"{where}: {notebook} has no parameter '{name}'.{_close(name, valid)}{listing}")
                continue
            try:
                plain = plain_value(value, where)
            except ValueError as exc:
                problems.append(f"{exc}.")
                continue
            wrong = _type_problem(plain, declared[name]) if declared is not None else None
            if wrong:
                problems.append(f"{where}: {wrong}.")
                continue
            checked[notebook][name] = plain
    if problems:
        raise ConfigError(f"{source}: invalid notebook parameters:\n" + "\n".join(f"  - {p}" for p in problems))
    return checked
