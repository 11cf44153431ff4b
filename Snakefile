# paper_repro pipeline: data → models → training → evaluation (→ exact search and notebooks).
# Thin by design: rules live in rules/*.smk, logic in the paper_repro package.
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/models.smk"


rule all:
    default_target: True
    input:
        rules.accuracy_table.output.csv,
