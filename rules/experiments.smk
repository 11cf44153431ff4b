# Certified minimal adversarial examples (one job per model, norm and image) and certified radii.


rule minimal_image:
    input:
        pt="results/models/{model}.pt",
    output:
        jsonl="results/instances/{model}/{norm}/{image}.jsonl",
    params:
        configs=CONFIG_ARGS,
        # Finished targets survive an interrupted job here (not an output: Snakemake keeps it).
        checkpoint="results/checkpoints/{model}/{norm}/{image}.jsonl",
        # Only what changes an instance's answer (not the model/image lists) triggers a rerun.
        settings=lambda wc: {
            "data": config["data"],
            "solve": {k: v for k, v in EXPERIMENTS.items() if k not in INSTANCE_LISTS},
        },
    threads: 1
    resources:
        runtime=lambda wc: int(9 * EXPERIMENTS["timeout"] / 60) + 10,
    conda:
        "../environment.yml"
    log:
        "results/logs/minimal_image/{model}_{norm}_{image}.log",
    benchmark:
        "results/benchmarks/minimal_image/{model}_{norm}_{image}.tsv"
    shell:
        "paper-repro minimal-image {params.configs} --model {input.pt} --norm {wildcards.norm} "
        "--image {wildcards.image} --out {output.jsonl} --checkpoint {params.checkpoint} "
        "> {log} 2>&1"


rule certify:
    input:
        pt="results/models/{model}.pt",
    output:
        csv="results/certify/{model}.csv",
        provenance="results/certify/{model}.json",
    params:
        configs=CONFIG_ARGS,
        settings=lambda wc: {"data": config["data"], "certify": EXPERIMENTS["certify"]},
    threads: 1
    conda:
        "../environment.yml"
    log:
        "results/logs/certify/{model}.log",
    benchmark:
        "results/benchmarks/certify/{model}.tsv"
    shell:
        "paper-repro certify {params.configs} --model {input.pt} --out {output.csv} > {log} 2>&1"
