# Aggregated metrics, paired significance tests, Table 3 and figures per dataset.


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
