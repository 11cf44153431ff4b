"""Load and validate ``config/config.yaml`` (plus overlays such as ``config/paper.yaml``)
against ``config/schema.yaml``: missing keys take the schema's defaults, wrong ones stop with
one message."""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from paper_repro.errors import PaperReproError


def _import_jsonschema():
    """``import jsonschema`` without its optional ``rfc3987_syntax`` format checker.

    jsonschema imports ``rfc3987_syntax`` when it is installed (jupyter-events pulls it in) to
    check the ``iri`` format; that module compiles 38 lark grammars at import, most of the
    start-up of a pipeline job or CLI call that reads the config. We validate without a format
    checker (no format is checked either way), so the import is masked while jsonschema loads
    and unmasked afterwards (a later ``import rfc3987_syntax`` still works)."""
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        import jsonschema

        return jsonschema
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # makes the import fail
    try:
        import jsonschema
    finally:
        del sys.modules["rfc3987_syntax"]
    return jsonschema


jsonschema = _import_jsonschema()

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
SCHEMA = REPO_ROOT / "config" / "schema.yaml"


def _with_defaults(validator_class: type) -> type:
    """A validator that writes each property's ``default`` into the instance before validating."""
    validate_props = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``overlay`` wins; lists are replaced, not concatenated."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PaperReproError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PaperReproError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PaperReproError(f"config file {path} must hold a mapping of settings")
    return data


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults into a copy of ``config`` and check it against the schema.

    Raises:
        PaperReproError: ``config key 'a.b': <what is wrong>`` for the first violation.
    """
    schema = yaml.safe_load(SCHEMA.read_text())
    config = copy.deepcopy(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise PaperReproError(f"invalid config, key '{where}': {err.message}")
    return config


def load_config(*paths: str | Path) -> dict[str, Any]:
    """Read ``config/config.yaml`` (or the first path given), merge later ones over it, validate."""
    files = [Path(p) for p in paths] or [DEFAULT_CONFIG]
    merged: dict[str, Any] = {}
    for f in files:
        merged = merge(merged, _read_yaml(f))
    return validate(merged)


def resolve_path(value: str | Path) -> Path:
    """A config path: absolute as given, relative ones from the repository root."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``config`` (recorded with every result)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
