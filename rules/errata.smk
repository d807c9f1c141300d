# The report's Errata section: each configured fixed/erratum pair of runs compared user by user
# (docs/report.md "Errata"; configs/errata.yaml). Helpers (errata_pairs, errata_metrics) and the
# config checks are in rules/errata_config.smk.


rule errata_report:
    """Per dataset (the fixed runs'): every metric's change, fixed - erratum, with paired tests."""
    input:
        metrics=errata_metrics,
    output:
        table=report(
            "results/{dataset}/report/errata.csv",
            caption="../report/errata.rst",
            category="Errata",
            subcategory="{dataset}",
            labels={"table": "errata.csv"},
        ),
        markdown=report(
            "results/{dataset}/report/errata.md",
            caption="../report/errata.rst",
            category="Errata",
            subcategory="{dataset}",
            labels={"table": "errata.md"},
        ),
    params:
        pairs=lambda wc: errata_pairs(wc.dataset),
        report=report_settings_params(),
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/errata_report.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/errata_report.py"
