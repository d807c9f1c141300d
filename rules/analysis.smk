# Beyond the paper (docs/beyond.md): the layer sweep. Cold-item evaluation needs no rules of
# its own: it is a dataset entry with `split: {protocol: cold_items}` (usually with
# `same_data_as`), which the split, train, evaluate and report rules handle.
# Helpers (sweep_backends, sweep_seeds, layer_sweep_files, split_catalogue) are in rules/common.smk.


rule layer_sweep:
    """One model evaluated with every cached layer of one backend, read from the embedding
    cache (no audio model runs); per-user metrics of every layer on val and test."""
    input:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        known="results/{dataset}/split/known.parquet",  # what ranking excludes (docs/split.md)
        embeddings=embeddings_for,
        catalogue=split_catalogue,
    output:
        metrics="results/{dataset}/layer_sweep/{model}/{backend}/seed{seed}/metrics.parquet",
        info="results/{dataset}/layer_sweep/{model}/{backend}/seed{seed}/sweep.json",
    wildcard_constraints:
        model=_alternatives(config["layer_sweep"]["models"]),
        backend=_alternatives(BACKENDS),
    params:
        # the model's own slice (as its train jobs) and K: sweep selection keys re-run nothing
        model=lambda wc: train_params(wc.model),
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/layer_sweep/{model}/{backend}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/layer_sweep/{model}/{backend}/seed{seed}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=lambda wc, attempt: 8000 * attempt,
        runtime=lambda wc, attempt: 120 * attempt,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/layer_sweep.py"


rule layer_sweep_report:
    """Per dataset: every sweep aggregated (layer_sweep.csv), the best layer on validation per
    model x backend (layer_sweep.md), and the metric against the layer (figure)."""
    input:
        lambda wc: layer_sweep_files(wc.dataset),
    output:
        csv=report(
            "results/{dataset}/report/layer_sweep.csv",
            caption="../report/layer_sweep.rst",
            category="Layer sweep",
            subcategory="{dataset}",
            labels={"table": "layer_sweep.csv"},
        ),
        md=report(
            "results/{dataset}/report/layer_sweep.md",
            caption="../report/layer_sweep.rst",
            category="Layer sweep",
            subcategory="{dataset}",
            labels={"table": "layer_sweep.md"},
        ),
        figure=report(
            "results/{dataset}/report/figures/layer_sweep.png",
            caption="../report/layer_sweep.rst",
            category="Layer sweep",
            subcategory="{dataset}",
            labels={"figure": "metric vs layer"},
        ),
    params:
        metric=config["layer_sweep"]["metric"],
        k=config["evaluation"]["k"],
        confidence=config["report"]["confidence"],
        model_types={m: model_type(m) for m in MODELS},
        backend_types={b: backend_spec(b)["type"] for b in BACKENDS},
    log:
        "logs/{dataset}/layer_sweep_report.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/layer_sweep_report.py"
