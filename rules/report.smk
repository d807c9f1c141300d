# Per-user metrics of every run, then aggregated metrics, paired significance tests,
# Tables 2-4 and figures per dataset (docs/report.md).


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
    threads: 1
    conda:
        # torch (the metrics are the tensor code training's early stopping uses).
        "../envs/train.yaml"
    script:
        "../scripts/evaluate.py"


rule evaluate_beyond:
    """Beyond-accuracy metrics of one run on one part (novelty, ARP, popularity lift, genre
    diversity per user; coverage and Gini per run): from files training already wrote."""
    input:
        recs="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_{part}.parquet",
        truth="results/{dataset}/split/{part}.parquet",
        train="results/{dataset}/split/train.parquet",
        catalogue="results/{dataset}/split/catalogue.parquet",
        genres=genre_labels,
    output:
        per_user="results/{dataset}/runs/{model}/{backend}/seed{seed}/beyond_{part}.parquet",
        run="results/{dataset}/runs/{model}/{backend}/seed{seed}/beyond_run_{part}.csv",
    params:
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/evaluate_beyond/{model}/{backend}/seed{seed}_{part}.log",
    threads: 1
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/evaluate_beyond.py"


rule evaluate_artists:
    """Accuracy of one cold-item run per target artist group (seen vs new artist; docs/beyond.md)."""
    input:
        recs="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_{part}.parquet",
        truth="results/{dataset}/split/{part}.parquet",
        train="results/{dataset}/split/train.parquet",
        artists=artist_information,
    output:
        "results/{dataset}/runs/{model}/{backend}/seed{seed}/artist_metrics_{part}.parquet",
    params:
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/evaluate_artists/{model}/{backend}/seed{seed}_{part}.log",
    threads: 1
    conda:
        # torch (the accuracy metrics of rule evaluate)
        "../envs/train.yaml"
    script:
        "../scripts/evaluate_artists.py"


REPORT_DIR = "results/{dataset}/report"


rule report:
    """Aggregate every run of a dataset: metrics.csv, significance.csv, table3.md, figures."""
    input:
        metrics=lambda wc: run_metrics(wc.dataset),
        runs=lambda wc: run_infos(wc.dataset),
        stats="results/{dataset}/split/stats.csv",
        mir_scores=mir_scores_table(),
        # beyond accuracy (docs/report.md): per-user and per-run files, user groups from train
        beyond=lambda wc: run_beyond(wc.dataset),
        beyond_runs=lambda wc: run_beyond_summaries(wc.dataset),
        artist_metrics=lambda wc: run_artist_metrics(wc.dataset),
        train="results/{dataset}/split/train.parquet",
    output:
        metrics=report(
            f"{REPORT_DIR}/metrics.csv",
            caption="../report/metrics_csv.rst",
            category="Tables",
            labels={"table": "metrics.csv"},
        ),
        runs=report(
            f"{REPORT_DIR}/runs.csv",
            caption="../report/runs_csv.rst",
            category="Tables",
            labels={"table": "runs.csv"},
        ),
        significance=report(
            f"{REPORT_DIR}/significance.csv",
            caption="../report/significance_csv.rst",
            category="Tables",
            labels={"table": "significance.csv"},
        ),
        table3=report(
            f"{REPORT_DIR}/table3.md",
            caption="../report/table3.rst",
            category="Tables",
            labels={"table": "table3.md"},
        ),
        metrics_test=report(
            f"{REPORT_DIR}/figures/metrics_test.png",
            caption="../report/metric_bars.rst",
            category="Metrics",
            labels={"figure": "metric bars", "split": "test"},
        ),
        metrics_val=report(
            f"{REPORT_DIR}/figures/metrics_val.png",
            caption="../report/metric_bars.rst",
            category="Metrics",
            labels={"figure": "metric bars", "split": "val"},
        ),
        per_user_test=report(
            f"{REPORT_DIR}/figures/per_user_test.png",
            caption="../report/per_user.rst",
            category="Per-user distributions",
            labels={"figure": "per-user distributions", "split": "test"},
        ),
        per_user_val=report(
            f"{REPORT_DIR}/figures/per_user_val.png",
            caption="../report/per_user.rst",
            category="Per-user distributions",
            labels={"figure": "per-user distributions", "split": "val"},
        ),
        mir_vs_recs=report(
            f"{REPORT_DIR}/figures/mir_vs_recs.png",
            caption="../report/mir_vs_recs.rst",
            category="MIR vs recommendation",
            labels={"figure": "MIR scores vs HR", "split": "test"},
        ),
        beyond=report(
            f"{REPORT_DIR}/beyond.csv",
            caption="../report/beyond_csv.rst",
            category="Beyond accuracy",
            labels={"table": "beyond.csv"},
        ),
        groups=report(
            f"{REPORT_DIR}/groups.csv",
            caption="../report/groups_csv.rst",
            category="Beyond accuracy",
            labels={"table": "groups.csv"},
        ),
        groups_significance=report(
            f"{REPORT_DIR}/groups_significance.csv",
            caption="../report/groups_csv.rst",
            category="Beyond accuracy",
            labels={"table": "groups_significance.csv"},
        ),
        accuracy_vs_novelty=report(
            f"{REPORT_DIR}/figures/accuracy_vs_novelty.png",
            caption="../report/accuracy_vs_novelty.rst",
            category="Beyond accuracy",
            labels={"figure": "accuracy vs novelty", "split": "test"},
        ),
    params:
        report=report_settings_params(),
        k=config["evaluation"]["k"],
        dataset_format=lambda wc: dataset_spec(wc.dataset)["format"],
        # cold_items datasets are reported as a cold-start section (docs/beyond.md)
        protocol=lambda wc: split_protocol_params(wc.dataset),
        model_types={m: model_type(m) for m in MODELS},
        model_ways={m: model_way(m) for m in MODELS},  # the tables' "Items" column (docs/models.md)
        backend_types={b: backend_spec(b)["type"] for b in BACKENDS},
    log:
        "logs/{dataset}/report.log",
    benchmark:
        "results/{dataset}/benchmarks/report.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/report.py"


rule gains:
    """Each way of using content over its collaborative-only version (items: id; ials for
    content2cf/contrastive), warm next to cold, with paired bootstrap intervals over users
    (docs/report.md, "Gains"). Only for a warm dataset with a cold_items sibling."""
    input:
        unpack(gains_inputs),
    output:
        table=report(
            f"{REPORT_DIR}/gains.csv",
            caption="../report/gains.rst",
            category="Gains",
            labels={"table": "gains.csv"},
        ),
        figure=report(
            f"{REPORT_DIR}/figures/gains.png",
            caption="../report/gains.rst",
            category="Gains",
            labels={"figure": "gains over collaborative-only", "split": "test"},
        ),
    params:
        k=config["evaluation"]["k"],
        resamples=config["report"]["bootstrap_resamples"],
        confidence=config["report"]["confidence"],
        seed=config["report"]["seed"],
        model_types={m: model_type(m) for m in MODELS},
        model_ways={m: model_way(m) for m in MODELS},
        backend_types={b: backend_spec(b)["type"] for b in BACKENDS},
    log:
        "logs/{dataset}/gains.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/gains.py"
