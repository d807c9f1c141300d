# Hyperparameter tuning (docs/models.md "Tuning"): one study per dataset x tuned model x backend,
# the same budget for each, on train and val only (inputs: no test part). Two rules with the same
# outputs, split like train/train_baseline so that profiles give GPU types a GPU. The study's
# trials live in journal.log beside the outputs (not an output: a failed or killed job leaves it
# for the retry to resume from). Rule train of a tuned model reads best.json (tuned_input).
# Helpers and config checks: rules/tuning_config.smk.


rule tune:
    input:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        known="results/{dataset}/split/known.parquet",
        embeddings=embeddings_for,
        catalogue=split_catalogue,
    output:
        best=f"{TUNING_DIR}/best.json",
        trials=f"{TUNING_DIR}/trials.csv",
    wildcard_constraints:
        model=_alternatives([m for m in TUNED_MODELS if m in models_on_gpu(True)]),
    params:
        tuning=lambda wc: tuning_params(wc.model),
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/tune/{model}/{backend}.log",
    benchmark:
        "results/{dataset}/benchmarks/tune/{model}/{backend}.tsv"
    threads: max(1, workflow.cores // 2)
    resources:
        # a study is `budget` trainings: profiles/slurm sets a GPU and a longer time
        mem_mb=lambda wc, attempt: 8000 * attempt,
        runtime=lambda wc, attempt: 1440 * attempt,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/tune.py"


use rule tune as tune_baseline with:
    wildcard_constraints:
        model=_alternatives([m for m in TUNED_MODELS if m in models_on_gpu(False)]),
    log:
        "logs/{dataset}/tune/{model}/{backend}.log",
    benchmark:
        "results/{dataset}/benchmarks/tune/{model}/{backend}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,


rule tuning_report:
    """Per dataset: each study's best settings, trials, default vs tuned on val, tuned vs default
    on test where an untuned twin is configured, and the best-so-far curves."""
    input:
        best=lambda wc: tuning_files(wc.dataset, "best.json"),
        trials=lambda wc: tuning_files(wc.dataset, "trials.csv"),
        metrics=tuning_report_metrics,
    output:
        table=report(
            "results/{dataset}/report/tuning.csv",
            caption="../report/tuning.rst",
            category="Tuning",
            labels={"table": "tuning.csv"},
        ),
        markdown=report(
            "results/{dataset}/report/tuning.md",
            caption="../report/tuning.rst",
            category="Tuning",
            labels={"table": "tuning.md"},
        ),
        figure=report(
            "results/{dataset}/report/figures/tuning_curves.png",
            caption="../report/tuning.rst",
            category="Tuning",
            labels={"figure": "best-so-far curves"},
        ),
    params:
        pairs=tuning_pairs(),
        report=config["report"],
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/tuning_report.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/tuning_report.py"
