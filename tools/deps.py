"""Dependency tooling behind ``make lock`` and ``make test-latest`` (see docs/dependencies.md).

``python tools/deps.py environment``  rewrites environment.yml from requirements.lock (the same
                                      exact versions, for conda users);
``python tools/deps.py latest``       prints pyproject's requirements (with the ``dev`` and
                                      ``smt`` extras) without their version ranges, except the
                                      pins in :data:`KEEP_PINNED`, for a throwaway venv of the
                                      newest releases.

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
EXTRAS = ("dev", "smt")
KEEP_PINNED = {"torch"}
"""Kept at pyproject's pin: every other torch release downloads gigabytes of CUDA packages."""

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def locked_pins(text: str) -> dict[str, str]:
    """``{name: version}`` of every ``name==version`` line of a pip-compile lock."""
    return {m[1].lower(): m[2] for line in text.splitlines() if (m := _PIN.match(line))}


def declared(pyproject: dict) -> list[str]:
    """The project's requirements plus those of :data:`EXTRAS`, as written in pyproject."""
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    return list(project["dependencies"]) + [r for e in EXTRAS for r in extras.get(e, [])]


def environment_yml(pins: dict[str, str]) -> str:
    """environment.yml pinning exactly the locked versions (pip section; conda adds Python)."""
    lines = [
        "# Conda equivalent of requirements.lock: written by `make lock` (tools/deps.py); the",
        "# versions are the lock's, checked by tests/test_environment.py. `make test` and",
        "# `make repro` don't need conda: they build .venv from requirements.lock.",
        "name: paper-repro",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {name}=={version}" for name, version in sorted(pins.items())]
    lines.append("      - -e .")
    return "\n".join(lines) + "\n"


def latest_requirements(pyproject: dict) -> list[str]:
    """Requirement names without version ranges (the newest releases), but :data:`KEEP_PINNED`."""
    out = []
    for req in declared(pyproject):
        name = _NAME.match(req)[1]
        out.append(req if name.lower() in KEEP_PINNED else name)
    return out


def main(argv: list[str]) -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    if argv == ["environment"]:
        if not LOCK.is_file():
            print(f"error: {LOCK.name} not found (run `make lock`)", file=sys.stderr)
            return 2
        ENVIRONMENT.write_text(environment_yml(locked_pins(LOCK.read_text())))
        return 0
    if argv == ["latest"]:
        print("\n".join(latest_requirements(pyproject)))
        return 0
    print("usage: python tools/deps.py environment|latest", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
