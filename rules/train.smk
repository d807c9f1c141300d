# Recommenders: one job per model x backend x seed, then per-user metrics per part.


rule train:
    input:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        embeddings=embeddings_for,
    output:
        recs_val="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_val.parquet",
        recs_test="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_test.parquet",
        history="results/{dataset}/runs/{model}/{backend}/seed{seed}/history.csv",
        weights="results/{dataset}/runs/{model}/{backend}/seed{seed}/model.pt",
    params:
        model=lambda wc: model_spec(wc.model),
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/train/{model}/{backend}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{model}/{backend}/seed{seed}.tsv"
    threads: workflow.cores
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train.py"


rule evaluate:
    """Per-user metrics of one run on one part; cheap, so metric changes never retrain."""
    input:
        recs="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_{part}.parquet",
        truth="results/{dataset}/split/{part}.parquet",
    output:
        "results/{dataset}/runs/{model}/{backend}/seed{seed}/metrics_{part}.parquet",
    params:
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/evaluate/{model}/{backend}/seed{seed}_{part}.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/evaluate.py"
