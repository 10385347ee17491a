"""Where the SQL of the feature step runs: DuckDB (embedded, the default) or Apache Spark.

The feature logic is written once, as SQL in DuckDB's dialect (see :mod:`analysis.features`).
:class:`DuckDBEngine` runs it as written; :class:`~analysis.engines.spark.SparkEngine` transpiles
it to Spark SQL with SQLGlot and runs it on a Spark cluster (``local[*]`` by default). Both take
tables as pandas DataFrames or Parquet paths and return results as pandas DataFrames, so
everything after the SQL (a few vectorised ratios per customer) is shared too.

Examples
--------
>>> import pandas as pd
>>> with connect("duckdb") as engine:
...     engine.register("tx", pd.DataFrame({"customer_id": ["a", "a", "b"]}))
...     engine.query("SELECT customer_id, count(*) AS n FROM tx GROUP BY 1 ORDER BY 1")["n"].tolist()
[2, 1]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Self

import pandas as pd

#: Names accepted by :func:`connect` (and by ``engine:`` in a run config).
ENGINES = ("duckdb", "spark")

Source = pd.DataFrame | str | Path


class Engine:
    """A place to run DuckDB-dialect SQL over registered tables (see :func:`connect`)."""

    name = ""

    def register(self, table: str, source: Source) -> None:
        """Make ``source`` (a DataFrame or a Parquet path) queryable as ``table``."""
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        """Column names of a registered table."""
        raise NotImplementedError

    def query(self, sql: str) -> pd.DataFrame:
        """Run a DuckDB-dialect query; the result as a pandas DataFrame."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the tables this engine registered."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parquet_scan(path: str | Path, *, row_numbers: bool = False) -> str:
    """SQL: DuckDB's scan of a Parquet file, the path quoted as a literal; with ``row_numbers`` a
    ``file_row_number`` column numbers the rows in file order."""
    literal = str(path).replace("'", "''")
    return f"read_parquet('{literal}'{', file_row_number = true' if row_numbers else ''})"


def usable_cores(at_most: int = 4) -> int:
    """The cores this process may run on (its CPU affinity), at most ``at_most``: for notebooks run side by
    side and for threads of element-wise formulas."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, at_most))


def exact(column: str) -> str:
    """SQL: a numeric column as an exact decimal (millionths) for summing, NaN read as NULL.

    Sums of decimals are the same whichever way DuckDB splits the work between threads (float sums
    differ in the last bit), and ``sum`` skips NaN as pandas does (a float NaN that is not NULL, as
    other writers than pandas store it, would otherwise fail the cast).
    """
    quoted = '"' + column.replace('"', '""') + '"'
    return f"CAST(CASE WHEN isnan({quoted}) THEN NULL ELSE {quoted} END AS DECIMAL(38, 6))"


def exact_sum(column: str) -> str:
    """SQL: the exact sum of a numeric column (see :func:`exact`), as a DOUBLE."""
    return f"CAST(sum({exact(column)}) AS DOUBLE)"


def default_memory_limit() -> str:
    """An eighth of the machine's memory (at least 1 GB), in MB: a run executes several notebooks side
    by side, each with its own DuckDB, so none may take DuckDB's default of 80 %. (In whole GB, rounded
    down, it was 2 GB on a 23.4 GB machine instead of 2.9: the feature step then spilled at a million
    customers and took a quarter longer.)"""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "1024MB"
    return f"{max(1024, total // 8 // 2**20)}MB"


class DuckDBEngine(Engine):
    """An in-process DuckDB connection using all cores (``threads``: DuckDB's default).

    Results do not depend on the thread count: the feature SQL sums integers (amounts in
    millionths), whose sum is the same in any order. Beyond ``memory_limit`` (default
    :func:`default_memory_limit`) DuckDB spills its aggregations to a temporary folder instead
    of growing.
    """

    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        import duckdb

        self.threads = threads
        self.memory_limit = memory_limit
        self._spill = tempfile.mkdtemp(prefix="clientele-duckdb-")
        config = {"memory_limit": memory_limit or default_memory_limit(), "temp_directory": self._spill}
        if threads:
            config["threads"] = threads
        self.con_ = duckdb.connect(config=config)

    def register(self, table: str, source: Source) -> None:
        if isinstance(source, pd.DataFrame):
            self.con_.register(table, source)
        else:
            self.con_.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {parquet_scan(source)}")

    def columns(self, table: str) -> list[str]:
        return [row[0] for row in self.con_.execute(f"DESCRIBE {table}").fetchall()]

    def query(self, sql: str) -> pd.DataFrame:
        return self.con_.execute(sql).df()

    def close(self) -> None:
        self.con_.close()
        shutil.rmtree(self._spill, ignore_errors=True)


def connect(engine: str | Engine | None = None, *, master: str | None = None, conf: dict[str, str] | None = None) -> Engine:
    """An engine by name (``"duckdb"``, the default, or ``"spark"``), or ``engine`` itself.

    Parameters
    ----------
    engine : {"duckdb", "spark"} or Engine, optional
        Where the SQL runs.
    master : str, optional
        Spark master URL (``local[*]``, ``spark://host:7077``, ``yarn``, ``k8s://...``); Spark only.
    conf : dict, optional
        Further Spark settings (``spark.executor.memory``, ...); Spark only.
    """
    if isinstance(engine, Engine):
        return engine
    name = engine or "duckdb"
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        from .spark import SparkEngine

        return SparkEngine(master=master, conf=conf)
    raise ValueError(f"engine {name!r} is not known; use one of {list(ENGINES)} (config key: engine).")
