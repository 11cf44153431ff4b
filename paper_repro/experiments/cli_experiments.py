"""``paper-repro minimal-image`` and ``paper-repro certify``: the pipeline's experiment jobs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork


def _model_name(path: str) -> str:
    return Path(path).stem


def _test_split(cfg: dict[str, Any]):
    """The configured evaluation split (genuine MNIST test set, or the mnist5k holdout)."""
    from paper_repro import data

    d = cfg["data"]
    return data.load_test(
        d["test_source"],
        data.config_dir(d),
        download=d["download"],
        holdout=d["mnist5k_holdout"],
        seed=cfg["seed"],
    )


def _provenance(cfg: dict[str, Any], network: ReluNetwork) -> dict[str, Any]:
    from paper_repro.provenance import provenance

    return {**provenance(cfg), "model_sha256": network.digest()}


def add_minimal_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help=".pt or .onnx model")
    p.add_argument("--norm", required=True, help="linf or l1")
    p.add_argument("--image", type=int, required=True, help="MNIST test index")
    p.add_argument("--out", required=True, help="output .jsonl (written when all targets finish)")
    p.add_argument("--checkpoint", help="resumable .jsonl (default: OUT with .partial)")
    p.add_argument("--progress", action="store_true", help="progress bar over targets")


def run_minimal(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    """Solve the 9 targets of one image; records stream to the checkpoint, then to ``--out``."""
    from paper_repro.experiments.minimal_runs import RunSettings, finish, run_image
    from paper_repro.network import load_network
    from paper_repro.query import Norm

    norm = Norm.parse(args.norm)
    network = load_network(args.model)
    split = _test_split(cfg)
    if not 0 <= args.image < len(split):
        raise PaperReproError(
            f"image {args.image} is not an index of {split.name} (0..{len(split) - 1})"
        )
    x, label = split.images[args.image].astype("float64"), int(split.labels[args.image])
    checkpoint = args.checkpoint or str(Path(args.out).with_suffix(".partial"))
    recs = run_image(
        network,
        _model_name(args.model),
        x,
        label,
        args.image,
        norm,
        RunSettings.from_config(cfg),
        checkpoint,
        {**_provenance(cfg, network), "test_split": split.name},
        args.progress,
    )
    finish(recs, args.out)
    optimal = sum(r["status"] == "optimal" for r in recs)
    seconds = sum(r["seconds"] for r in recs)
    print(
        f"{_model_name(args.model)} {norm} image {args.image} (label {label}): "
        f"{optimal}/{len(recs)} optimal, {seconds:.1f} s in the engine"
    )
    return 0


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="a study of the config (experiments.studies)")
    p.add_argument("--model", required=True, help=".pt or .onnx model to attack")
    p.add_argument("--norm", required=True, help="linf or l1 (one of the study's norms)")
    p.add_argument("--shard", type=int, default=0, help="which of the study's shards (0-based)")
    p.add_argument(
        "--select-with",
        nargs="+",
        required=True,
        help="every model of the study: the images are those they all classify correctly",
    )
    p.add_argument("--out", required=True, help="output .jsonl (written when the shard finishes)")
    p.add_argument("--checkpoint", required=True, help="resumable .jsonl of finished queries")


def run_study(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    """One job of a study: its shard of the selected images, every query checkpointed."""
    from paper_repro.experiments.attack_starts import StartCache, attack_images
    from paper_repro.experiments.minimal_runs import RunSettings, run_image, torch_model
    from paper_repro.experiments.studies import Study, run_shard, study_images
    from paper_repro.network import load_network
    from paper_repro.query import Norm

    study = Study.from_config(args.study, cfg)
    norm = Norm.parse(args.norm)
    if norm not in study.norms:
        raise PaperReproError(f"study {study.name} has no norm {norm} (it has {study.norms})")
    names = sorted(_model_name(p) for p in args.select_with)
    if names != sorted(study.models) or _model_name(args.model) not in names:
        raise PaperReproError(
            f"--select-with must name the study's models {sorted(study.models)} (got {names}) "
            "and include --model"
        )
    network = load_network(args.model)
    split = _test_split(cfg)
    nets = [load_network(p) for p in args.select_with]
    selected = study_images(study, nets, split.images, split.labels, cfg["seed"])
    mine = study.shard_images(selected, args.shard)
    settings = RunSettings.from_config(cfg, study)
    prov = {**_provenance(cfg, network), "test_split": split.name, "study": study.name}
    name = _model_name(args.model)
    print(f"{study.name}: {name} {norm}, shard {args.shard}/{study.shards}: images {mine}")

    model = torch_model(network)

    def attack(images: list[int]):
        xs, labels = split.images[images], [int(split.labels[i]) for i in images]
        return attack_images(model, xs, labels, network.num_classes, norm, settings)

    cache = StartCache(attack, mine, study.attack_chunk)

    def solve(image: int) -> list[dict[str, Any]]:
        x, label = split.images[image].astype("float64"), int(split.labels[image])
        return run_image(
            network,
            name,
            x,
            label,
            image,
            norm,
            settings,
            args.checkpoint,
            prov,
            starts=lambda: cache.get(image),
        )

    run_shard(mine, solve, args.out, log=lambda line: print(line, flush=True))
    return 0


def add_certify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help=".pt or .onnx model")
    p.add_argument(
        "--out",
        required=True,
        help="output .csv, one row per test image (provenance beside it as .json)",
    )
    p.add_argument("--progress", action="store_true", help="progress bar over images")


def run_certify(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    """Certified radii and per-ε robust-error columns for the first ``certify.n_test`` images."""
    from paper_repro.experiments.certify_runs import CertifySettings, certify_split
    from paper_repro.network import load_network

    c = cfg["experiments"]["certify"]
    split = _test_split(cfg).head(c["n_test"])
    pgd = cfg["evaluation"]["pgd"]
    settings = CertifySettings(
        tuple(c["eps"]), c["radius_tol"], pgd["steps"], pgd["step_size"], cfg["seed"]
    )
    network = load_network(args.model)
    table = certify_split(network, split, settings, args.progress)
    table.insert(0, "model", _model_name(args.model))
    table["test_source"] = split.name
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix != ".csv":
        raise PaperReproError(f"--out must be a .csv file, got {out}")
    table.to_csv(out.with_suffix(".tmp"), index=False)
    out.with_suffix(".tmp").replace(out)
    record = {
        **_provenance(cfg, network),
        "test_split": split.name,
        "settings": repr(settings),
        # torch proposals, numpy confirmations, rejected proposals, seconds (certify_split)
        "certify_stats": table.attrs.get("certify_stats", {}),
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    print(
        f"{_model_name(args.model)}: {int(table['correct'].sum())}/{len(table)} correct, "
        f"median dual radius {table['radius_dual'].median():.4f} on {split.name}"
    )
    return 0
