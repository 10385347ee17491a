"""pyproject.toml and environment.yml declare the same dependencies with the same bounds."""

from __future__ import annotations

import re
import tomllib

import yaml

from .conftest import PROJECT_ROOT

# conda-forge names that differ from PyPI names
CONDA_NAMES = {"duckdb": "python-duckdb"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req.strip())
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]
                    + project["optional-dependencies"]["spark"])
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    python = [d for d in conda if d.startswith("python=")]
    assert python == ["python=3.11"]
    conda_reqs = dict(_split(d) for d in conda if not d.startswith("python="))
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in pip_reqs.items()}
    assert conda_reqs == expected, (
        "environment.yml and pyproject.toml differ: "
        f"only in pyproject {sorted(set(expected) - set(conda_reqs))}, only in environment.yml "
        f"{sorted(set(conda_reqs) - set(expected))}, different bounds "
        f"{sorted(k for k in set(expected) & set(conda_reqs) if expected[k] != conda_reqs[k])}"
    )
    assert "conda-forge" in env["channels"]


def test_python_requirement_is_311():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.11")
