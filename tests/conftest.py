"""Shared fixtures: project paths, the public data root, small configs written on the fly."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLIENTELE_DATA_ROOT") or PROJECT_ROOT.parent / "shared" / "data")
SAMPLE_CONFIG = PROJECT_ROOT / "config" / "sample.yaml"


def shared_path(*parts: str) -> Path:
    """A path under the public data root; skips the test when the data set is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public data set not available at {path} (set CLIENTELE_DATA_ROOT to its folder)")
    return path


@pytest.fixture
def write_config(tmp_path):
    """Write a run config (dict or YAML text) next to data files in tmp_path; return its path."""

    def _write(cfg: dict | str, name: str = "run.yaml") -> Path:
        path = tmp_path / name
        text = textwrap.dedent(cfg) if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return _write
