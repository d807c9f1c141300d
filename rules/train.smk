# Recommenders: one job per model x backend x seed.


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

