"""All file-system access of the package: raw sources in, run-folder artefacts out.

Raw sources are read as text (every column ``str``) so that the data contract, not the CSV
reader, decides what a bad value is and can set the row aside with a reason. A file's format,
compression and byte-order mark are judged by its content (:func:`sniff`), never by its name:
Parquet, Excel, SPSS, Stata and R files are read with their own readers.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import difflib
import glob as _glob
import gzip
import hashlib
import json
import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import TextIOWrapper
from pathlib import Path
from typing import IO, Any, NamedTuple

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
    notes : list of (str, int)
        Remarks on how the files were read, for the ledger (e.g. garbled accents, rows numbered
        as ids), with the rows or files they concern.
    """

    frame: pd.DataFrame
    original: pd.DataFrame
    files: list[dict[str, Any]]
    mapping: dict[str, str]
    unmapped: list[str] = field(default_factory=list)
    notes: list[tuple[str, int]] = field(default_factory=list)


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
    folders = [f for f in files if os.path.isdir(f)]
    if folders:
        raise ConfigError(
            f"{folders[0]}: is a folder, not a file (config key {key} in {cfg.display_path()}). "
            f"Point {key} at a file in it, or at all of them with a glob such as '{os.path.join(folders[0], '*.csv')}'."
        )
    for f in files:
        if os.path.getsize(f) == 0:
            raise ConfigError(
                f"{f}: the file is empty (config key {key} in {cfg.display_path()}). "
                f"Export the {table} table again or point {key} at the right file."
            )
        if not os.access(f, os.R_OK):
            raise ConfigError(
                f"{f}: the file cannot be read (permission denied; config key {key} in {cfg.display_path()}). "
                f"Give yourself read access (chmod u+r) or copy it somewhere readable."
            )
    return files


# Separators users' exports actually use; a header read as one column that contains one of
# them means ``sep`` is wrong.
_CANDIDATE_SEPARATORS = (",", ";", "\t", "|")

#: What Clientele reads, for messages about files it cannot read.
SUPPORTED_FORMATS = (
    "CSV or other delimited text (also gzip, bz2, xz, zip or zstd compressed), Parquet, Excel .xlsx, "
    "SPSS .sav, Stata .dta and R .rds/.rda"
)
_BINARY_FORMATS = {"parquet": "parquet", "excel": "excel", "spss": "spss", "stata": "stata", "rds": "r", "rdata": "r"}
_KIND_NAMES = {
    "text": "text", "parquet": "Parquet", "excel": "Excel workbook", "spss": "SPSS data file", "stata": "Stata data file",
    "rds": "R data file (.rds)", "rdata": "R data file (.rda)",
}


@dataclass(frozen=True)
class FileKind:
    """What a source file holds, judged by its first bytes (never by its name).

    Attributes
    ----------
    kind : str
        ``text``, ``parquet``, ``excel``, ``spss``, ``stata``, ``rds`` or ``rdata``.
    compression : str or None
        How a text file is compressed: ``gzip``, ``bz2``, ``xz``, ``zip`` or ``zstd``.
    bom : str or None
        The codec a byte-order mark at the start of a text file names (``utf-8-sig``, ``utf-16``).
    utf16_guess : str or None
        ``utf-16-le``/``utf-16-be`` for text with a NUL byte every other byte but no mark.
    """

    kind: str
    compression: str | None = None
    bom: str | None = None
    utf16_guess: str | None = None

    @property
    def name(self) -> str:
        if self.kind == "text" and self.compression:
            return f"{self.compression}-compressed text"
        return _KIND_NAMES[self.kind]


_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
#: Errors of truncated or damaged compressed data.
_CORRUPT = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile, zipfile.BadZipFile)


def _is_r_data(head: bytes) -> str | None:
    if head[:5] in (b"RDX2\n", b"RDX3\n", b"RDA2\n", b"RDA3\n", b"RDB2\n", b"RDB3\n"):
        return "rdata"
    if head[:2] == b"X\n" and head[2:5] == b"\x00\x00\x00" or head[:4] in (b"A\n2\n", b"A\n3\n"):
        return "rds"
    return None


def _text_kind(head: bytes, compression: str | None) -> FileKind:
    for mark, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(mark):
            return FileKind("text", compression, bom=codec)
    guess = None
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if odd and odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
            guess = "utf-16-le"
        elif even and even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
            guess = "utf-16-be"
    # Text has next to no control bytes besides tab and line ends (a stray NUL in an export is still text).
    if guess is None and sum(head.count(c) for c in _CONTROL_BYTES) > 0.05 * len(head):
        raise _NotReadable("a binary file")
    return FileKind("text", compression, utf16_guess=guess)


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


class _NotReadable(Exception):
    """A file in a format Clientele does not read; the argument says what it looks like."""


def sniff(path: str) -> FileKind:
    """The kind of a source file from its first bytes: formats, compression and byte-order marks.

    Raises
    ------
    ConfigError
        For a file in a format Clientele does not read (naming what it looks like and the
        formats it reads).
    """
    try:
        return _sniff(path)
    except _NotReadable as exc:
        raise ConfigError(
            f"{path}: cannot read this file: it looks like {exc.args[0]}. Clientele reads {SUPPORTED_FORMATS}; "
            f"export the table in one of these."
        ) from None


def _sniff(path: str) -> FileKind:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return FileKind("parquet")
    if head[:4] in (b"$FL2", b"$FL3"):
        return FileKind("spss")
    if head.startswith(b"<stata_dta>") or (Path(path).suffix.lower() == ".dta" and head[:1] in (b"\x71", b"\x72", b"\x73")):
        return FileKind("stata")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise _NotReadable("an Excel 97-2003 workbook (.xls) or another old Office file; save it as .xlsx or CSV")
    if r_kind := _is_r_data(head):
        return FileKind(r_kind)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                inner = archive.open(names[0]).read(4096) if len(names) == 1 else b""
        except (zipfile.BadZipFile, OSError):
            raise _NotReadable("a damaged zip archive") from None
        if "xl/workbook.xml" in names:
            return FileKind("excel")
        if any(n.startswith("xl/") for n in names):
            raise _NotReadable("an Excel binary workbook (.xlsb); save it as .xlsx or CSV")
        if "mimetype" in names or "word/document.xml" in names:
            raise _NotReadable("an OpenDocument or Word file, not a table Clientele reads; save it as .xlsx or CSV")
        if len(names) != 1:
            raise _NotReadable(f"a zip archive of {len(names)} files; unpack it and point the path at the file (or a glob)")
        return _text_kind(inner, "zip")
    for magic, compression in _COMPRESSED.items():
        if head.startswith(magic):
            if compression == "zstd":
                return FileKind("text", "zstd")
            try:
                with _OPENERS[compression](path, "rb") as fh:
                    inner = fh.read(4096)
            except _CORRUPT:
                return FileKind("text", compression)  # reading it says what is damaged
            if r_kind := _is_r_data(inner):
                return FileKind(r_kind)
            return _text_kind(inner, compression)
    return _text_kind(head, None)


def reading_encoding(cfg: RunConfig, table: str, path: str | None = None) -> str:
    """The codec used to read a text source: a byte-order mark's, else ``encoding`` (UTF-8 as ``utf-8-sig``).

    Excel and many Windows tools start UTF-8 files with a byte-order mark; read as plain UTF-8
    it sticks to the first column name (``'\\ufeffcustomer_id'``) and the mapping fails. Reading
    UTF-8 as ``utf-8-sig`` drops a leading mark and changes nothing else. A mark at the start
    of ``path`` (UTF-8 or UTF-16) names the encoding whatever ``encoding`` says.

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
    if path is not None:
        kind = sniff(path)
        if kind.bom:
            return kind.bom
    return "utf-8-sig" if codec == "utf-8" else name


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


@contextlib.contextmanager
def _open_binary(path: str, kind: FileKind) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed."""
    if kind.compression == "zip":
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if not n.endswith("/"))
            with archive.open(name) as fh:
                yield fh
        return
    opener = _OPENERS.get(kind.compression or "", open)
    with opener(path, "rb") as fh:
        yield fh


def _text_encoding(path: str, cfg: RunConfig, table: str, kind: FileKind) -> str:
    """The codec a text file is read with; refuses UTF-16 without a mark read as something else."""
    encoding = reading_encoding(cfg, table)
    if kind.bom:
        return kind.bom
    codec = codecs.lookup(encoding).name
    if kind.utf16_guess and not codec.startswith("utf-16"):
        raise ConfigError(
            f"{path}: the file looks like UTF-16 text without a byte-order mark (every other byte is 0), not "
            f"{cfg.sources[table].encoding}. Set sources.{table}.encoding: {kind.utf16_guess} in {cfg.display_path()}."
        )
    if codec in ("utf-16", "utf-32"):  # these codecs need the mark the file does not have
        fix = kind.utf16_guess or "utf-8"
        raise ConfigError(
            f"{path}: sources.{table}.encoding is {cfg.sources[table].encoding}, but the file does not start with a "
            f"{codec.upper()} byte-order mark. Set sources.{table}.encoding: {fix} in {cfg.display_path()}."
        )
    return encoding


def _scan_text(path: str, cfg: RunConfig, table: str, kind: FileKind, chunk: int = 1 << 20) -> bool:
    """Decode a whole text source once, so a wrong encoding fails before any notebook runs.

    Streams the file (compressed files included); about a second for 500 MB of UTF-8. Returns
    whether the file is UTF-8 with non-ASCII characters although it is read in another codec
    (its accents would come out garbled: ``RÃ©sumÃ©`` for ``Résumé``).
    """
    if kind.compression == "zstd":
        return False  # pandas reads these; a decoding error still surfaces, with the same message, on read
    encoding = _text_encoding(path, cfg, table, kind)
    decoder = codecs.getincrementaldecoder(encoding)()
    utf8 = None if _is_utf8(encoding) or encoding.lower().startswith("utf") else codecs.getincrementaldecoder("utf-8")()
    non_ascii = False
    try:
        with _open_binary(path, kind) as fh:
            while block := fh.read(chunk):
                decoder.decode(block)
                if utf8 is not None and not block.isascii():
                    non_ascii = True
                    try:
                        utf8.decode(block)
                    except UnicodeDecodeError:
                        utf8 = None
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _decode_error(path, cfg, table, kind) from None
    except _CORRUPT as exc:
        raise _corrupt_error(path, cfg, table, kind, exc) from None
    if utf8 is not None:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return utf8 is not None and non_ascii


def _corrupt_error(path: str, cfg: RunConfig, table: str, kind: FileKind, exc: BaseException) -> ConfigError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    packed = kind.compression or kind.name
    return ConfigError(
        f"{path}: the {packed} data are truncated or damaged ({detail}). Copy or export the file again "
        f"(config key sources.{table}.path in {cfg.display_path()})."
    )


def _first_undecodable_line(path: str, encoding: str, kind: FileKind) -> tuple[int, bytes, UnicodeDecodeError] | None:
    """Line number (1-based), raw bytes and error of the first line that does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with _open_binary(path, kind) as fh:
        for number, line in enumerate(fh, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as exc:
                return number, line, exc
    return None


def _decode_error(path: str, cfg: RunConfig, table: str, kind: FileKind | None = None) -> ConfigError:
    """Where the file stops being valid in its configured encoding, and what it may be instead."""
    src = cfg.sources[table]
    kind = kind or sniff(path)
    encoding = _text_encoding(path, cfg, table, kind)
    found = _first_undecodable_line(path, encoding, kind)
    where = ""
    if found is not None:
        number, line, exc = found
        bad = line[exc.start:exc.start + 1]
        guess = line.decode("cp1252", errors="replace").strip()
        guess = guess if len(guess) <= 100 else guess[:97] + "..."
        where = f" Line {number} has byte 0x{bad.hex()} ({exc.reason}); read as cp1252 it says: {guess!r}."
    shown = "utf-8" if encoding == "utf-8-sig" else encoding
    return ConfigError(
        f"{path}: cannot decode the file as {shown if kind.bom else src.encoding}.{where} Set sources.{table}.encoding in "
        f"{cfg.display_path()} (e.g. cp1252 or latin-1 for Windows exports)."
    )


def _check_declared_format(path: str, cfg: RunConfig, table: str, kind: FileKind) -> None:
    """A ``format`` naming a binary format for a file that is text: say so (binary content wins otherwise)."""
    declared = cfg.sources[table].format
    if kind.kind == "text" and declared not in ("csv", "whitespace"):
        with _open_binary(path, kind) as fh:
            first = fh.readline(200).decode("utf-8", errors="replace").strip()
        raise ConfigError(
            f"{path}: sources.{table}.format is {declared!r}, but the file is text (it starts {first!r}). "
            f"Set sources.{table}.format: csv (or remove it) in {cfg.display_path()}."
        )


def _read_one(path: str, cfg: RunConfig, table: str, nrows: int | None = None,
              notes: list[tuple[str, int]] | None = None) -> pd.DataFrame:
    """One source file as a DataFrame, read the way its content (not its name) says.

    ``notes`` collects remarks for the ledger (e.g. which sheet of a workbook was read).
    """
    kind = sniff(path)
    _check_declared_format(path, cfg, table, kind)
    try:
        if kind.kind == "text":
            return _read_text(path, cfg, table, kind, nrows)
        frame = _BINARY_READERS[kind.kind](path, cfg, table, nrows, notes if notes is not None else [])
    except ConfigError:
        raise
    except _CORRUPT as exc:
        raise _corrupt_error(path, cfg, table, kind, exc) from None
    except ImportError as exc:
        raise ConfigError(
            f"{path}: reading a {kind.name} needs the Python package {exc.name!r}, which is not installed. "
            f"Install the project again (make install), or export the table as CSV."
        ) from None
    except Exception as exc:
        if kind.kind == "text":
            raise
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConfigError(
            f"{path}: cannot read it as a {kind.name} ({detail}). Export the {table} table again, or as CSV "
            f"(config key sources.{table}.path in {cfg.display_path()})."
        ) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_text(path: str, cfg: RunConfig, table: str, kind: FileKind, nrows: int | None) -> pd.DataFrame:
    src = cfg.sources[table]
    kwargs: dict[str, Any] = {
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        "encoding": _text_encoding(path, cfg, table, kind),
        "compression": kind.compression,
        "skiprows": src.skiprows or None,
        "nrows": nrows,
    }
    if src.format == "whitespace":
        kwargs["sep"] = r"\s+"
    elif len(src.sep) > 1:  # pandas reads a longer separator as a pattern; the user means it as written
        kwargs["sep"], kwargs["engine"] = re.escape(src.sep), "python"
    else:
        kwargs["sep"] = src.sep
    kwargs.update(_header_kwargs(path, cfg, table))
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeError:
        raise _decode_error(path, cfg, table, kind) from None
    except _CORRUPT as exc:
        raise _corrupt_error(path, cfg, table, kind, exc) from None
    except pd.errors.EmptyDataError:
        raise ConfigError(
            f"{path}: no columns could be read (config key sources.{table}.path in "
            f"{cfg.display_path()}). The file is empty or has only blank lines."
        ) from None
    except (pd.errors.ParserError, ValueError) as exc:
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


def _header_kwargs(path: str, cfg: RunConfig, table: str) -> dict[str, Any]:
    src = cfg.sources[table]
    if not src.header:
        if not src.names:
            raise ConfigError(
                f"{path}: sources.{table}.header is false but sources.{table}.names is not given "
                f"(in {cfg.display_path()}). List the column names in file order."
            )
        return {"header": None, "names": src.names}
    if src.names:
        return {"header": 0, "names": src.names}
    return {}


def _read_parquet(path: str, cfg: RunConfig, table: str, nrows: int | None, notes: list) -> pd.DataFrame:
    if nrows is None:
        return pd.read_parquet(path)
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    batch = next(parquet.iter_batches(batch_size=max(nrows, 1)), None)
    return batch.to_pandas().head(nrows) if batch is not None else parquet.schema_arrow.empty_table().to_pandas()


def _read_excel(path: str, cfg: RunConfig, table: str, nrows: int | None, notes: list) -> pd.DataFrame:
    src = cfg.sources[table]
    with pd.ExcelFile(path, engine="openpyxl") as workbook:
        sheets = list(workbook.sheet_names)
        sheet = 0 if src.sheet is None else src.sheet
        if (isinstance(sheet, str) and sheet not in sheets) or (isinstance(sheet, int) and not 0 <= sheet < len(sheets)):
            raise ConfigError(
                f"{path}: no sheet {sheet!r}; the workbook has {sheets}. Set sources.{table}.sheet in "
                f"{cfg.display_path()} to one of these names (or a number from 0)."
            )
        if src.sheet is None and len(sheets) > 1:
            notes.append((f"the workbook has {len(sheets)} sheets; read the first, {sheets[0]!r} (choose another with sources.{table}.sheet)", 1))
        kwargs = _header_kwargs(path, cfg, table)
        return workbook.parse(sheet, nrows=nrows, skiprows=src.skiprows or None, **kwargs)


def _read_readstat(path: str, cfg: RunConfig, table: str, nrows: int | None, notes: list) -> pd.DataFrame:
    """SPSS and Stata files: value labels applied (``1`` -> ``"female"``), except on survey items,
    whose codes are the answers."""
    import pyreadstat

    reader = pyreadstat.read_dta if sniff(path).kind == "stata" else pyreadstat.read_sav
    frame, meta = reader(path, row_limit=nrows or 0, apply_value_formats=False)
    codes = set(cfg.survey.items) | set(cfg.columns.get(table, {}).values()) if table == "survey" else set()
    for column, labels in (meta.variable_value_labels or {}).items():
        if column in codes or column not in frame.columns or not labels:
            continue
        labelled = frame[column].map(labels)
        frame[column] = labelled.where(labelled.notna(), frame[column]).astype(object)
    return frame


def _read_r(path: str, cfg: RunConfig, table: str, nrows: int | None, notes: list) -> pd.DataFrame:
    import pyreadr

    src = cfg.sources[table]
    objects = [o["object_name"] for o in pyreadr.list_objects(path)]
    if src.r_object is not None and src.r_object not in objects:
        raise ConfigError(
            f"{path}: no R object {src.r_object!r}; the file holds {objects}. Set sources.{table}.r_object in "
            f"{cfg.display_path()} to one of these."
        )
    if src.r_object is None and len([o for o in objects if o is not None]) > 1:
        raise ConfigError(
            f"{path}: the file holds {len(objects)} R objects {objects}; say which is the {table} table with "
            f"sources.{table}.r_object in {cfg.display_path()}."
        )
    wanted = [src.r_object] if src.r_object is not None else None
    result = pyreadr.read_r(path, use_objects=wanted, row_limit=nrows or 0)
    if not result:
        raise ConfigError(
            f"{path}: the R file holds no data frame Clientele can read. Save the {table} table with "
            f"saveRDS(<data frame>, ...) or export it as CSV."
        )
    frame = next(iter(result.values()))
    index = frame.index
    if not isinstance(index, pd.RangeIndex) and list(index.astype(str)) != [str(i) for i in range(1, len(index) + 1)]:
        frame = frame.reset_index(names="row_names")  # R row names that carry information (ids, labels)
    return frame.reset_index(drop=True)


_BINARY_READERS = {"parquet": _read_parquet, "excel": _read_excel, "spss": _read_readstat, "stata": _read_readstat,
                   "rds": _read_r, "rdata": _read_r}


def raw_header(path: str, cfg: RunConfig, table: str) -> list[str] | None:
    """The column names as written in the file's header (duplicates kept), or None when the
    file has no header of its own (``names`` given, or a binary format whose names are unique)."""
    src = cfg.sources[table]
    if not src.header or src.names:
        return None
    kind = sniff(path)
    if kind.kind == "excel":  # pandas renames a repeated name ("amount.1"): read the row itself
        with pd.ExcelFile(path, engine="openpyxl") as workbook:
            row = workbook.parse(0 if src.sheet is None else src.sheet, header=None, nrows=1, skiprows=src.skiprows or None)
        return [str(v) for v in row.iloc[0].tolist()] if len(row) else None
    if kind.kind != "text" or kind.compression == "zstd":
        return None
    with _open_binary(path, kind) as fh:
        text = TextIOWrapper(fh, encoding=_text_encoding(path, cfg, table, kind), errors="replace", newline="")
        for _ in range(src.skiprows):
            text.readline()
        line = text.readline().rstrip("\r\n")
    if src.format == "whitespace":
        return line.split()
    if len(src.sep) > 1:
        return line.split(src.sep)
    return next(csv.reader([line], delimiter=src.sep), [])


def _check_duplicate_header(path: str, cfg: RunConfig, table: str, mapping: dict[str, str]) -> None:
    """Two columns of one name: refused when the analysis would use that name (it cannot tell which)."""
    header = raw_header(path, cfg, table)
    if not header:
        return
    seen: dict[str, list[int]] = {}
    for number, name in enumerate(header, 1):
        seen.setdefault(name.strip(), []).append(number)
    used = set(mapping.values())
    for name, numbers in seen.items():
        if len(numbers) > 1 and name and name in used:
            places = ", ".join(str(n) for n in numbers)
            raise ConfigError(
                f"{os.path.basename(path)}: {len(numbers)} columns are named '{name}' (columns {places}), so it is not "
                f"clear which one to use. Rename all but one in the file, or name every column with "
                f"sources.{table}.names in {cfg.display_path()}."
            )


# Words in a column name that say it identifies something (split like privacy does: "CustomerID" -> customer, id).
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_ID_WORDS = {"id", "ids", "key", "no", "nr", "num", "number", "code", "ref", "uuid", "guid"}
_WHO_WORDS = {"customer", "customers", "cust", "client", "member", "user", "account", "buyer", "shopper", "respondent",
              "participant", "patron", "guest", "household", "person", "contact", "subscriber", "cid", "custid"}


def id_candidates(sample: pd.DataFrame, table: str) -> list[str]:
    """Columns of a source sample that could hold the customer id, best first.

    Only id-like columns qualify, filled on (nearly) every row and never free text, decimals or
    dates. In a customer or survey table: distinct on (nearly) every row, and numbers only under
    a name that says id. In transactions and events, where a customer repeats: a column whose
    name says it identifies a customer. A genre (``'Comedy'``) or a campaign outcome
    (``'poutcome'``) never qualifies.
    """
    per_row = table in ("customers", "survey")
    scored: list[tuple[int, float, str]] = []
    for column in sample.columns:
        values = sample[column].dropna().astype(str).str.strip()
        values = values[values != ""]
        if values.empty or len(values) < 0.9 * len(sample):
            continue
        words = {w.lower() for w in _NAME_WORDS.findall(str(column))}
        says_id = bool(words & _ID_WORDS)
        says_who = bool(words & _WHO_WORDS)
        distinct = values.nunique()
        looks_like_value = (values.str.contains(r"\s", regex=True).mean() > 0.5
                            or values.str.fullmatch(r"-?\d+\.\d*[1-9]\d*").mean() > 0.5
                            or values.str.fullmatch(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}.*").mean() > 0.5)
        if looks_like_value:
            continue
        if per_row:  # one row per customer: distinct on (nearly) every row, and named so or many text codes
            if distinct < max(2, 0.95 * len(values)):
                continue
            numeric = pd.to_numeric(values, errors="coerce").notna().mean() > 0.5
            if not (says_id or says_who) and (distinct < 20 or numeric):  # a unique balance is still a measure
                continue
        elif not says_who or distinct < 2:  # customers repeat over order lines: the name must say so
            continue
        similarity = difflib.SequenceMatcher(None, str(column).lower(), "customer_id").ratio()
        scored.append((-(2 * says_who + says_id), -similarity, str(column)))
    return [name for *_, name in sorted(scored)]


def resolve_mapping(cfg: RunConfig, table: str, found: list[str], path: str, sample: pd.DataFrame | None = None) -> dict[str, str]:
    """Contract name -> user column, checked against the columns found in the file.

    Contract names present in the file under their own name are taken without a mapping.
    ``sample`` (the file's first rows) lets a missing customer id be met with the columns that
    could hold it.

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
    numbered = cfg.sources[table].customer_id_from == "row_number"
    for name in contract:
        if name not in mapping and name in found_str and name not in used and not (numbered and name == "customer_id"):
            mapping[name] = name
    if "customer_id" not in mapping and not numbered:
        raise _no_id_error(cfg, table, found_str, path, sample)
    if table == "survey":
        missing_items = [i for i in cfg.survey.items if i not in mapping]
        if missing_items:
            raise ConfigError(
                f"{os.path.basename(path)}: survey items {missing_items} not found. Found: {found_str[:40]}. "
                f"Map each under columns.survey.<item> in {cfg.display_path()}, or remove it from survey.items."
            )
    return mapping


def _no_id_error(cfg: RunConfig, table: str, found: list[str], path: str, sample: pd.DataFrame | None) -> ConfigError:
    candidates = id_candidates(sample, table) if sample is not None and len(sample) else []
    if candidates:
        shown = " or ".join(f"'{c}'" for c in candidates[:3])
        hint = f" (perhaps {shown})"
    else:
        hint = " (no column looks like one: none is filled and distinct on every row)" if table in ("customers", "survey") else ""
    fix = f"Map it in {cfg.display_path()} under columns.{table}.customer_id"
    if table in ("customers", "survey"):
        fix += f", or, if the table has no id, number the rows with sources.{table}.customer_id_from: row_number"
    return ConfigError(f"{os.path.basename(path)}: no customer id column{hint}. Found: {found[:40]}. {fix}.")


def _check_separator(path: str, cfg: RunConfig, table: str, columns: list[str]) -> None:
    """A header read as a single column that holds another separator: ``sep`` is wrong."""
    src = cfg.sources[table]
    if src.format != "csv" or len(columns) != 1 or sniff(path).kind != "text":
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
        if options == ("customer_id",) and cfg.sources[table].customer_id_from == "row_number":
            continue
        close = difflib.get_close_matches(options[0], found, n=1, cutoff=0.5)
        hint = f" (perhaps '{close[0]}')" if close else ""
        keys = " or ".join(f"columns.{table}.{name}" for name in options)
        wanted = " or ".join(f"'{name}'" for name in options)
        raise ConfigError(
            f"{os.path.basename(path)}: no {wanted} column{hint}. Found: {found[:40]}. "
            f"Map it in {cfg.display_path()} under {keys}."
        )


#: Rows of the first file that ``check`` reads to test the mapping and the values' formats.
SAMPLE_ROWS = 2000


class SourceCheck(NamedTuple):
    """What :func:`check_source` found: the files, the mapping, the first rows and remarks."""

    files: list[str]
    mapping: dict[str, str]
    #: The first :data:`SAMPLE_ROWS` rows of the first file, with the user's column names.
    sample: pd.DataFrame
    #: Remarks for the user (and the ledger): ``(sentence, count)``.
    notes: list[tuple[str, int]]


def check_source(cfg: RunConfig, table: str) -> SourceCheck:
    """Check a source before any data are prepared: files, format, separator, mapping, rows, encoding.

    Reads the first rows of the first file, then decodes every text file once (no parsing). A
    misspelt mapping fails in well under a second, even on large files, as it is checked before
    the files are decoded.

    Raises
    ------
    ConfigError
        Naming the file, the column or config key, and the fix.
    """
    files = _expand(cfg, table)
    notes: list[tuple[str, int]] = []
    head = _read_one(files[0], cfg, table, nrows=SAMPLE_ROWS, notes=notes)
    found = [str(c) for c in head.columns]
    _check_separator(files[0], cfg, table, found)
    mapping = resolve_mapping(cfg, table, found, files[0], sample=head)
    _check_required(cfg, table, mapping, found, files[0])
    _check_duplicate_header(files[0], cfg, table, mapping)
    if head.empty and len(files) == 1:
        raise ConfigError(
            f"{files[0]}: the file has a header but no data rows (config key sources.{table}.path in "
            f"{cfg.display_path()}). Export the {table} table again with its rows, or remove sources.{table}."
        )
    for f in files:
        kind = sniff(f)
        if kind.kind != "text":
            continue
        if kind.bom == "utf-8-sig" and not _is_utf8(reading_encoding(cfg, table)):
            notes.append(((f"{os.path.basename(f)} starts with a UTF-8 byte-order mark, so it was read as UTF-8, not "
                          f"{cfg.sources[table].encoding} as sources.{table}.encoding says"), 1))
        if _scan_text(f, cfg, table, kind):
            notes.append(((f"{os.path.basename(f)} is UTF-8 text but sources.{table}.encoding is "
                          f"{cfg.sources[table].encoding}: accented letters come out garbled ('é' as 'Ã©'). "
                          f"Set sources.{table}.encoding: utf-8"), 1))
    return SourceCheck(files, mapping, head, notes)


def _garbled(frame: pd.DataFrame, encoding: str) -> dict[str, int]:
    """Per column, values that are UTF-8 text decoded as ``encoding`` (``'RÃ©sumÃ©'``)."""
    out: dict[str, int] = {}
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty or not pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
            continue
        texts = values.astype(str)
        texts = texts[~texts.map(str.isascii)]
        count = 0
        for text, n in texts.value_counts().items():
            try:
                if text.encode(encoding).decode("utf-8") != text:
                    count += n
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
        if count:
            out[str(column)] = int(count)
    return out


def read_source(cfg: RunConfig, table: str) -> RawTable:
    """Read one table's raw files (any format :func:`sniff` recognises; globs allowed)."""
    files, mapping, _, notes = check_source(cfg, table)
    parts, info = [], []
    for f in files:
        part = _read_one(f, cfg, table, notes=[])
        missing = [c for c in mapping.values() if c not in part.columns]
        if missing:
            raise ConfigError(
                f"{os.path.basename(f)}: columns {missing} not found although {os.path.basename(files[0])} "
                f"has them (config key sources.{table}.path in {cfg.display_path()}). All files of a "
                f"glob must share one layout."
            )
        kind = sniff(f)
        encoding = _text_encoding(f, cfg, table, kind) if kind.kind == "text" else "utf-8"
        if not _is_utf8(encoding) and not encoding.lower().startswith("utf"):
            for column, count in _garbled(part, encoding).items():
                notes.append(((f"{os.path.basename(f)}: values in column '{column}' look garbled (UTF-8 text read as "
                               f"{encoding}); set sources.{table}.encoding: utf-8"), count))
        parts.append(part)
        info.append({"path": f, "bytes": os.path.getsize(f), "sha256": sha256_file(f), "rows": len(part), "format": kind.name})
    original = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    if original.empty:
        raise ConfigError(
            f"{cfg.resolve_path(table)}: {len(files)} file(s) with a header but no data rows (config key "
            f"sources.{table}.path in {cfg.display_path()}). Point it at files that hold the {table} rows."
        )
    # the contract-named frame shares the original's columns (copy-on-write: neither can change the other)
    frame = pd.DataFrame({contract: original[user] for contract, user in mapping.items()}, copy=False)
    if cfg.sources[table].customer_id_from == "row_number":
        prefix = "response-" if table == "survey" else "row-"
        frame.insert(0, "customer_id", [f"{prefix}{n}" for n in range(1, len(frame) + 1)])
        notes.append(((f"no customer id column: rows numbered as ids {prefix}1 to {prefix}{len(frame)} "
                      f"(sources.{table}.customer_id_from: row_number)"), len(frame)))
    unmapped = [c for c in original.columns if c not in set(mapping.values())]
    return RawTable(frame=frame, original=original, files=info, mapping=mapping, unmapped=unmapped, notes=notes)



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
        """A run table, written beside its place and moved there: pages run side by side, and one
        may read a table (e.g. ``features``) while another writes it, so a reader sees all of it or none."""
        path = self._writable(self.table_path(table))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        return path

    def read_table(self, table: str, columns: list[str] | tuple[str, ...] | None = None, *,
                   optional: list[str] | tuple[str, ...] = ()) -> pd.DataFrame | None:
        """A table of the run, or None when the run has no such table.

        Parameters
        ----------
        table : str
            Table name (``transactions``, ``features``, ...).
        columns : list of str, optional
            Read only these columns, in this order: the Parquet reader skips the others, so a page
            that needs three columns of a wide order-line table holds only those. None reads all.
        optional : list of str
            With ``columns``: also read these where the table has them (e.g. ``margin`` or
            ``product_name``, which only some runs' data carry).

        Raises
        ------
        ValueError
            When one of ``columns`` is not in the table (see :meth:`select_columns`).
        """
        path = self.table_path(table)
        if not path.exists():
            return None
        if columns is None:
            return pd.read_parquet(path)
        return pd.read_parquet(path, columns=self.select_columns(table, columns, optional=optional))

    def table_columns(self, table: str) -> list[str] | None:
        """Column names of a table from its Parquet schema (no rows are read), or None when the run has no such table."""
        path = self.table_path(table)
        if not path.exists():
            return None
        import pyarrow.parquet as pq

        return [name for name in pq.read_schema(path).names if not name.startswith("__index_level_")]

    def select_columns(self, table: str, columns: list[str] | tuple[str, ...], *,
                       optional: list[str] | tuple[str, ...] = ()) -> list[str] | None:
        """The columns a read of ``table`` returns: ``columns``, then those of ``optional`` the table has.

        None when the run has no such table; a ``ValueError`` naming the table, the missing columns
        and the columns found when one of ``columns`` is not in it.
        """
        present = self.table_columns(table)
        if present is None:
            return None
        missing = [c for c in dict.fromkeys(columns) if c not in present]
        if missing:
            raise ValueError(
                f"{table} table ({self.relative(self.table_path(table))} in run {self.path}): column(s) {missing} not found. "
                f"Found: {present}. Columns the data contract always writes come back when 00_data_prep prepares the "
                f"tables again; others exist only when the run config maps them under columns.{table}."
            )
        return list(dict.fromkeys([*columns, *(c for c in optional if c in present)]))

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
