# The four papers' notebooks, executed with papermill: one rule template, instantiated for each
# entry of paper_repro.experiments.notebook_registry.NOTEBOOKS (which also lists each notebook's
# studies, tables and figures; the tests read the same list). Each notebook reads its studies'
# instance files (and the certify / accuracy files it declares), writes its tables to
# results/tables/{notebook}_*.csv and its figures to results/figures/{notebook}_*.png (`make
# figures` copies them to the committed snapshot in figures/, which the README shows), and keeps
# the executed copy in results/notebooks/. The results folders are passed by the shell as
# absolute paths under the working directory ($PWD), so that `snakemake --directory elsewhere`
# works (the notebooks chdir to the repository root) and params hold no absolute path: a moved
# or re-cloned checkout does not rerun the notebooks.
for nb in NOTEBOOKS:

    rule:
        name:
            f"{nb.name}_notebook"
        input:
            **notebook_inputs(nb),
        output:
            **notebook_outputs(nb),
        params:
            yaml=notebook_parameters(nb),
        threads: 1
        conda:
            "../environment.yml"
        log:
            f"results/logs/notebooks/{nb.name}.log",
        benchmark:
            f"results/benchmarks/notebooks/{nb.name}.tsv"
        shell:
            NB_SHELL


# One row per claim of the four papers, ours beside theirs with a verdict (issue 16).
rule claims:
    input:
        [nb.table_files()["claims"] for nb in NOTEBOOKS],
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
