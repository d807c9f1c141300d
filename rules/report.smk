# Per-user metrics of every run, then aggregated metrics, paired significance tests,
# Table 3 and figures per dataset.

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



rule report:
    input:
        metrics=lambda wc: run_metrics(wc.dataset),
        stats="results/{dataset}/split/stats.csv",
    output:
        metrics="results/{dataset}/report/metrics.csv",
        significance="results/{dataset}/report/significance.csv",
        table3="results/{dataset}/report/table3.md",
    params:
        report=config["report"],
        k=config["evaluation"]["k"],
        dataset_format=lambda wc: dataset_spec(wc.dataset)["format"],
    log:
        "logs/{dataset}/report.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/report.py"
