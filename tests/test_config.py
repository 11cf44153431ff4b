"""Config validation: defaults, overlays, and one clear message for each kind of bad value."""

from __future__ import annotations

import re

import pytest
import yaml

from paper_repro.config import DEFAULT_CONFIG, load_config, merge, validate
from paper_repro.errors import PaperReproError


def test_default_config_is_valid_and_complete():
    cfg = load_config()
    assert cfg["models"]["archs"] == ["24x24", "50"]
    assert cfg["models"]["methods"] == ["vanilla", "pgd", "alp", "wk"]
    assert cfg["models"]["extra"] == ["60x30_vanilla"]
    assert cfg["evaluation"]["fgsm_eps"] == 0.2


def test_defaults_fill_an_empty_config():
    cfg = validate({})
    assert cfg["seed"] == 0 and cfg["training"]["alp"]["pairing_weight"] == 1.0
    assert cfg["data"]["train_source"] == "mnist" and cfg["data"]["test_source"] == "mnist"


def test_paper_overlay(repo_root):
    cfg = load_config(DEFAULT_CONFIG, repo_root / "config" / "paper.yaml")
    assert cfg["data"]["train_source"] == "mnist" and cfg["training"]["alp"]["steps"] == 40
    assert cfg["models"]["archs"] == ["24x24", "50"]  # kept from the base file


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"training": {"pgd": {"eps": -0.1}}}, "training.pgd.eps"),
        ({"training": {"batch_size": "64"}}, "training.batch_size"),
        ({"models": {"methods": ["fgsm"]}}, "models.methods.0"),
        ({"models": {"archs": ["24y24"]}}, "models.archs.0"),
        ({"data": {"train_source": "cifar"}}, "data.train_source"),
        ({"seed": 1.5}, "seed"),
        ({"evaluation": {"fgsm_eps": 2}}, "evaluation.fgsm_eps"),
        ({"unknown_key": 1}, "(top level)"),
    ],
)
def test_bad_values_name_the_key(bad, where):
    with pytest.raises(PaperReproError, match=re.escape(f"key '{where}'")):
        validate(bad)


def test_merge_replaces_lists_and_recurses():
    out = merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}})
    assert out == {"a": {"b": 1, "c": [3]}}


def test_unreadable_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed")
    with pytest.raises(PaperReproError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(PaperReproError, match="mapping"):
        load_config(scalar)
    with pytest.raises(PaperReproError, match="not found"):
        load_config(tmp_path / "nope.yaml")
