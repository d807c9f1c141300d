# MIR probes (docs/probes.md): every cached layer of every backend probed on the dataset's own
# labels, read from the embedding cache only. Helpers (probe_enabled, probe_params, probe_targets,
# probe_label_files) are in rules/common.smk.


rule probe:
    """Linear probes of one backend's cached layers (or seeded random vectors for `random`) on
    the dataset's label files: scores.csv, per-track out-of-fold predictions, probe.json."""
    input:
        embeddings=probe_embeddings,
        tracks=lambda wc: f"results/{data_source(wc.dataset)}/tracks.parquet" if wc.backend == "random" else [],
        labels=lambda wc: probe_label_files(wc.dataset),
    output:
        scores="results/{dataset}/probes/{backend}/scores.csv",
        predictions="results/{dataset}/probes/{backend}/predictions.parquet",
        info="results/{dataset}/probes/{backend}/probe.json",
    params:
        # the probes section only (and the dataset's format): a backend's own settings re-run it via its cache
        probes=lambda wc: probe_params(),
        dataset_dir=lambda wc: dataset_dir(wc.dataset),
        dataset_format=lambda wc: dataset_spec(wc.dataset)["format"],
    log:
        "logs/{dataset}/probe/{backend}.log",
    benchmark:
        "results/{dataset}/benchmarks/probe/{backend}.tsv"
    # worker processes for the outer folds of every layer (one BLAS thread each): the results do
    # not depend on it; with --cores 2 the jobs run one after another, each on both cores
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    conda:
        "../envs/probe.yaml"
    script:
        "../scripts/probe.py"


rule probe_report:
    """MIR vs recommendation: probe scores next to each model's test metric, rank correlations
    across backends with bootstrap intervals, and against the published Table 4."""
    input:
        scores=lambda wc: probe_files(wc.dataset),
        predictions=lambda wc: [f.replace("scores.csv", "predictions.parquet") for f in probe_files(wc.dataset)],
        metrics=lambda wc: [m for m in run_metrics(wc.dataset) if m.endswith("metrics_test.parquet")],
        mir_scores=mir_scores_table(),
        # the layer sweep's table, when it runs: best layer by probe vs by recommendation
        sweep=lambda wc: f"results/{wc.dataset}/report/layer_sweep.csv" if layer_sweep_files(wc.dataset) else [],
    output:
        csv="results/{dataset}/report/mir_vs_recs.csv",
        md="results/{dataset}/report/mir_vs_recs.md",
        figure="results/{dataset}/report/figures/probes_vs_recs.png",
    params:
        k=config["evaluation"]["k"],
        confidence=config["report"]["confidence"],
        seed=config["probes"]["seed"],
        backend_types={b: backend_spec(b)["type"] for b in BACKENDS},
    log:
        "logs/{dataset}/probe_report.log",
    conda:
        "../envs/probe.yaml"
    script:
        "../scripts/probe_report.py"
