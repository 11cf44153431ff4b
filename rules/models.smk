# Training the MLPs (archs × methods, plus models.extra) and the accuracy table.


rule train:
    input:
        unpack(init_model),
    output:
        pt="results/models/{arch}_{method}.pt",
        onnx="results/models/{arch}_{method}.onnx",
    params:
        configs=CONFIG_ARGS,
        # Only this method's settings (and the shared ones): retuning wk does not retrain vanilla.
        settings=lambda wc: {
            "seed": config["seed"],
            "data": config["data"],
            "batch_size": config["training"]["batch_size"],
            wc.method: config["training"][wc.method],
        },
        init=lambda wc, input: f"--init {input.init}" if "init" in input.keys() else "",
    threads: config["training"]["threads"]
    priority: 99  # every study waits for its models: train before anything else that is ready
    conda:
        "../environment.yml"
    log:
        "results/logs/train/{arch}_{method}.log",
    benchmark:
        "results/benchmarks/train/{arch}_{method}.tsv"
    shell:
        "paper-repro train {params.configs} --arch {wildcards.arch} --method {wildcards.method} "
        "{params.init} --threads {threads} --out {output.pt} --onnx {output.onnx} --progress "
        "> {log} 2>&1"


rule evaluate:
    input:
        pt="results/models/{arch}_{method}.pt",
        onnx="results/models/{arch}_{method}.onnx",
    output:
        json="results/eval/{arch}_{method}.json",
    params:
        configs=CONFIG_ARGS,
        settings=lambda wc: {"data": config["data"], "evaluation": config["evaluation"]},
    conda:
        "../environment.yml"
    log:
        "results/logs/evaluate/{arch}_{method}.log",
    benchmark:
        "results/benchmarks/evaluate/{arch}_{method}.tsv"
    shell:
        "paper-repro evaluate {params.configs} --model {input.pt} --onnx {input.onnx} "
        "--out {output.json} > {log} 2>&1"


rule accuracy_table:
    input:
        expand("results/eval/{model}.json", model=MODELS),
    output:
        csv=report(
            "results/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Models",
        ),
    conda:
        "../environment.yml"
    log:
        "results/logs/accuracy_table.log",
    benchmark:
        "results/benchmarks/accuracy_table.tsv"
    shell:
        "paper-repro table {input} --out {output.csv} > {log} 2>&1"
