"""Notebook helpers: the demo-set builder (real tiny runs), the table glue of
:mod:`report_tables` and the figures of :mod:`plots` (each writes a non-empty PNG)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.experiments import demo, plots
from paper_repro.experiments import report_tables as rt
from paper_repro.experiments.minimal_runs import load_records

MODELS = ["16_vanilla", "16_pgd"]
TINY = demo.DemoSettings(
    n_train=1000,
    vanilla_epochs=4,
    adv_epochs=1,
    n_eval=100,
    n_certify=4,
    timeout=0.3,
    tolerance=1e-2,
    cw_linf_steps=20,
    cw_l1_steps=20,
    cw_l1_search=2,
    fgsm_search_steps=4,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real demo set: two 784-16-10 models, image 0, both norms, certify and accuracy."""
    root = tmp_path_factory.mktemp("demo")
    inputs = demo.experiment_inputs(
        root, MODELS, ["linf", "l1"], [0], build_demo=True, settings=TINY
    )
    return inputs, load_records(inputs.instance_files())


def test_demo_layout_and_shapes(tiny):
    inputs, df = tiny
    assert inputs.demo and inputs.info["settings"]["timeout"] == TINY.timeout
    assert all(p.is_file() for p in inputs.instance_files() + inputs.certify_files())
    assert set(pd.read_csv(inputs.accuracy)["model"]) == set(MODELS)
    assert len(df) == 2 * 2 * 9  # models × norms × targets
    assert set(df["status"]) <= {"optimal", "timeout"}
    assert (df["lower"] <= df["upper"]).all()
    w = df["witness"].dropna()
    assert len(w) and all(len(v) == 784 for v in w)
    cert = pd.read_csv(inputs.certify_files()[0])
    assert len(cert) == TINY.n_certify and {"radius_dual", "certified@0.1"} <= set(cert)
    # a second call finds everything and computes nothing
    again = demo.experiment_inputs(
        inputs.results_dir, MODELS, ["linf", "l1"], [0], build_demo=True, settings=TINY
    )
    assert again.info == json.loads((inputs.results_dir / demo.MARKER).read_text())


def test_missing_inputs_and_bad_arguments(tmp_path, tiny):
    with pytest.raises(PaperReproError, match="missing"):
        demo.experiment_inputs(tmp_path, MODELS, ["linf"], [0])
    with pytest.raises(PaperReproError, match="norm"):
        demo.experiment_inputs(tmp_path, MODELS, ["l2"], [0])
    with pytest.raises(PaperReproError, match="unknown input"):
        demo.experiment_inputs(tmp_path, MODELS, ["linf"], [0], need=["weights"])
    (tmp_path / "models").mkdir()
    with pytest.raises(PaperReproError, match="pipeline results"):
        demo.experiment_inputs(tmp_path, MODELS, ["linf"], [0], build_demo=True, settings=TINY)
    with pytest.raises(PaperReproError, match="other demo settings"):
        demo.experiment_inputs(
            tiny[0].results_dir,
            ["16_alp"],
            ["linf"],
            [0],
            build_demo=True,
            settings=demo.DemoSettings(),
        )


def test_tables(tiny, tmp_path):
    inputs, df = tiny
    prov = rt.record_provenance(inputs.instance_files())
    assert len(prov) == 4 and (prov["timeout_s"] == TINY.timeout).all()
    data, no_cw, trivial = rt.carlini_instances(df)
    assert no_cw + trivial + len(data) == len(df)
    assert (data["upper"] > 0).all()
    t1 = rt.attach_provenance(rt.carlini_table1(data, {"16_vanilla": "N", "16_pgd": "N_bar"}), prov)
    groups = data.groupby(["model", "norm"]).ngroups
    assert len(t1) == 2 * groups and t1["cw_paper"].notna().all()
    assert t1["model_sha256"].notna().all()
    t2 = rt.carlini_table2(data, "16_vanilla", "16_pgd")
    assert len(t2) == 2
    nl = rt.nonlinearity_tests(data, "16_vanilla", "16_pgd")
    assert set(nl["test"]) == {"mann_whitney", "welch"}
    out = rt.save_table(t1, tmp_path / "t", "x")
    assert len(pd.read_csv(out)) == len(t1)

    originals = plots.original_images(inputs.instance_files())
    assert originals[0].shape == (784,)
    correct = df["correct"].all()
    print("image 0 correctly classified:", correct)
    if correct:
        frame = rt.pahlavan_frame(df, originals)
        assert frame["cosine"].dropna().between(-1, 1).all()
        assert rt.pahlavan_mean_delta(frame).shape[0] == 2
    acc = rt.pahlavan_accuracy(pd.read_csv(inputs.accuracy), MODELS)
    assert acc.loc[acc["model"] == "16_vanilla", "clean_acc_paper"].item() == 0.97

    certify = pd.concat([pd.read_csv(p) for p in inputs.certify_files()])
    wk1 = rt.wk_table1(certify, [0.1, 0.05])
    assert len(wk1) == 4 and wk1["robust_bound"].between(0, 100).all()
    sandwich = rt.bound_sandwich(df, certify) if correct else None
    if sandwich is not None:
        assert sandwich["consistent"].all()

    rho, labels = rt.rho_matrices(df, "16_vanilla")
    assert rho["ours"].shape == (1, 10) and np.isnan(rho["ours"][0, labels[0]])
    tabs = rt.dathathri_tables(rho, labels)
    assert tabs["a"]["frequency_pct_paper"].notna().sum() == 2
    assert len(tabs["c"]) == 3 * 2 * 10
    curves = rt.dathathri_curves(rho, labels, np.linspace(0, 20, 5))
    assert (curves["frequency"].between(0, 1)).all()


def test_figures(tiny, tmp_path):
    inputs, df = tiny
    originals = plots.original_images(inputs.instance_files())
    rows, titles, caps = plots.carlini_example_grid(df, originals, MODELS, "linf", 0, 3)
    paths = [
        plots.plot_examples(rows, titles, tmp_path / "ex.png", "examples", caps),
        plots.plot_switched_relus(df, MODELS, tmp_path / "sw.png"),
    ]
    certify = pd.concat([pd.read_csv(p) for p in inputs.certify_files()])
    paths.append(plots.plot_radius_curves(certify, tmp_path / "r.png"))
    rho, labels = rt.rho_matrices(df, "16_pgd")
    curves = rt.dathathri_curves(rho, labels, np.linspace(0, 30, 7))
    paths.append(plots.plot_frequency_curves(curves, tmp_path / "f.png"))
    if df["correct"].all():
        frame = rt.pahlavan_frame(df, originals)
        paths.append(plots.plot_cosine_histograms(frame, tmp_path / "c.png"))
        x, fg, mn, cap = plots.pahlavan_heatmap_examples(df, frame, originals)
        paths.append(plots.plot_perturbations(x, fg, mn, cap, tmp_path / "h.png", "h"))
        hist = plots.pm.delta_histogram(frame)
        paths.append(plots.plot_delta_histograms(hist, tmp_path / "d.png"))
        paths.append(plots.plot_mean_delta(rt.pahlavan_mean_delta(frame), tmp_path / "m.png"))
        sandwich = rt.bound_sandwich(df, certify)
        paths.append(plots.plot_bound_sandwich(sandwich, tmp_path / "s.png"))
    for p in paths:
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p._repr_png_() == p.read_bytes()  # a notebook shows the figure inline


def test_figure_input_errors(tmp_path):
    with pytest.raises(PaperReproError):
        plots.plot_examples({"a": [None]}, ["t1", "t2"], tmp_path / "x.png", "x")
    with pytest.raises(PaperReproError):
        plots.plot_radius_curves(pd.DataFrame(), tmp_path / "x.png")
    with pytest.raises(PaperReproError):
        plots.plot_perturbations([], [], [], [], tmp_path / "x.png", "x")


def _records(model: str, status: str, label: int = 7, norm: str = "linf") -> pd.DataFrame:
    """Synthetic load_records rows: one image, every target ≠ label."""
    targets = [t for t in range(10) if t != label]
    up = np.linspace(0.1, 0.2, len(targets))
    return pd.DataFrame(
        {
            "model": model,
            "norm": norm,
            "image": 0,
            "target": targets,
            "status": status,
            "lower": up - 0.01,
            "upper": up,
            "cw_distance": up + 0.01,
            "label": label,
            "prediction": label,
            "correct": True,
            "switched_relus": 3,
        }
    )


def test_carlini_table2_without_common_instances_keeps_a_note():
    df = pd.concat([_records("a", "optimal"), _records("b", "timeout")], ignore_index=True)
    t2 = rt.carlini_table2(df, "a", "b")
    assert list(t2["model"]) == ["a", "b"] and "terminated" in t2["note"].iloc[0]
    nl = rt.nonlinearity_tests(df.assign(switched_relus=np.nan), "a", "b")
    assert nl["p_value"].isna().all() and (nl["n_base"] == 0).all()
    both = pd.concat([_records("a", "optimal"), _records("b", "optimal")], ignore_index=True)
    t2 = rt.carlini_table2(both, "a", "b")
    assert t2["robustness_factor"].iloc[0] == pytest.approx(1.0)
    assert t2["worse_paper"].iloc[0] == 7 and t2["common"].iloc[0] == 9


def test_dathathri_tables_skip_impossible_targets():
    df = _records("a", "optimal", label=5, norm="l1")
    rho, labels = rt.rho_matrices(df, "a")
    tabs = rt.dathathri_tables(rho, labels, (5, 6))
    b = tabs["b"].set_index(["method", "target"])["severity"]
    assert np.isnan(b[("ours", 5)]) and b[("ours", 6)] > 0
    c = tabs["c"]
    assert c[c["target"] == 5]["frequency_pct"].isna().all()
    assert c[(c["target"] == 6) & (c["delta"] == 10.0)]["frequency_pct"].eq(100.0).all()
    with pytest.raises(PaperReproError):
        rt.rho_matrices(df, "missing")


def test_wong_kolter_rows_and_paper_columns():
    n = 4
    cert = pd.DataFrame(
        {
            "model": ["m_vanilla"] * n + ["m_pgd"] * n,
            "correct": [True] * 2 * n,
            "fgsm_correct@0.1": [True, False] * n,
            "pgd_correct@0.1": [True, False] * n,
            "certified@0.1": [True, False] * n,
            "fgsm_correct@0.05": [True] * 2 * n,
            "pgd_correct@0.05": [True] * 2 * n,
            "certified@0.05": [True] * 2 * n,
            "test_source": "x",
        }
    )
    t = rt.wk_table1(cert, [0.1, 0.05]).set_index(["model", "eps"])
    assert t.loc[("m_vanilla", 0.1), "test_error_paper"] == 1.07
    assert t.loc[("m_pgd", 0.1), "robust_bound_paper"] == 5.82
    assert np.isnan(t.loc[("m_pgd", 0.05), "robust_bound_paper"])
    assert t.loc[("m_pgd", 0.1), "robust_bound"] == 50.0


def test_provenance_and_accuracy_glue():
    prov = pd.DataFrame(
        {"model": ["a"], "norm": ["linf"], **{c: [1] for c in rt.PROVENANCE_COLUMNS}}
    )
    table = pd.DataFrame({"x": [1]})
    assert rt.attach_provenance(table, prov) is table
    assert rt.attach_provenance(pd.DataFrame({"model": ["a"]}), prov)["timeout_s"].item() == 1
    with pytest.raises(PaperReproError, match="no rows"):
        rt.pahlavan_accuracy(pd.DataFrame({"model": ["a"]}), ["b"])


def test_defence_pairs():
    models = ["24x24_vanilla", "24x24_pgd", "24x24_alp", "50_pgd", "50_alp"]
    assert rt.defence_pairs(models) == [
        ("24x24_vanilla", "24x24_pgd"),
        ("24x24_vanilla", "24x24_alp"),
    ]


def test_demo_cache_is_stale_when_the_sources_change(tmp_path, tiny):
    """The marker records the package sources' sha256; another hash marks the folder stale and a
    rebuild wipes everything but the lock (only folders with a marker are ever wiped)."""
    from paper_repro.provenance import source_sha256

    inputs, _ = tiny
    marker = json.loads((inputs.results_dir / demo.MARKER).read_text())
    assert marker["code"] == source_sha256() and not demo._stale(inputs.results_dir)
    fake = tmp_path / "old_demo"
    (fake / "instances").mkdir(parents=True)
    (fake / "instances" / "0.jsonl").write_text("{}\n")
    (fake / ".lock").write_text("")
    (fake / demo.MARKER).write_text(json.dumps({**marker, "code": "0" * 64}))
    assert demo._stale(fake) and not demo._stale(tmp_path)  # no marker: not a demo set
    demo._wipe(fake)
    assert sorted(p.name for p in fake.iterdir()) == [".lock"]
