"""The lock (requirements.lock), environment.yml and pyproject.toml agree, and the solvers whose
behaviour the engine depends on have tested upper bounds (docs/dependencies.md)."""

from __future__ import annotations

import importlib.util
import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.version import Version


def _deps(repo_root):
    spec = importlib.util.spec_from_file_location("deps", repo_root / "tools" / "deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lock(repo_root) -> str:
    return (repo_root / "requirements.lock").read_text()


def test_environment_yml_pins_exactly_the_locked_versions(repo_root):
    deps = _deps(repo_root)
    pins = deps.locked_pins(_lock(repo_root))
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) - {"-e ."} == {f"{n}=={v}" for n, v in pins.items()}
    assert (repo_root / "environment.yml").read_text() == deps.environment_yml(pins)


def test_every_declared_requirement_is_locked_within_its_range(repo_root):
    deps = _deps(repo_root)
    pins = deps.locked_pins(_lock(repo_root))
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())
    for line in deps.declared(project):
        req = Requirement(line)
        name = req.name.lower()
        assert name in pins, f"{name} is declared but not in requirements.lock"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (name, pins[name])
    assert Version(pins["torch"]).public == "2.13.0" and Version(pins["torch"]).local == "cpu"


def test_every_locked_package_has_a_hash(repo_root):
    """pip installs the lock with --require-hashes: each pin must carry its hashes."""
    hashes: dict[str, int] = {}
    current = None
    for line in _lock(repo_root).splitlines():
        if pin := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line):
            current = pin[1].lower()
            hashes[current] = 0
        elif current and "--hash=sha256:" in line:
            hashes[current] += 1
    assert set(hashes) == set(_deps(repo_root).locked_pins(_lock(repo_root)))
    assert len(hashes) > 50 and all(n >= 1 for n in hashes.values())


def test_solvers_have_tested_upper_bounds(repo_root):
    """A release outside the tested range must not be installed by a user's pip: every solver
    the engine's answers depend on is capped (``<`` or ``==``)."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())
    reqs = {Requirement(r).name.lower(): Requirement(r) for r in _deps(repo_root).declared(project)}
    for name in ("highspy", "z3-solver", "pysmt", "cvc5", "maraboupy"):
        ops = {s.operator for s in reqs[name].specifier}
        assert ops & {"<", "=="} and ops & {">=", "=="}, name
    assert not reqs["highspy"].specifier.contains("1.11.0")  # lacks changeRowsBounds
    assert not reqs["z3-solver"].specifier.contains("4.12.6.0")  # its Optimize is not optimal


def test_latest_requirements_drop_ranges_but_keep_torch(repo_root):
    deps = _deps(repo_root)
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())
    latest = deps.latest_requirements(project)
    assert "torch==2.13.0" in latest and "highspy" in latest and "cvc5" in latest
    assert all("<" not in r and ">" not in r for r in latest)
