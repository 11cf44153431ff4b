# Shared helpers for the rules: model names from the config, config files for the CLI.


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
    image=r"[0-9]+",


EXPERIMENTS = config["experiments"]
INSTANCE_LISTS = ("models", "norms", "images", "certify")


def instance_files(models=None, norms=None):
    """The per-image JSONL files of the experiments for the given models and norms."""
    return expand(
        "results/instances/{model}/{norm}/{image}.jsonl",
        model=models or EXPERIMENTS["models"],
        norm=norms or EXPERIMENTS["norms"],
        image=EXPERIMENTS["images"],
    )
