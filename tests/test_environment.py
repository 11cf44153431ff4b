"""environment.yml (conda) and pyproject.toml (pip) declare the same dependencies."""

from __future__ import annotations

import tomllib

import yaml


def test_environment_yml_matches_pyproject(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) - {"-e ."} == declared
    assert "python=3.11" in env["dependencies"]
    assert "torch==2.13.0" in declared
