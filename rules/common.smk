# Shared helpers for the rules: model names from the config, config files for the CLI.


wildcard_constraints:
    arch=r"[1-9][0-9]*(x[1-9][0-9]*)*",
    method=r"vanilla|pgd|alp",


MODELS = [f"{a}_{m}" for a in config["models"]["archs"] for m in config["models"]["methods"]]

# The CLI re-reads the same config files Snakemake was given, in the same order.
CONFIG_ARGS = " ".join(f"--config {f}" for f in workflow.configfiles)
