"""Command line: ``analysis run``, ``score``, ``check``, ``sample`` and ``pdf``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .config import PROJECT_ROOT, ConfigError

DEBUG_ENV = "CLIENTELE_DEBUG"
NO_HTML_HELP = ("execute every notebook and write exports, labels, models and the manifest, but render no HTML pages "
                "and no index (faster; the manifest records pages_rendered: false)")


def _unexpected(exc: Exception) -> int:
    """A failure no check foresaw: one line, unless CLIENTELE_DEBUG asks for the traceback."""
    if os.environ.get(DEBUG_ENV):
        raise exc
    detail = " ".join(str(exc).split())
    print(f"error: unexpected {type(exc).__name__}: {detail}. This is a bug in Clientele, not something to fix in "
          f"your data or config; please report it (set {DEBUG_ENV}=1 to see where it happened).", file=sys.stderr)
    return 3


@contextlib.contextmanager
def _quiet_imports() -> Iterator[None]:
    """Keep library import-time warnings (e.g. an optional backend's version notice) off stderr,
    which carries only our sentences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _pipeline(action: Callable[[], Any]) -> int:
    """Run ``action`` (a run or a scoring run) and turn its errors into one sentence and an exit code:
    2 for an input problem, 1 for a failed notebook, 3 for anything unforeseen."""
    with _quiet_imports():
        from .runner import RunError

    try:
        action()
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}. Check the path and its permissions.", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one sentence instead of a traceback
        return _unexpected(exc)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    with _quiet_imports():
        from .runner import run

    return _pipeline(lambda: run(args.config, run_id=args.run_id, only=args.only, reports_dir=args.reports_dir, jobs=args.jobs,
                                 html=args.html))


def check(config: str | Path, echo: Callable[[str], None] = print) -> None:
    """Everything ``analysis run`` checks before its notebooks start, and the values' formats.

    The config and its notebook parameters (the cells papermill would inject included); per
    source the files, format, encoding, separator, column mapping and header; and on the first
    rows the decimal mark and the day/month order of dates. Remarks (garbled accents, a
    byte-order mark that overrides ``encoding``) are echoed as warnings.

    Raises
    ------
    ConfigError
        The first problem, naming the file, the column or config key, and the fix.
    """
    from .config import load_config

    cfg = load_config(config)  # config, YAML and notebook parameters: fails before pandas loads
    with _quiet_imports():
        from . import contract, io
        from .runner import check_injection, discover_notebooks, notebook_run_parameters

    for nb in discover_notebooks():
        check_injection(nb.stem, notebook_run_parameters(cfg, nb, Path("run")))
    for table in cfg.sources:
        found = io.check_source(cfg, table)
        sample = found.sample
        frame = sample[[]].assign(**{name: sample[column] for name, column in found.mapping.items()})
        contract.check_values(frame, found.mapping, cfg, table, Path(found.files[0]).name)
        kinds = sorted({io.sniff(f).name for f in found.files})
        echo(f"{table}: {len(found.files)} file(s) ({', '.join(kinds)}); mapped {found.mapping}")
        for note, _ in found.notes:
            echo(f"  warning: {note}.")


def _cmd_score(args: argparse.Namespace) -> int:
    with _quiet_imports():
        from .runner import score

    return _pipeline(lambda: score(args.config, args.model_run, run_id=args.run_id, reports_dir=args.reports_dir, jobs=args.jobs,
                                   html=args.html))


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        check(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}. Check the path and its permissions.", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one sentence instead of a traceback
        return _unexpected(exc)
    print("config ok")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from .sample import write_sample

    t0 = time.perf_counter()
    paths = write_sample(args.out, n_customers=args.customers, random_state=args.seed)
    for name, path in paths.items():
        print(f"  {name:<14} {path} ({Path(path).stat().st_size / 1e6:.2f} MB)")
    print(f"sample of {args.customers} customers written to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_pdf(args: argparse.Namespace) -> int:
    from .pdf import PdfError, write_pdf

    try:
        out = write_pdf(args.run, args.out)
    except PdfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analysis", description="Clientele: customer segmentation and clienteling reports.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_run = sub.add_parser("run", help="execute the notebooks for a config and write reports/<run_id>/")
    p_run.add_argument("--config", required=True, help="run config, e.g. config/sample.yaml")
    p_run.add_argument("--run-id", default=None, help="folder name under reports/ (default <config name>-<UTC time>)")
    p_run.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only these notebooks (e.g. 00_data_prep 13_behavioral)")
    p_run.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="notebooks run side by side (default: the machine's cores, at most 4; 1 = one after another)")
    p_run.add_argument("--no-html", dest="html", action="store_false", help=NO_HTML_HELP)
    p_run.add_argument("--reports-dir", default=str(PROJECT_ROOT / "reports"), help=argparse.SUPPRESS)
    p_run.set_defaults(func=_cmd_run)

    p_score = sub.add_parser("score", help="label a config's customers with another run's saved models (no refit) and compare")
    p_score.add_argument("--model-run", required=True, metavar="RUN_ID", help="run id under reports/ (or a run folder) whose saved models score the data")
    p_score.add_argument("--config", required=True, help="config of the data to score, e.g. config/online_retail_2011.yaml")
    p_score.add_argument("--run-id", default=None, help="folder name under reports/ (default <config name>-<UTC time>)")
    p_score.add_argument("--jobs", type=int, default=None, metavar="N", help="pages run side by side (default: cores, at most 4)")
    p_score.add_argument("--no-html", dest="html", action="store_false", help=NO_HTML_HELP)
    p_score.add_argument("--reports-dir", default=str(PROJECT_ROOT / "reports"), help=argparse.SUPPRESS)
    p_score.set_defaults(func=_cmd_score)

    p_check = sub.add_parser("check", help="validate a config and its column mapping without running anything")
    p_check.add_argument("--config", required=True)
    p_check.set_defaults(func=_cmd_check)

    p_pdf = sub.add_parser("pdf", help="print a run's pages as one PDF with headless Chromium")
    p_pdf.add_argument("--run", default=str(PROJECT_ROOT / "reports" / "latest"), help="run folder (default reports/latest)")
    p_pdf.add_argument("--out", default=None, help="PDF to write (default <run>/<run_id>.pdf)")
    p_pdf.set_defaults(func=_cmd_pdf)

    p_sample = sub.add_parser("sample", help="generate the synthetic sample data set")
    p_sample.add_argument("--out", default=str(PROJECT_ROOT / "data" / "sample"))
    p_sample.add_argument("--customers", type=int, default=2000)
    p_sample.add_argument("--seed", type=int, default=42)
    p_sample.set_defaults(func=_cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
