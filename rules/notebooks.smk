# The four papers' notebooks, executed with papermill on the experiments' results (issue 4).
# Each notebook reads the instance / certify / accuracy files it lists as inputs, writes its
# tables to results/tables/{notebook}_*.csv and its figures to results/figures/{notebook}_*.png
# (`make figures` copies them to the committed snapshot in figures/, which the README shows), and
# keeps the executed copy in results/notebooks/. The three folders are passed by the shell as
# absolute paths under the working directory ($PWD), so that `snakemake --directory elsewhere`
# works (the notebooks chdir to the repository root) and params hold no absolute path: a moved
# or re-cloned checkout does not rerun the notebooks.
import json

NB_MODELS = EXPERIMENTS["models"]
# Pahlavan et al.: vanilla vs adversarial logit pairing, per arch whose two models are configured.
NB_PAHLAVAN_PAIRS = [
    [f"{a}_vanilla", f"{a}_alp"]
    for a in reversed(config["models"]["archs"])
    if f"{a}_vanilla" in NB_MODELS and f"{a}_alp" in NB_MODELS
]
NB_PAHLAVAN_MODELS = [m for pair in NB_PAHLAVAN_PAIRS for m in pair]
# Carlini et al.: N and N̄ (Madry) of the first configured arch (24x24, their N, by default).
NB_CARLINI_PAIRS = [
    [f"{a}_vanilla", f"{a}_pgd"]
    for a in config["models"]["archs"]
    if f"{a}_vanilla" in NB_MODELS and f"{a}_pgd" in NB_MODELS
]
NB_SHELL = (
    "papermill {input.nb} {output.nb} -k python3 --log-output --no-progress-bar "
    "-y '{params.yaml}' -p results_dir \"$PWD/results\" -p tables_dir \"$PWD/results/tables\" "
    "-p figures_dir \"$PWD/results/figures\" > {log} 2>&1"
)
NB_COMMON = {
    "build_demo": False,
    "images": EXPERIMENTS["images"],
}


rule carlini_notebook:
    input:
        nb=os.path.join(workflow.basedir, "notebooks", "carlini.ipynb"),
        instances=instance_files(NB_MODELS, EXPERIMENTS["norms"]),
    output:
        nb="results/notebooks/carlini.ipynb",
        table1="results/tables/carlini_table1.csv",
        table1_all="results/tables/carlini_table1_all.csv",
        table2="results/tables/carlini_table2.csv",
        nonlinearity="results/tables/carlini_nonlinearity.csv",
        table2_all="results/tables/carlini_table2_all.csv",
        nonlinearity_all="results/tables/carlini_nonlinearity_all.csv",
        provenance="results/tables/carlini_provenance.csv",
        claims="results/tables/carlini_claims.csv",
        smt_checks="results/tables/carlini_smt_checks.csv",
        examples=report(
            "results/figures/carlini_examples.png",
            caption="../report/carlini.rst",
            category="Carlini et al.",
        ),
        switched=report(
            "results/figures/carlini_nonlinearity.png",
            caption="../report/carlini.rst",
            category="Carlini et al.",
        ),
    params:
        yaml=json.dumps(
            {
                **NB_COMMON,
                "models": NB_MODELS,
                "norms": EXPERIMENTS["norms"],
                "base_model": (NB_CARLINI_PAIRS or [[None, None]])[0][0],
                "defended_model": (NB_CARLINI_PAIRS or [[None, None]])[0][1],
            }
        ),
    threads: 1
    conda:
        "../environment.yml"
    log:
        "results/logs/notebooks/carlini.log",
    benchmark:
        "results/benchmarks/notebooks/carlini.tsv"
    shell:
        NB_SHELL


rule pahlavan_notebook:
    input:
        nb=os.path.join(workflow.basedir, "notebooks", "pahlavan.ipynb"),
        instances=instance_files(NB_PAHLAVAN_MODELS, ["linf"]),
        accuracy="results/tables/accuracy.csv",
    output:
        nb="results/notebooks/pahlavan.ipynb",
        accuracy="results/tables/pahlavan_accuracy.csv",
        summary="results/tables/pahlavan_summary.csv",
        pairs="results/tables/pahlavan_pairs.csv",
        delta_hist="results/tables/pahlavan_delta_hist.csv",
        mean_delta="results/tables/pahlavan_mean_delta.csv",
        provenance="results/tables/pahlavan_provenance.csv",
        claims="results/tables/pahlavan_claims.csv",
        cosine=report(
            "results/figures/pahlavan_cosine.png",
            caption="../report/pahlavan.rst",
            category="Pahlavan et al.",
        ),
        heatmaps=report(
            "results/figures/pahlavan_heatmaps.png",
            caption="../report/pahlavan.rst",
            category="Pahlavan et al.",
        ),
        delta_fig=report(
            "results/figures/pahlavan_delta_hist.png",
            caption="../report/pahlavan.rst",
            category="Pahlavan et al.",
        ),
        mean_fig=report(
            "results/figures/pahlavan_mean_delta.png",
            caption="../report/pahlavan.rst",
            category="Pahlavan et al.",
        ),
    params:
        yaml=json.dumps({**NB_COMMON, "pairs": NB_PAHLAVAN_PAIRS}),
    threads: 1
    conda:
        "../environment.yml"
    log:
        "results/logs/notebooks/pahlavan.log",
    benchmark:
        "results/benchmarks/notebooks/pahlavan.tsv"
    shell:
        NB_SHELL


rule wong_kolter_notebook:
    input:
        nb=os.path.join(workflow.basedir, "notebooks", "wong_kolter.ipynb"),
        instances=instance_files(NB_MODELS, ["linf"]),
        certify=expand("results/certify/{model}.csv", model=NB_MODELS),
    output:
        nb="results/notebooks/wong_kolter.ipynb",
        table1="results/tables/wong_kolter_table1.csv",
        radius_summary="results/tables/wong_kolter_radius_summary.csv",
        sandwich="results/tables/wong_kolter_sandwich.csv",
        provenance="results/tables/wong_kolter_provenance.csv",
        claims="results/tables/wong_kolter_claims.csv",
        radius=report(
            "results/figures/wong_kolter_radius.png",
            caption="../report/wong_kolter.rst",
            category="Wong & Kolter",
        ),
        sandwich_fig=report(
            "results/figures/wong_kolter_sandwich.png",
            caption="../report/wong_kolter.rst",
            category="Wong & Kolter",
        ),
    params:
        yaml=json.dumps(
            {**NB_COMMON, "models": NB_MODELS, "eps": EXPERIMENTS["certify"]["eps"]}
        ),
    threads: 1
    conda:
        "../environment.yml"
    log:
        "results/logs/notebooks/wong_kolter.log",
    benchmark:
        "results/benchmarks/notebooks/wong_kolter.tsv"
    shell:
        NB_SHELL


rule dathathri_notebook:
    input:
        nb=os.path.join(workflow.basedir, "notebooks", "dathathri.ipynb"),
        instances=instance_files(NB_MODELS, ["l1"]),
    output:
        nb="results/notebooks/dathathri.ipynb",
        table3a="results/tables/dathathri_table3a.csv",
        table3b="results/tables/dathathri_table3b.csv",
        table3c="results/tables/dathathri_table3c.csv",
        curves="results/tables/dathathri_curves.csv",
        provenance="results/tables/dathathri_provenance.csv",
        claims="results/tables/dathathri_claims.csv",
        frequency=report(
            "results/figures/dathathri_frequency.png",
            caption="../report/dathathri.rst",
            category="Dathathri et al.",
        ),
    params:
        yaml=json.dumps({**NB_COMMON, "models": NB_MODELS}),
    threads: 1
    conda:
        "../environment.yml"
    log:
        "results/logs/notebooks/dathathri.log",
    benchmark:
        "results/benchmarks/notebooks/dathathri.tsv"
    shell:
        NB_SHELL


# What `rule all` asks for: each notebook whose inputs the configuration provides.
NOTEBOOK_OUTPUTS = [
    *([rules.carlini_notebook.output] if NB_CARLINI_PAIRS else []),
    *(
        [rules.pahlavan_notebook.output]
        if NB_PAHLAVAN_PAIRS and "linf" in EXPERIMENTS["norms"]
        else []
    ),
    *([rules.wong_kolter_notebook.output] if "linf" in EXPERIMENTS["norms"] else []),
    *([rules.dathathri_notebook.output] if "l1" in EXPERIMENTS["norms"] else []),
]


# One row per claim of the four papers, ours beside theirs with a verdict (issue 16).
rule claims:
    input:
        [nb.claims for nb in NOTEBOOK_OUTPUTS],
    output:
        csv=report(
            "results/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
    conda:
        "../environment.yml"
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    shell:
        "paper-repro claims {input} --out {output.csv} > {log} 2>&1"
