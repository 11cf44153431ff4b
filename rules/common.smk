# Shared helpers for the rules: model names from the config, config files for the CLI.
import json

from paper_repro.experiments.notebook_registry import runnable
from paper_repro.experiments.studies import studies


wildcard_constraints:
    arch=r"[1-9][0-9]*(x[1-9][0-9]*)*",
    method=r"vanilla|pgd|alp|wk",


MODELS = [f"{a}_{m}" for a in config["models"]["archs"] for m in config["models"]["methods"]]
MODELS += [m for m in config["models"]["extra"] if m not in MODELS]

# The CLI re-reads the config files Snakemake merged, in Snakemake's order (the Snakefile's default,
# then each --configfile), relative to the working directory so that a moved or re-cloned repo does
# not look like a change of settings. `--config key=value` overrides would not reach the jobs.
if workflow.config_settings.config:
    raise ValueError(
        "paper_repro forwards config files to its jobs, not --config key=value overrides: "
        "put the overrides in a YAML file and pass it with --configfile FILE"
    )
_CONFIG_FILES = [] if workflow.config_settings.replace_workflow_config else [DEFAULT_CONFIG]
_CONFIG_FILES += [str(f) for f in workflow.config_settings.configfiles]
CONFIG_ARGS = " ".join(f"--config {os.path.relpath(f)}" for f in _CONFIG_FILES)


def init_model(wildcards):
    """pgd/alp/wk fine-tune the vanilla model of the same arch when their config says init: vanilla."""
    if wildcards.method != "vanilla" and config["training"][wildcards.method]["init"] == "vanilla":
        return {"init": f"results/models/{wildcards.arch}_vanilla.pt"}
    return {}


wildcard_constraints:
    model=r"[1-9][0-9]*(x[1-9][0-9]*)*_(vanilla|pgd|alp|wk)",
    norm=r"linf|l1",
    study=r"[a-z][a-z0-9_]*",
    shard=r"[0-9]+",


EXPERIMENTS = config["experiments"]
# The papers' instance sets and notebooks, as the package defines them (defaults filled in).
STUDIES = studies(config)


def study_models(wildcards):
    """Every model of the study: the images are those they all classify correctly."""
    return expand("results/models/{m}.pt", m=STUDIES[wildcards.study].models)


# The notebooks (papermill): see rules/notebooks.smk.
NB_SHELL = (
    "papermill {input.nb} {output.nb} -k python3 --log-output --no-progress-bar "
    "-y '{params.yaml}' -p results_dir \"$PWD/results\" -p tables_dir \"$PWD/results/tables\" "
    "-p figures_dir \"$PWD/results/figures\" > {log} 2>&1"
)
NOTEBOOKS = runnable(config)


def notebook_inputs(nb):
    """The notebook file, its studies' instance files and the tables it declares it reads."""
    inputs = {
        "nb": os.path.join(workflow.basedir, "notebooks", f"{nb.name}.ipynb"),
        "instances": nb.instance_files(config),
    }
    if nb.accuracy:
        inputs["accuracy"] = "results/tables/accuracy.csv"
    if nb.certify:
        inputs["certify"] = expand("results/certify/{model}.csv", model=MODELS)
    return inputs


def notebook_outputs(nb):
    """The executed notebook, its tables and (in the report, with its caption) its figures."""
    figures = {
        name: report(path, caption=f"../report/{nb.name}.rst", category=nb.category)
        for name, path in nb.figure_files().items()
    }
    return {"nb": f"results/notebooks/{nb.name}.ipynb", **nb.table_files(), **figures}


def notebook_parameters(nb):
    """Papermill parameters: the registry's, and the study files (relative to the work folder)."""
    return json.dumps(
        {
            **nb.parameters(config, MODELS),
            "build_demo": False,
            "studies": nb.instance_files(config),
        }
    )
