"""``verify``: sat/unsat against independent answers (hand-known nets, an activation-pattern LP
oracle), exact checks of every counterexample, and the CLI's VNN-COMP output and errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from paper_repro import cli
from paper_repro.bounds.refine_layers import RefineOptions
from paper_repro.exact.engines.input_split import InputSplitOptions
from paper_repro.exact.engines.split_bab import SplitBabOptions
from paper_repro.exact.frontends.falsify import PgdOptions
from paper_repro.exact.frontends.verify import (
    VerifyOptions,
    VerifyStatus,
    check_point,
    verify_property,
)
from paper_repro.exact.witnesses.witness import ExactNetwork
from paper_repro.network import ReluNetwork
from paper_repro.vnnlib import parse_vnnlib_text

NO_PGD = VerifyOptions(timeout=20, pgd=None, split_bab=None, input_split=None)  # the LP engine
WITH_PGD = VerifyOptions(timeout=20, pgd=PgdOptions(steps=30, restarts=5))  # the defaults
SPLIT_BAB = VerifyOptions(
    timeout=20, pgd=None, split_bab=SplitBabOptions(batch=4, iterations=3), input_split=None
)
INPUT_SPLIT = VerifyOptions(timeout=20, pgd=None, input_split=InputSplitOptions(batch=4))
REFINED = VerifyOptions(  # split-BaB with the root bounds refined after its first batch
    timeout=20,
    pgd=None,
    split_bab=SplitBabOptions(
        batch=4, iterations=3, refine=RefineOptions(depth=3, per_row=2), refine_after=0.0
    ),
    input_split=None,
)


def _header(n: int, m: int, lo, hi) -> str:
    text = "".join(f"(declare-const X_{i} Real)\n" for i in range(n))
    text += "".join(f"(declare-const Y_{j} Real)\n" for j in range(m))
    for i in range(n):
        text += f"(assert (>= X_{i} {float(lo[i])!r}))\n(assert (<= X_{i} {float(hi[i])!r}))\n"
    return text


# y0 = relu(x0 − x1), y1 = 0.5 on [0,1]^2: max y0 = 1, reached only at (1, 0)
TINY = ReluNetwork.from_arrays([[[1.0, -1.0]], [[1.0], [0.0]]], [[0.0], [0.0, 0.5]])


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("(>= Y_0 Y_1)", {"sat"}),
        ("(>= Y_0 1.5)", {"unsat"}),
        ("(>= Y_0 1)", {"sat"}),  # only at the corner, a tie: non-strict holds
        ("(> Y_0 1)", {"unsat", "unknown"}),  # the tie is not a strict witness: never sat
        ("(or (>= Y_0 2) (<= Y_0 -0.1))", {"unsat"}),
        ("(or (>= Y_0 2) (and (>= Y_0 0.3) (<= Y_0 0.31)))", {"sat"}),
        ("(<= (+ Y_0 (* -2 Y_1)) -1.25)", {"unsat"}),  # y0 − 1 ≤ −1.25 impossible (y0 ≥ 0)
    ],
)
@pytest.mark.parametrize(
    "options", [NO_PGD, WITH_PGD, SPLIT_BAB, INPUT_SPLIT], ids=["bab", "pgd+bab", "split", "input"]
)
def test_hand_known_answers(constraint, expected, options):
    prop = parse_vnnlib_text(_header(2, 2, [0, 0], [1, 1]) + f"(assert {constraint})")
    res = verify_property(TINY, prop, options)
    assert str(res.status) in expected
    if res.status == VerifyStatus.SAT:
        assert _holds_exactly(TINY, prop.cases[res.case], res.point)
        assert check_point(ExactNetwork(TINY), prop.cases[res.case], res.x) is not None


def test_fixed_coordinates_and_strict_box():
    # X_1 fixed at 0.25 (l = u): y0 = relu(x0 − 0.25) ≤ 0.5 on x0 ∈ [0, 0.75]
    text = _header(2, 2, [0, 0.25], [0.75, 0.25])
    assert (
        verify_property(TINY, parse_vnnlib_text(text + "(assert (>= Y_0 0.5))"), NO_PGD).status
        == "sat"
    )
    strict = text + "(assert (< X_0 0.75))(assert (>= Y_0 0.5))"
    res = verify_property(TINY, parse_vnnlib_text(strict), NO_PGD)
    assert res.status in ("unsat", "unknown")
    assert verify_property(
        TINY, parse_vnnlib_text(text + "(assert (> Y_0 0.5))"), NO_PGD
    ).status in ("unsat", "unknown")


def _holds_exactly(net: ReluNetwork, case, point) -> bool:
    """The test's own exact judge: ``point`` (Fractions) in the box and every constraint met."""
    z = list(point)
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = [Fraction(float(bj)) + sum(Fraction(float(a)) * v for a, v in zip(row, z, strict=True))
             for row, bj in zip(w, b, strict=True)]  # fmt: skip
        if k < len(net.weights) - 1:
            z = [max(v, Fraction(0)) for v in z]
    return case.box.contains(list(point)) and all(c.holds(z) for c in case.constraints)


@pytest.mark.parametrize(
    "seed", [*range(8), *(pytest.param(s, marks=pytest.mark.slow) for s in range(8, 308))]
)
def test_random_properties_against_the_pattern_lp_oracle(seed, pattern_lp_oracle):
    rng = np.random.default_rng(seed)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))],
        [rng.normal(size=3) * 0.3, rng.normal(size=3) * 0.3, rng.normal(size=3) * 0.3],
    )
    lo = np.round(rng.uniform(-1, 0, 3), 3)
    hi = np.round(lo + rng.uniform(0, 1, 3), 3)
    if seed % 2:
        hi[1] = lo[1]  # a fixed coordinate
    mid = net.forward(0.5 * (lo + hi))
    cases, text = [], []
    for _ in range(1 + seed % 3):
        cm = np.round(rng.normal(size=(1 + seed % 2, 3)), 2)
        d = np.round(cm @ mid + rng.uniform(-1.5, 0.3, len(cm)), 3)
        cases.append((cm, d))
        atoms = [
            "(<= (+ "
            + " ".join(f"(* {float(v)!r} Y_{j})" for j, v in enumerate(row))
            + f") {float(dv)!r})"
            for row, dv in zip(cm, d, strict=True)
        ]
        text.append("(and " + " ".join(atoms) + ")")
    prop = parse_vnnlib_text(_header(3, 3, lo, hi) + "(assert (or " + " ".join(text) + "))")
    truth = pattern_lp_oracle(net, lo, hi, cases)
    if abs(truth) < 1e-6:
        pytest.skip("borderline instance")
    for options in (NO_PGD, WITH_PGD, SPLIT_BAB, INPUT_SPLIT, REFINED):
        res = verify_property(net, prop, options)
        assert res.status == ("sat" if truth < 0 else "unsat"), (truth, res)
        if res.status == "sat":
            assert _holds_exactly(net, prop.cases[res.case], res.point)
            assert res.exact_slack >= 0


def _onnx(path, net: ReluNetwork, in_shape):
    nodes, inits, cur = [], {}, "x"
    if len(in_shape) > 2:
        inits["shape"] = np.array([1, net.input_dim], np.int64)
        nodes.append(helper.make_node("Reshape", ["x", "shape"], ["flat"]))
        cur = "flat"
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        inits[f"w{k}"], inits[f"b{k}"] = w.astype(np.float32), b.astype(np.float32)
        out = "y" if k == len(net.weights) - 1 else f"h{k}"
        nodes.append(helper.make_node("Gemm", [cur, f"w{k}", f"b{k}"], [out], transB=1))
        if out != "y":
            nodes.append(helper.make_node("Relu", [out], [f"r{k}"]))
            cur = f"r{k}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, net.num_classes])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _parse_counterexample(lines: list[str]) -> dict[str, float]:
    body = " ".join(lines).replace("(", " ").replace(")", " ").split()
    return {body[i]: float(body[i + 1]) for i in range(0, len(body), 2)}


@pytest.mark.parametrize(
    "flags", [[], ["--engine", "lp", "--no-falsify"], ["--split-bab", "--no-falsify"]]
)
@pytest.mark.parametrize(("bound", "answer"), [("0.2", "sat"), ("50", "unsat")])
def test_cli_prints_and_writes_vnncomp_answers(tmp_path, capfd, bound, answer, flags):
    rng = np.random.default_rng(3)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(3, 6)).astype(np.float32)],
        [np.zeros(6, np.float32), np.zeros(3, np.float32)],
    )
    model = _onnx(tmp_path / "n.onnx", net, [1, 1, 2, 2])
    prop = tmp_path / "p.vnnlib"
    prop.write_text(_header(4, 3, [0] * 4, [1] * 4) + f"(assert (>= (- Y_1 Y_0) {bound}))")
    result = tmp_path / "out" / "r.txt"
    argv = ["verify", "--onnx", str(model), "--vnnlib", str(prop), "--timeout", "20", *flags]
    assert cli.main([*argv, "--result", str(result)]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0] == answer and result.read_text().splitlines() == out
    if answer == "sat":
        values = _parse_counterexample(out[1:])
        x = np.array([values[f"X_{i}"] for i in range(4)])
        assert check_point(ExactNetwork(net), parse_vnnlib_text(prop.read_text()).cases[0], x)
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        y = sess.run(None, {"x": x.astype(np.float32).reshape(1, 1, 2, 2)})[0][0]
        assert y[1] - y[0] >= float(Fraction(bound)) - 1e-5
        assert abs(values["Y_1"] - y[1]) < 1e-5


@pytest.mark.parametrize(
    ("prop_text", "match"),
    [
        ("(assert (<= Y_0 1)", "unbalanced"),
        ("(assert (<= Y_9 1))", "not declared"),
        ("(assert (<= (* Y_0 Y_1) 1))", "non-linear"),
        ("(assert (>= X_0 2))", "empty input box"),
    ],
)
def test_cli_malformed_vnnlib_is_one_clear_error(tmp_path, capfd, prop_text, match):
    net = ReluNetwork.from_arrays([np.eye(2, dtype=np.float32)], [np.zeros(2, np.float32)])
    model = _onnx(tmp_path / "n.onnx", net, [1, 2])
    prop = tmp_path / "p.vnnlib"
    prop.write_text(_header(2, 2, [0, 0], [1, 1]) + prop_text)
    assert cli.main(["verify", "--onnx", str(model), "--vnnlib", str(prop)]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error:") and match in err and "Traceback" not in err


def test_cli_size_mismatch_and_unsupported_operator(tmp_path, capfd):
    net = ReluNetwork.from_arrays([np.eye(2, dtype=np.float32)], [np.zeros(2, np.float32)])
    model = _onnx(tmp_path / "n.onnx", net, [1, 2])
    prop = tmp_path / "p.vnnlib"
    prop.write_text(_header(3, 2, [0] * 3, [1] * 3) + "(assert (<= Y_0 1))")
    assert cli.main(["verify", "--onnx", str(model), "--vnnlib", str(prop)]) == 2
    assert "3 inputs" in capfd.readouterr().err
    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "s.onnx"))
    assert cli.main(["verify", "--onnx", str(tmp_path / "s.onnx"), "--vnnlib", str(prop)]) == 2
    err = capfd.readouterr().err
    assert "Sigmoid" in err and "Traceback" not in err


@pytest.mark.parametrize("seed", range(3))
def test_untargeted_linf_property_agrees_with_z3(seed):
    # the VNN-COMP MNIST form — box = L∞ ball ∩ [0,1], (or (>= Y_j Y_label) …) — is the
    # engine's untargeted fixed-δ question; the smt backend (z3, exact rationals) answers it too
    from paper_repro.exact.engines.smt import smt_decider
    from paper_repro.query import Norm, Query

    rng = np.random.default_rng(100 + seed)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(5, 4)), rng.normal(size=(3, 5))], [rng.normal(size=5) * 0.2, np.zeros(3)]
    )
    x = rng.random(4)
    label = int(np.argmax(net.forward(x)))
    others = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(3) if j != label)
    for eps in (0.05, 0.3):
        lo, hi = np.maximum(0.0, x - eps), np.minimum(1.0, x + eps)
        prop = parse_vnnlib_text(_header(4, 3, lo, hi) + f"(assert (or {others}))")
        mine = verify_property(net, prop, NO_PGD).status
        z3 = smt_decider("z3")(Query(net, x, label, None, Norm.LINF), eps, 30).verdict
        assert (mine, z3) in (("sat", "adversarial"), ("unsat", "robust")), (eps, mine, z3)


def test_counterexample_prints_exact_decimals_where_no_float_fits():
    from paper_repro.exact.frontends.cli_verify import format_counterexample

    # X_1 = 0.1 exactly (no float64 equals it): the checked point uses 1/10, printed exactly
    text = _header(2, 2, [0, 0.1], [1, 0.1]) + "(assert (>= Y_0 0.5))"
    res = verify_property(TINY, parse_vnnlib_text(text), NO_PGD)
    assert res.status == "sat" and res.point[1] == Fraction(1, 10)
    values = _parse_counterexample(format_counterexample(res).splitlines())
    assert values["X_1"] == 0.1 and "(X_1 0.1)" in format_counterexample(res)
    assert _holds_exactly(TINY, parse_vnnlib_text(text).cases[0], res.point)


def _easy_unsat_cli(tmp_path) -> list[str]:
    """``verify`` arguments of a 4-6-3 network and a property no input meets (``Y₁ − Y₀ ≥ 50``
    on ``[0, 1]⁴``), written under ``tmp_path``."""
    rng = np.random.default_rng(3)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(3, 6)).astype(np.float32)],
        [np.zeros(6, np.float32), np.zeros(3, np.float32)],
    )
    model = _onnx(tmp_path / "n.onnx", net, [1, 4])
    prop = tmp_path / "p.vnnlib"
    prop.write_text(_header(4, 3, [0] * 4, [1] * 4) + "(assert (>= (- Y_1 Y_0) 50))")
    return ["verify", "--onnx", str(model), "--vnnlib", str(prop)]


def test_cli_timeout_counts_from_the_process_start(tmp_path, capfd, monkeypatch):
    """VNN-COMP times the whole process: with start-up already past the limit the answer is
    ``timeout`` at once (never a late answer); with time left the search gets the rest."""
    from paper_repro.exact.frontends import cli_verify

    age = cli_verify.process_age()
    assert 0 < age < 1e7  # this process has been running for a while
    argv = _easy_unsat_cli(tmp_path)
    monkeypatch.setattr(cli_verify, "process_age", lambda: 4.0)
    result = tmp_path / "r.txt"
    assert cli.main([*argv, "--timeout", "5", "--result", str(result)]) == 0  # 4 + 1.5 > 5
    captured = capfd.readouterr()
    assert captured.out == "timeout\n" == result.read_text()
    assert "start-up" in captured.err
    assert cli.main([*argv, "--timeout", "8"]) == 0  # 2.5 s left: the easy proof fits
    assert capfd.readouterr().out == "unsat\n"
    assert cli.main([*argv, "--timeout", "-1"]) == 2
    assert "--timeout must be" in capfd.readouterr().err


def test_cli_threads_sets_torch_threads_and_rejects_zero(tmp_path, capfd):
    """``--threads N`` is the torch thread count of the search (the answer is the same);
    ``--threads 0`` is one clear error."""
    import torch

    argv = [*_easy_unsat_cli(tmp_path), "--timeout", "20"]
    before = torch.get_num_threads()
    try:
        assert cli.main([*argv, "--threads", "2"]) == 0
        assert torch.get_num_threads() == 2
        assert capfd.readouterr().out == "unsat\n"
        assert cli.main([*argv, "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        assert capfd.readouterr().out == "unsat\n"
        assert cli.main([*argv, "--threads", "0"]) == 2
        captured = capfd.readouterr()
        assert captured.out == "" and "--threads must be at least 1" in captured.err
    finally:
        torch.set_num_threads(before)


def test_cases_that_ran_out_of_time_get_the_time_left_pass_after_pass(monkeypatch):
    """The time a pass leaves goes to the cases still open, again and again: a case that needs
    three shares is decided although the other two close in their second (two passes used to
    leave it a timeout with time unused), and an engine that gives up at once with "timeout"
    does not loop for ever."""
    from paper_repro.exact.frontends import verify as verify_module

    prop = parse_vnnlib_text(
        _header(2, 2, [0, 0], [1, 1])
        + "(assert (or (>= Y_0 2) (>= Y_0 3) (>= Y_0 4)))"  # three cases, all unsat
    )
    calls: list[int] = []
    needs = [3, 2, 2]  # calls before each case closes

    def decide(network, k, case, box, options, deadlines, shared):
        assert case is prop.cases[k]
        calls.append(k)
        return None if calls.count(k) >= needs[k] else (True, "split-BaB timeout: open")

    monkeypatch.setattr(verify_module, "_decide_case", decide)
    options = VerifyOptions(timeout=20, pgd=None)
    assert verify_property(TINY, prop, options).status == VerifyStatus.UNSAT
    assert calls == [0, 1, 2, 0, 1, 2, 0]

    calls.clear()
    needs[0] = 100
    res = verify_property(TINY, prop, options)
    assert res.status == VerifyStatus.TIMEOUT and "case 0" in res.message
    assert calls.count(0) == verify_module._PASSES


def test_a_box_with_few_inputs_gets_a_dense_falsifier():
    """A counterexample only inside a narrow spike (``Y_0 ≥ 0.5`` where ``|X_0 − 0.7| ≤ 0.001``,
    the gradient zero outside twice that): 20 random starts miss it with this seed, the
    ``few_restarts`` a 2-input box gets find it."""
    import time

    from paper_repro.exact.frontends.falsify import pgd_falsify

    w1 = np.array([[500.0, 0.0], [-500.0, 0.0]])  # 500·(x − 0.7) and its negation
    net = ReluNetwork.from_arrays(
        [w1, np.array([[-1.0, -1.0]]), np.array([[1.0]])],
        [np.array([-350.0, 350.0]), np.array([1.0]), np.zeros(1)],
    )
    polys = [(np.array([[-1.0]]), np.array([-0.5]))]
    lo, hi = np.zeros(2), np.ones(2)

    def check(x, _case):
        return bool(net.forward(x)[0] >= 0.5)

    sparse = PgdOptions(few_restarts=20)
    assert pgd_falsify(net, lo, hi, polys, check, time.monotonic() + 20, sparse) is None
    found = pgd_falsify(net, lo, hi, polys, check, time.monotonic() + 20, PgdOptions())
    assert found is not None and abs(found[0][0] - 0.7) <= 0.001


def test_progress_lines_go_to_stderr_only(capfd):
    """``progress`` > 0: the falsifier's outcome, each case of each pass and each pass's count
    of proved cases on stderr, nothing on stdout; 0: no line at all (same answer)."""
    prop = parse_vnnlib_text(
        _header(2, 2, [0, 0], [1, 1]) + "(assert (or (>= Y_0 2) (<= Y_0 -0.1)))"
    )
    talk = VerifyOptions(timeout=20, pgd=PgdOptions(steps=5, restarts=2), progress=1e-9)
    assert verify_property(TINY, prop, talk).status == VerifyStatus.UNSAT
    captured = capfd.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert all(line.startswith("# ") for line in lines)
    assert "falsifier: no counterexample in 1 box(es)" in lines[0]
    assert any("pass 1, case 0 (1 of 2 this pass" in line for line in lines)
    assert any("pass 1, case 1 (2 of 2 this pass" in line for line in lines)
    assert lines[-1].endswith("pass 1 done: 2 of 2 cases proved")
    quiet = VerifyOptions(timeout=20, pgd=PgdOptions(steps=5, restarts=2))
    assert verify_property(TINY, prop, quiet).status == VerifyStatus.UNSAT
    assert capfd.readouterr().err == ""


def test_progress_is_rate_limited(capfd):
    from paper_repro.exact.frontends.progress import Progress

    every = Progress(3600.0)
    assert every.say("first") and not every.say("too soon") and every.say("forced", True)
    assert not Progress(0.0).say("silent", True)
    err = capfd.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1] for line in err] == ["first", "forced"]
    assert all(line.startswith("# ") and " s: " in line for line in err)


def test_cli_quiet_leaves_only_the_final_note(tmp_path, capfd):
    argv = [*_easy_unsat_cli(tmp_path), "--timeout", "20"]
    assert cli.main(argv) == 0
    captured = capfd.readouterr()
    assert captured.out == "unsat\n" and "falsifier: no counterexample" in captured.err
    assert cli.main([*argv, "--quiet"]) == 0
    captured = capfd.readouterr()
    assert captured.out == "unsat\n"
    assert [line.split(" in ")[0] for line in captured.err.splitlines()] == ["# unsat"]
