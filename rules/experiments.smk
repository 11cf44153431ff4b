# The studies' certified minimal adversarial examples (one job per study, model, norm and shard)
# and the certified radii of every test image.


rule study:
    input:
        pt="results/models/{model}.pt",
        select_with=study_models,
    output:
        jsonl="results/instances/{study}/{model}/{norm}/{shard}.jsonl",
    params:
        configs=CONFIG_ARGS,
        # Finished queries survive an interrupted job here (not an output: Snakemake keeps it).
        checkpoint="results/checkpoints/{study}/{model}/{norm}/{shard}.jsonl",
        # What changes the job's answers (a rerun trigger); other studies' settings do not.
        settings=lambda wc: {
            "seed": config["seed"],
            "data": config["data"],
            "study": EXPERIMENTS["studies"][wc.study],
            "solve": {k: v for k, v in EXPERIMENTS.items() if k not in ("studies", "certify")},
        },
    threads: 1
    # Longest jobs first (their worst-case minutes; training's priority is above any of these).
    priority: lambda wc: min(98, round(STUDIES[wc.study].job_minutes()))
    resources:
        runtime=lambda wc: int(STUDIES[wc.study].job_minutes()) + 10,
    conda:
        "../environment.yml"
    log:
        "results/logs/study/{study}/{model}_{norm}_{shard}.log",
    benchmark:
        "results/benchmarks/study/{study}/{model}_{norm}_{shard}.tsv"
    shell:
        "paper-repro study {params.configs} --study {wildcards.study} --model {input.pt} "
        "--norm {wildcards.norm} --shard {wildcards.shard} --select-with {input.select_with} "
        "--out {output.jsonl} --checkpoint {params.checkpoint} > {log} 2>&1"


rule certify:
    input:
        pt="results/models/{model}.pt",
    output:
        csv="results/certify/{model}.csv",
        provenance="results/certify/{model}.json",
    params:
        configs=CONFIG_ARGS,
        settings=lambda wc: {
            "seed": config["seed"],
            "data": config["data"],
            "certify": EXPERIMENTS["certify"],
        },
    threads: 1
    conda:
        "../environment.yml"
    log:
        "results/logs/certify/{model}.log",
    benchmark:
        "results/benchmarks/certify/{model}.tsv"
    shell:
        "paper-repro certify {params.configs} --model {input.pt} --out {output.csv} > {log} 2>&1"
