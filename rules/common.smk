# Shared helpers for the rules: model names from the config, config files for the CLI.


wildcard_constraints:
    arch=r"[1-9][0-9]*(x[1-9][0-9]*)*",
    method=r"vanilla|pgd|alp",


MODELS = [f"{a}_{m}" for a in config["models"]["archs"] for m in config["models"]["methods"]]

# The CLI re-reads the same config files Snakemake was given, in the same order; relative to the
# working directory so that a moved or re-cloned repo does not look like a change of settings.
CONFIG_ARGS = " ".join(f"--config {os.path.relpath(f)}" for f in workflow.configfiles)


def init_model(wildcards):
    """pgd/alp fine-tune the vanilla model of the same arch when their config says init: vanilla."""
    if wildcards.method != "vanilla" and config["training"][wildcards.method]["init"] == "vanilla":
        return {"init": f"results/models/{wildcards.arch}_vanilla.pt"}
    return {}


wildcard_constraints:
    model=r"[1-9][0-9]*(x[1-9][0-9]*)*_(vanilla|pgd|alp)",
    norm=r"linf|l1",
    image=r"[0-9]+",


EXPERIMENTS = config["experiments"]


def instance_files(models=None, norms=None):
    """The per-image JSONL files of the experiments for the given models and norms."""
    return expand(
        "results/instances/{model}/{norm}/{image}.jsonl",
        model=models or EXPERIMENTS["models"],
        norm=norms or EXPERIMENTS["norms"],
        image=EXPERIMENTS["images"],
    )
