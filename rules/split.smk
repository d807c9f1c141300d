# Temporal split of the listening log (paper §2.3), one row per (user, track) and part.


rule split:
    input:
        log=lambda wc: listening_log(wc.dataset),
    output:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        stats="results/{dataset}/split/stats.csv",
    params:
        settings=lambda wc: dataset_spec(wc.dataset)["split"],
    log:
        "logs/{dataset}/split.log",
    benchmark:
        "results/{dataset}/benchmarks/split.tsv"
    threads: workflow.cores
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/split.py"
