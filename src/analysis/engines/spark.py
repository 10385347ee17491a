"""Run the project's DuckDB-dialect SQL on Apache Spark (PySpark), transpiled with SQLGlot.

Spark is optional (``pip install 'clientele[spark]'``, and a Java runtime). A run config selects
it with ``engine: spark`` and says where the cluster is under ``spark.master``; the aggregation
over order lines then runs on the executors and only the per-customer result (one row per
customer) comes back to the driver.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from . import Engine, Source

#: Settings every session gets: timestamps are wall-clock times (no zone), so Spark must not
#: shift them; pandas writes nanosecond timestamps, which Spark reads only as integers.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
}


class SparkUnavailable(RuntimeError):
    """PySpark or a Java runtime is missing."""


def spark_available() -> str | None:
    """None when PySpark and Java are there; else why not (for a skip or an error message)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'clientele[spark]')"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime found (install a JRE, e.g. Debian's default-jre-headless, or set JAVA_HOME)"
    return None


class SparkEngine(Engine):
    """DuckDB-dialect SQL run on a Spark session.

    Parameters
    ----------
    master : str, optional
        Master URL; default ``local[*]`` (every core of this machine). An existing session in
        this process is reused whatever its master.
    conf : dict, optional
        Further Spark settings, e.g. ``{"spark.executor.memory": "8g"}``.
    """

    name = "spark"

    def __init__(self, master: str | None = None, conf: dict[str, str] | None = None) -> None:
        reason = spark_available()
        if reason:
            raise SparkUnavailable(f"engine: spark cannot start: {reason}.")
        from pyspark.sql import SparkSession

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        master = master or "local[*]"
        builder = SparkSession.builder.master(master).appName("clientele")
        defaults = {"spark.ui.showConsoleProgress": "false"}
        if master.startswith("local"):
            # driver and executors share one JVM: the 1 GB default is too small for a feature step
            defaults["spark.driver.memory"] = "2g"
            # a few cores: Spark's 200 shuffle partitions would be mostly scheduling overhead
            defaults["spark.sql.shuffle.partitions"] = "8"
        for key, value in {**defaults, **(conf or {})}.items():
            builder = builder.config(key, str(value))
        self.session_ = builder.getOrCreate()
        for key, value in SESSION_CONF.items():
            self.session_.conf.set(key, value)
        self._views: dict[str, str] = {}
        self._token = uuid.uuid4().hex[:8]

    def register(self, table: str, source: Source) -> None:
        view = f"clientele_{self._token}_{table}"
        if isinstance(source, pd.DataFrame):
            # cut the plan from the driver-side data, which the query would otherwise carry into
            # every task of every stage that reads it
            frame = self.session_.createDataFrame(_for_spark(source)).localCheckpoint()
        else:
            frame = self.session_.read.parquet(str(source))
            nanos = _nanosecond_columns(source)
            if nanos:
                # read as nanoseconds since the epoch (see SESSION_CONF); back to timestamps
                frame = frame.selectExpr(*[
                    f"timestamp_micros(`{c}` DIV 1000) AS `{c}`" if c in nanos else f"`{c}`" for c in frame.columns
                ])
        frame.createOrReplaceTempView(view)
        self._views[table] = view

    def columns(self, table: str) -> list[str]:
        return list(self.session_.table(self._views[table]).columns)

    def transpile(self, sql: str) -> str:
        """``sql`` (DuckDB dialect) in Spark's dialect, with table names mapped to this engine's views."""
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(sql, read="duckdb")
        ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if table.name in self._views and table.name not in ctes:
                table.set("this", exp.to_identifier(self._views[table.name]))
        for call in list(tree.find_all(exp.Anonymous)):
            if call.name.lower() == "hash":  # DuckDB's hash is 64-bit; Spark's HASH only 32
                call.replace(exp.Anonymous(this="XXHASH64", expressions=call.expressions))
        return tree.sql(dialect="spark")

    def query(self, sql: str) -> pd.DataFrame:
        return self.session_.sql(self.transpile(sql)).toPandas()

    def close(self) -> None:
        for view in self._views.values():
            self.session_.catalog.dropTempView(view)
        self._views.clear()


def _for_spark(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame Spark's Arrow conversion takes: pandas' string dtype as plain objects."""
    out = frame.copy(deep=False)
    for column in out.columns:
        if pd.api.types.is_string_dtype(out[column].dtype) and not pd.api.types.is_object_dtype(out[column].dtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def _nanosecond_columns(source: Any) -> list[str]:
    """Columns a local Parquet file stores as nanosecond timestamps (pandas' default)."""
    path = Path(str(source))
    if not path.is_file():
        return []
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]
