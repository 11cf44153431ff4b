"""The ``paper-repro`` command: ``train``, ``evaluate``, ``table``, ``info``, ``minadv``, ``verify``
(and the pipeline jobs).

Every subcommand reads ``config/config.yaml`` (``--config`` overlays more files in order), and
bad input ends with one ``error: …`` line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paper_repro.errors import PaperReproError


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from paper_repro.config import load_config

    return load_config(*(args.config or []))


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def _write_json(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    tmp.replace(path)


def _splits(cfg: dict[str, Any], train: bool) -> tuple[Any, Any]:
    """The configured (training split or None, evaluation split), found on the data search path
    (``paper_repro.data``), falling back to mnist5k offline when ``data.fallback`` is on."""
    from paper_repro import data

    dcfg = cfg["data"]
    kwargs = {
        "download": dcfg["download"],
        "holdout": dcfg["mnist5k_holdout"],
        "seed": cfg["seed"],
        "fallback": dcfg["fallback"],
    }
    folder = data.config_dir(dcfg)
    train_split = data.load_train(dcfg["train_source"], folder, **kwargs) if train else None
    return train_split, data.load_test(dcfg["test_source"], folder, **kwargs)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from paper_repro import models, provenance
    from paper_repro.evaluate import clean_accuracy
    from paper_repro.train import TrainOptions, train_model

    cfg = _config(args)
    _threads(args.threads or cfg["training"]["threads"])
    hidden = models.parse_arch(args.arch)
    options = TrainOptions.from_config(args.method, cfg["training"])
    init = None
    if options.init_from_vanilla:
        if not args.init:
            raise PaperReproError(f"--init is required: {args.method} starts from a vanilla model")
        init, _ = models.load_model(args.init)
    train_split, test_split = _splits(cfg, train=True)
    model, info = train_model(hidden, options, train_split, cfg["seed"], init, args.progress)

    clean = clean_accuracy(
        model, torch.from_numpy(test_split.images), torch.from_numpy(test_split.labels)
    )
    meta = {
        "arch": args.arch,
        "method": options.method.value,
        "seed": cfg["seed"],
        "train_source": train_split.name,
        "train_sha256": train_split.sha256,
        "test_source": test_split.name,
        "test_sha256": test_split.sha256,
        "data_folder": train_split.folder,
        "data_note": " ".join(n for n in (train_split.note, test_split.note) if n),
        "clean_acc": clean,
        "options": repr(options),
        **info,
        **provenance.provenance(cfg),
    }
    models.save_model(model, args.out, meta)
    onnx_out = Path(args.onnx) if args.onnx else Path(args.out).with_suffix(".onnx")
    models.export_onnx(model, onnx_out)
    print(
        f"{Path(args.out).stem}: clean accuracy {clean:.4f} on {test_split.name} "
        f"({len(test_split)} images), trained in {info['train_seconds']:.1f} s"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from paper_repro import models, provenance
    from paper_repro.attacks.gradient import PGD
    from paper_repro.evaluate import evaluate_model, onnx_accuracy, paper_numbers

    cfg = _config(args)
    _threads(args.threads or 1)
    model, meta = models.load_model(args.model)
    ecfg = cfg["evaluation"]
    _, test_split = _splits(cfg, train=False)
    test_split = test_split.head(ecfg["n_test"])
    pgd = PGD(ecfg["pgd"]["eps"], ecfg["pgd"]["steps"], ecfg["pgd"]["step_size"])
    row = evaluate_model(
        model, test_split, ecfg["fgsm_eps"], pgd, cfg["seed"], bound_eps=ecfg["bound_eps"]
    )
    onnx_path = Path(args.onnx) if args.onnx else Path(args.model).with_suffix(".onnx")
    row["onnx_clean_acc"] = onnx_accuracy(onnx_path, test_split) if onnx_path.is_file() else None
    row.update(
        model=Path(args.model).stem,
        arch=meta.get("arch"),
        method=meta.get("method"),
        train_source=meta.get("train_source"),
        test_source=test_split.name,
        train_seconds=meta.get("train_seconds"),
        model_sha256=model.to_network().digest(),
        data_note=" ".join(n for n in (meta.get("data_note", ""), test_split.note) if n),
    )
    row.update(paper_numbers(row["model"]))
    _write_json(args.out, {**row, "provenance": provenance.provenance(cfg)})
    print(
        f"{row['model']}: clean {row['clean_acc']:.4f}, FGSM({row['fgsm_eps']}) "
        f"{row['fgsm_acc']:.4f}, PGD({row['pgd_eps']}) {row['pgd_acc']:.4f}, WK bound "
        f"error({row['bound_eps']}) {row['bound_err']:.4f} on {test_split.name}"
    )
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from paper_repro.evaluate import write_table

    rows = []
    for p in args.rows:
        try:
            rows.append(json.loads(Path(p).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise PaperReproError(f"cannot read evaluation file {p}: {exc}") from None
    write_table(rows, args.out)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from paper_repro.experiments.claims import combine_claims

    table = combine_claims(args.files)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    counts = table["verdict"].value_counts()
    print(
        f"wrote {len(table)} claims to {out}: "
        + ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from paper_repro import data
    from paper_repro.provenance import git_commit, versions

    cfg = _config(args)
    ddir = data.data_dir(data.config_dir(cfg["data"]))
    print("paper_repro", versions()["paper_repro"], "commit", git_commit())
    for name, ver in versions().items():
        print(f"  {name:12s} {ver}")
    print(f"data directory: {ddir}")
    for split, files in data.FILES.items():
        for f in files:
            print(f"  {split:5s} {f:28s} {'present' if (ddir / f).is_file() else 'missing'}")
    print(f"train source: {cfg['data']['train_source']}, test source: {cfg['data']['test_source']}")
    print(
        f"models: {cfg['models']['archs']} x {cfg['models']['methods']} + {cfg['models']['extra']}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paper-repro",
        description="Provably minimal adversarial examples and certified robustness for small "
        "MNIST ReLU networks (Carlini et al.; Pahlavan et al.; Wong & Kolter; Dathathri et al.).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument(
            "--config",
            action="append",
            metavar="YAML",
            help="config file(s); later ones overlay earlier (default config/config.yaml)",
        )
        return p

    p = add("train", "Train one MLP (vanilla, PGD, ALP or WK) and save it as .pt and .onnx.")
    p.add_argument("--arch", required=True, help="hidden sizes, e.g. 24x24, 50 or 60x30")
    p.add_argument("--method", required=True, help="vanilla, pgd, alp or wk")
    p.add_argument("--init", help="vanilla .pt model to start from (methods with init: vanilla)")
    p.add_argument("--out", required=True, help="output .pt path")
    p.add_argument("--onnx", help="ONNX output path (default: OUT with .onnx)")
    p.add_argument("--threads", type=int, help="torch threads (default: training.threads)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_train)

    p = add(
        "evaluate",
        "Clean, FGSM and PGD accuracy and the Wong-Kolter robust error bound of a model on the "
        "test split, with the papers' numbers, as JSON.",
    )
    p.add_argument("--model", required=True, help=".pt model file")
    p.add_argument("--onnx", help="its ONNX export (default: MODEL with .onnx)")
    p.add_argument("--out", required=True, help="output .json path")
    p.add_argument("--threads", type=int, help="torch threads (default 1)")
    p.set_defaults(func=cmd_evaluate)

    p = add("table", "Collect evaluation JSON files into the accuracy table (CSV).")
    p.add_argument("rows", nargs="+", help="evaluation .json files")
    p.add_argument("--out", required=True, help="output .csv path")
    p.set_defaults(func=cmd_table)

    p = add("claims", "Collect the papers' claims files into one claims table (CSV).")
    p.add_argument("files", nargs="+", help="per-paper claims .csv files")
    p.add_argument("--out", required=True, help="output .csv path")
    p.set_defaults(func=cmd_claims)

    p = add("info", "Show versions, the data directory's contents and the configuration.")
    p.set_defaults(func=cmd_info)

    from paper_repro.experiments import cli_experiments as ce

    p = add(
        "minimal-image",
        "Pipeline job: CW start, closest FGSM and certified minimal "
        "adversarial examples for the 9 targets of one MNIST test image (JSONL).",
    )
    ce.add_minimal_arguments(p)
    p.set_defaults(func=lambda a: ce.run_minimal(a, _config(a)))

    p = add(
        "study",
        "Pipeline job: one shard of a study (experiments.studies) — CW start, closest FGSM and "
        "certified minimal adversarial examples of its images (JSONL).",
    )
    ce.add_study_arguments(p)
    p.set_defaults(func=lambda a: ce.run_study(a, _config(a)))

    p = add(
        "certify",
        "Pipeline job: Wong-Kolter / CROWN certified radii and robust-error "
        "columns for the first certify.n_test test images (CSV).",
    )
    ce.add_certify_arguments(p)
    p.set_defaults(func=lambda a: ce.run_certify(a, _config(a)))

    try:
        from paper_repro.exact.frontends import cli_minadv
    except ImportError:
        cli_minadv = None
    if cli_minadv is not None:
        p = add("minadv", "Provably minimal adversarial example for one input (JSON output).")
        cli_minadv.add_arguments(p)
        p.set_defaults(func=cli_minadv.run)
    from paper_repro.exact.frontends import cli_verify

    p = add(
        "verify",
        "Decide a VNN-LIB property of an ONNX ReLU network (VNN-COMP: sat/unsat/timeout/unknown).",
    )
    cli_verify.add_arguments(p)
    p.set_defaults(func=cli_verify.run)
    from paper_repro.exact.frontends import cli_vnnlib2

    p = add("vnnlib2", "VNN-LIB 2.0 solver interface (standard chapter 5): verify, supports.")
    cli_vnnlib2.add_arguments(p)
    p.set_defaults(func=cli_vnnlib2.run)
    return parser


BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """One BLAS thread for numpy/torch loaded after this call (in this process or in the processes
    it spawns), unless the environment already says otherwise."""
    for var in BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    # One BLAS thread unless the user says otherwise: set before numpy/torch load. On these small
    # problems a second BLAS thread fighting for a busy core made bounds ~16x slower (measured).
    one_blas_thread()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PaperReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
