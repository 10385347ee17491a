"""Run configuration: load a YAML file, validate it, resolve its paths.

A run config says where the data are (``sources``), how the user's column names map onto the
data contract (``columns``), the analysis date (``as_of``) and per-notebook parameters
(``params``). Every error names the config file and the key to fix.

Relative source paths resolve against the folder of the config file. A path may start with
``{data_root}``, which resolves to, in order: the ``CLIENTELE_DATA_ROOT`` environment variable,
the config's ``data_root`` key, or ``<project>/../shared/data``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DATA_ROOT_ENV = "CLIENTELE_DATA_ROOT"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = PROJECT_ROOT.parent / "shared" / "data"

TABLES = ("customers", "transactions", "survey", "events")


class ConfigError(ValueError):
    """A run config (or the data it points at) cannot be used as written."""


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
    """

    path: str
    format: Literal["csv", "parquet", "whitespace"] = "csv"
    encoding: str = "utf-8"
    sep: str = ","
    header: bool = True
    names: list[str] | None = None
    skiprows: int = 0
    date_format: str | None = None
    dayfirst: bool = False
    decimal: str = "."
    cancellation_prefix: str | None = None
    keep_zero_amounts: bool = False
    drop_duplicate_lines: bool = True


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


class RunConfig(_Strict):
    """A validated run configuration."""

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
        """Parameters the config sets for one notebook (by stem, e.g. ``13_behavioral``)."""
        return dict(self.params.get(notebook, {}))

    def display_path(self) -> str:
        """The config path as a user would type it (relative to the project when inside it)."""
        if self.config_path is None:
            return "<config>"
        try:
            return str(self.config_path.relative_to(PROJECT_ROOT))
        except ValueError:
            return str(self.config_path)


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


def load_config(path: str | Path) -> RunConfig:
    """Load and validate a run config.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        With the file and key that need fixing.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"config file {path} not found. Pass an existing file, e.g. config/sample.yaml.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
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
            lines.append(f"  - {key}: {msg}")
        raise ConfigError(f"{path}: invalid config:\n" + "\n".join(lines)) from None
    cfg.config_path = path
    _check_contract_keys(cfg)
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


def config_as_dict(cfg: RunConfig) -> dict[str, Any]:
    """The config as resolved (paths absolute), for the manifest."""
    out = cfg.model_dump(mode="json", exclude={"config_path"})
    out["config_path"] = str(cfg.config_path) if cfg.config_path else None
    for table in cfg.sources:
        out["sources"][table]["resolved_path"] = cfg.resolve_path(table)
    return out
