"""Development benchmark of ``paper-repro verify`` (issue 17, item 5): VNN-COMP mnistfc at home.

For each network ``784-256×K`` (``--nets``, default K = 2, 4, 6 with VNN-COMP's limits 120, 300
and 300 s) it

1. trains the MLP on the full MNIST training set (Adam, ``--epochs``, seed ``--seed``, one
   thread) and exports it to ONNX, unless ``OUT/nets/mnist-256xK.onnx`` exists;
2. writes ``--images`` seeded random test images × ``--eps`` as VNN-LIB 1.0 files in the
   VNN-COMP mnistfc form — the L∞ box ``[max(0, x − ε), min(1, x + ε)]`` and
   ``(or (and (>= Y_j Y_label)) …)`` over the 9 other classes — and ``OUT/instances.csv``
   (``onnx,vnnlib,timeout``, VNN-COMP's instance list);
3. runs every instance through each tool of ``--tools``, each call in its own process (its wall
   time and peak memory measured by the parent):

   * ``verify``: the CLI itself, ``paper-repro verify --onnx … --vnnlib … --timeout T``;
   * ``milp``: the direct big-M MILP (HiGHS branch-and-cut on the original network, no
     falsifier; :func:`paper_repro.exact.engines.milp.milp_decider`) on the same question — is
     there ``x′`` in the box with some ``Y_j ≥ Y_label``;
   * ``marabou``: Marabou 2.0 on that question
     (:func:`paper_repro.exact.engines.marabou_backend.marabou_decider`).

   Peers get ``--peer-timeout`` (default: the instance's limit) and may be restricted to the
   first ``--peer-instances`` instances of each network.

Rows go to ``OUT/rows.jsonl``, one per (tool, instance); a rerun skips the rows already there, so
an interrupted run resumes. ``OUT/summary.md`` has, per network and tool, the answers, solved
count, median/max time of the solved ones, disagreements and the MILP/verify time ratio.

Usage::

    python benchmarks/bench_verify.py --out results/bench_verify
    python benchmarks/bench_verify.py --out results/bench_verify --tools milp marabou \\
        --peer-timeout 60 --peer-instances 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_verify_summary import summarize  # noqa: E402

from paper_repro.cli import one_blas_thread  # noqa: E402
from paper_repro.errors import PaperReproError  # noqa: E402

VNNCOMP_NETS = ("256x256:120", "256x256x256x256:300", "256x256x256x256x256x256:300")
TOOLS = ("verify", "milp", "marabou")


def _mnist(split: str):
    from paper_repro.data import load_mnist

    return load_mnist(split, None, download=False)


def train(hidden: tuple[int, ...], epochs: int, seed: int, path: Path) -> None:
    """Train a ``784-hidden-10`` MLP (Adam 1e-3, cosine decay, batch 128); export to ``path``."""
    import torch

    from paper_repro.models import MLP, export_onnx

    torch.manual_seed(seed)
    data = _mnist("train")
    model = MLP(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * -(-len(data.labels) // 128)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    xs, ys = torch.from_numpy(data.images), torch.from_numpy(data.labels).long()
    for epoch in range(epochs):
        perm = torch.randperm(len(ys))
        for i in range(0, len(ys), 128):
            idx = perm[i : i + 128]
            loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"  epoch {epoch + 1}/{epochs}: last loss {loss.item():.4f}", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(model, path)


def vnnlib_text(x: np.ndarray, label: int, eps: float) -> str:
    """The mnistfc property of image ``x`` (float64 ``[784]`` in [0, 1]) at L∞ radius ``eps``."""
    lines = [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(10)]
    for i, v in enumerate(x):
        lines.append(f"(assert (<= X_{i} {min(1.0, float(v) + eps)!r}))")
        lines.append(f"(assert (>= X_{i} {max(0.0, float(v) - eps)!r}))")
    cases = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label)
    lines.append(f"(assert (or {cases}))")
    return "\n".join(lines) + "\n"


def instances(args: argparse.Namespace, out: Path) -> list[dict]:
    """Train/export the networks and write the properties; one dict per instance."""
    from paper_repro.network import load_network

    test = _mnist("test")
    order = np.random.default_rng(args.seed).permutation(len(test))[: args.images]
    rows, nets_info = [], {}
    for spec in args.nets:
        arch, limit = spec.split(":") if ":" in spec else (spec, "120")
        hidden = tuple(int(h) for h in arch.split("x"))
        name = f"mnist-{'x'.join(map(str, hidden))}"
        onnx = out / "nets" / f"{name}.onnx"
        trained = {}
        if not onnx.is_file():
            print(f"training {name} ({args.epochs} epochs)", file=sys.stderr)
            train(hidden, args.epochs, args.seed, onnx)
            # the same seed trains other weights on another CPU: say where these were
            trained = {"trained_on": _cpu_model()}
        net = load_network(onnx)
        pred = np.argmax(net.forward(test.images.astype(np.float64)), axis=1)
        nets_info[name] = {
            "accuracy": float(np.mean(pred == test.labels)),
            "onnx": str(onnx),
            "weights_sha256": net.digest(),
            **trained,
        }
        for idx in order:
            x, label = test.images[idx].astype(np.float64), int(test.labels[idx])
            for eps in args.eps:
                prop = out / "props" / name / f"img{idx}_eps{eps}.vnnlib"
                if not prop.is_file():
                    prop.parent.mkdir(parents=True, exist_ok=True)
                    prop.write_text(vnnlib_text(x, label, eps))
                rows.append(
                    {
                        "net": name,
                        "onnx": str(onnx),
                        "vnnlib": str(prop),
                        "image": int(idx),
                        "label": label,
                        "correct": bool(pred[idx] == label),
                        "eps": float(eps),
                        "timeout": float(limit),
                    }
                )
    # merged with what other runs into OUT wrote (one run per network may share OUT)
    nets_path, list_path = out / "nets.json", out / "instances.csv"
    known = json.loads(nets_path.read_text()) if nets_path.is_file() else {}
    merged = {**known, **{n: {**known.get(n, {}), **i} for n, i in nets_info.items()}}
    nets_path.write_text(json.dumps(merged, indent=1) + "\n")
    listed = list_path.read_text().splitlines() if list_path.is_file() else []
    listed += [f"{r['onnx']},{r['vnnlib']},{r['timeout']:g}" for r in rows]
    list_path.write_text("".join(f"{line}\n" for line in dict.fromkeys(listed)))
    return rows


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _run(cmd: list[str], limit: float) -> tuple[str, str, float, float, int]:
    """Run ``cmd``; ``(stdout, stderr, wall seconds, peak RSS MiB, exit status)``. Killed after
    ``limit`` seconds (status −9). Peak memory from GNU time (``/usr/bin/time -f %M``) when
    present, else 0."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        if Path("/usr/bin/time").is_file():
            cmd = ["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file.name, *cmd]
        out, err, wall, code = _communicate(cmd, env, limit)
        text = Path(rss_file.name).read_text().strip().splitlines()
    rss = float(text[-1]) / 1024.0 if text and text[-1].isdigit() else 0.0
    return out, err, wall, rss, code


def _communicate(cmd: list[str], env: dict, limit: float) -> tuple[str, str, float, int]:
    t0 = time.monotonic()
    with open(os.devnull, "rb") as null:
        proc = subprocess.Popen(
            cmd,
            stdin=null,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,  # killed as a group: GNU time and the tool under it
        )
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return out, err, time.monotonic() - t0, -9
    return out, err, time.monotonic() - t0, proc.returncode


def read_answer(out: str, err: str, wall: float, code: int) -> tuple[str, float, str]:
    """A tool process's answer (its first stdout line; ``killed`` / ``error`` by exit status),
    its own seconds (``verify``'s note ``# unsat in 12.34 s[: why]`` on stderr, else the wall
    time) and message (the note, or the last stderr line of an error)."""
    lines = out.splitlines()
    answer = lines[0].strip() if lines and code == 0 else ("killed" if code < 0 else "error")
    seconds, message = wall, ""
    for line in err.splitlines():
        note = re.match(r"# (\w+) in ([0-9.]+) s", line)
        if note:
            seconds, message = float(note.group(2)), line[2:]
    if answer == "error":
        message = err.strip().splitlines()[-1] if err.strip() else f"exit status {code}"
    return answer, seconds, message


def run_tool(tool: str, inst: dict, timeout: float) -> dict:
    """One (tool, instance) row: answer, seconds (the tool's own, and the process's wall)."""
    if tool == "verify":
        cli = Path(sys.executable).with_name("paper-repro")
        cmd = [str(cli), "verify", "--onnx", inst["onnx"]]
        cmd += ["--vnnlib", inst["vnnlib"], "--timeout", f"{timeout:g}"]
    else:
        cmd = [sys.executable, __file__, "--worker", tool, "--worker-instance", json.dumps(inst)]
        cmd += ["--worker-timeout", f"{timeout:g}"]
    out, err, wall, rss, code = _run(cmd, timeout + 120)
    answer, seconds, message = read_answer(out, err, wall, code)
    lines = out.splitlines()
    if tool != "verify" and len(lines) > 1 and answer != "error":
        extra = json.loads(lines[1])
        seconds, message = extra["seconds"], extra["message"]
    checked = check_counterexample(out, inst) if tool == "verify" and answer == "sat" else {}
    return {
        "tool": tool,
        **{k: inst[k] for k in ("net", "image", "label", "correct", "eps")},
        "timeout": timeout,
        "answer": answer,
        "seconds": seconds,
        "wall": wall,
        "peak_rss_mib": rss,
        "message": message,
        **checked,
    }


def check_counterexample(stdout: str, inst: dict) -> dict:
    """Judge a ``sat`` answer's counterexample independently of the package: its ``X_i`` (exact
    decimals) against the bounds written in the property file (read here by a regex, not by
    our parser), and the class scores of onnxruntime (float32) at ``X``. ``cex_in_box``: every
    ``X_i`` within its bounds exactly; ``cex_ort_margin``: ``max_{j≠label} Y_j − Y_label`` from
    onnxruntime (≥ 0: the runtime sees the counterexample too)."""
    import onnxruntime as ort

    xs = {int(i): Fraction(v) for i, v in re.findall(r"\(X_(\d+) ([-+0-9.eE]+)\)", stdout)}
    text = Path(inst["vnnlib"]).read_text()
    upper = {int(i): Fraction(v) for i, v in re.findall(r"\(<= X_(\d+) ([-+0-9.eE]+)\)", text)}
    lower = {int(i): Fraction(v) for i, v in re.findall(r"\(>= X_(\d+) ([-+0-9.eE]+)\)", text)}
    inside = len(xs) == len(upper) == len(lower) and all(
        lower[i] <= v <= upper[i] for i, v in xs.items()
    )
    x = np.array([float(xs[i]) for i in sorted(xs)], dtype=np.float32)
    sess = ort.InferenceSession(inst["onnx"], providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.reshape(1, -1)}
    y = np.asarray(sess.run(None, feed)[0], dtype=np.float64).reshape(-1)
    label = inst["label"]
    margin = float(np.max(np.delete(y, label)) - y[label])
    return {"cex_in_box": bool(inside), "cex_ort_margin": margin}


def worker(tool: str, inst: dict, timeout: float) -> int:
    """Child process of a peer tool: prints its answer, then a JSON line of details."""
    import contextlib

    from paper_repro.data import load_mnist
    from paper_repro.exact.decide import Verdict
    from paper_repro.network import load_network
    from paper_repro.query import Norm, Query

    one_blas_thread()
    net = load_network(inst["onnx"])
    x = load_mnist("test", None, download=False).images[inst["image"]].astype(np.float64)
    query = Query(net, x, inst["label"], None, Norm.LINF)
    if tool == "milp":
        from paper_repro.exact.engines.milp import milp_decider

        decide = milp_decider()
    else:
        from paper_repro.exact.engines.marabou_backend import marabou_decider

        decide = marabou_decider()
    with contextlib.redirect_stdout(sys.stderr):
        d = decide(query, inst["eps"], timeout)
    answer = {Verdict.ADVERSARIAL: "sat", Verdict.ROBUST: "unsat"}.get(d.verdict, "unknown")
    if answer == "unknown" and d.seconds >= 0.95 * timeout:
        answer = "timeout"
    sys.stdout.write(answer + "\n" + json.dumps({"seconds": d.seconds, "message": d.message}))
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=list(VNNCOMP_NETS), help="ARCH:LIMIT_S ...")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--images", type=int, default=15)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.03, 0.05])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tools", nargs="+", choices=TOOLS, default=["verify"])
    ap.add_argument("--peer-timeout", type=float, help="seconds for milp/marabou")
    ap.add_argument("--peer-instances", type=int, help="first N instances per net for peers")
    ap.add_argument("--out", default="results/bench_verify")
    ap.add_argument("--worker", choices=TOOLS[1:], help=argparse.SUPPRESS)
    ap.add_argument("--worker-instance", help=argparse.SUPPRESS)
    ap.add_argument("--worker-timeout", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, json.loads(args.worker_instance), args.worker_timeout)
    one_blas_thread()
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        insts = instances(args, out)
    except PaperReproError as err:  # missing MNIST files, say: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows_path = out / "rows.jsonl"
    done = set()
    if rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["tool"], r["net"], r["image"], r["eps"]))
    for tool in args.tools:
        seen: dict[str, int] = {}
        for inst in insts:
            seen[inst["net"]] = seen.get(inst["net"], 0) + 1
            peer = tool != "verify"
            if peer and args.peer_instances and seen[inst["net"]] > args.peer_instances:
                continue
            if (tool, inst["net"], inst["image"], inst["eps"]) in done:
                continue
            limit = args.peer_timeout if peer and args.peer_timeout else inst["timeout"]
            row = run_tool(tool, inst, limit)
            print(json.dumps(row), flush=True)
            with rows_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
    text = summarize(out)
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
