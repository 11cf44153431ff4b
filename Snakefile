# paper_repro pipeline: data → models → training → evaluation (→ exact search and notebooks).
# Thin by design: rules live in rules/*.smk, logic in the paper_repro package.
import os

from snakemake.utils import min_version

from paper_repro.config import validate as validate_config

min_version("8.0")


# Absolute, so `snakemake --directory elsewhere` (tests, benchmarks) still finds the defaults.
DEFAULT_CONFIG = os.path.join(workflow.basedir, "config", "config.yaml")


configfile: DEFAULT_CONFIG


# config/schema.yaml, through the package (the jobs validate the same way): defaults filled in,
# the first violation named by its key.
config.update(validate_config(config))


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/experiments.smk"
include: "rules/notebooks.smk"


rule all:
    default_target: True
    input:
        rules.accuracy_table.output.csv,
        [f for s in STUDIES.values() for f in s.outputs()],
        expand("results/certify/{model}.csv", model=MODELS),
        [f"results/notebooks/{nb.name}.ipynb" for nb in NOTEBOOKS],
        rules.claims.output.csv,
