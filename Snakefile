# paper_repro pipeline: data → models → training → evaluation (→ exact search and notebooks).
# Thin by design: rules live in rules/*.smk, logic in the paper_repro package.
import os

from snakemake.utils import min_version, validate

min_version("8.0")


# Absolute, so `snakemake --directory elsewhere` (tests, benchmarks) still finds the defaults.
DEFAULT_CONFIG = os.path.join(workflow.basedir, "config", "config.yaml")


configfile: DEFAULT_CONFIG


validate(config, os.path.join(workflow.basedir, "config", "schema.yaml"))


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/experiments.smk"
include: "rules/notebooks.smk"


rule all:
    default_target: True
    input:
        rules.accuracy_table.output.csv,
        instance_files(),
        expand("results/certify/{model}.csv", model=EXPERIMENTS["models"]),
        NOTEBOOK_OUTPUTS,
        rules.claims.output.csv,
