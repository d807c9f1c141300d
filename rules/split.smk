# Temporal split of the listening log (paper §2.3), one row per (user, track) and part.
# Settings: datasets.{dataset}.split (schemas/config.schema.yaml); details: docs/split.md.


rule split:
    """Split the listening log into train/val/test Parquet files and stats.csv (the paper's Table 2)."""
    input:
        log=lambda wc: listening_log(wc.dataset),
    output:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        stats="results/{dataset}/split/stats.csv",
        # the catalogue: train tracks and held-out (cold) tracks, which val/test may rank (docs/beyond.md)
        catalogue="results/{dataset}/split/catalogue.parquet",
        # (user, track) pairs each val/test user is known to have heard: what ranking excludes (docs/split.md)
        known="results/{dataset}/split/known.parquet",
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
