# Recommenders: one job per model x backend x seed (ARCHITECTURE §3, §6).
#
# Two rules with the same outputs, split by model family so that profiles can give them
# different resources: `train` for the neural models (shallow, bert4rec: GPU when present,
# minutes to hours) and `train_baseline` for pop and knn (CPU, seconds). Params hold only
# the model's own config slice (minus the keys that choose which runs exist) and
# evaluation.k, so editing one model re-runs only that model's jobs.
# Neural jobs checkpoint to `checkpoint.pt` in the run folder after every epoch (not an
# output: a failed job leaves it for the retry to resume from; it is deleted on success).


rule train:
    input:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        embeddings=embeddings_for,
        catalogue=split_catalogue,  # cold-item splits only: the held-out tracks to rank (docs/beyond.md)
    output:
        recs_val="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_val.parquet",
        recs_test="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_test.parquet",
        history="results/{dataset}/runs/{model}/{backend}/seed{seed}/history.csv",
        weights="results/{dataset}/runs/{model}/{backend}/seed{seed}/model.pt",
        info="results/{dataset}/runs/{model}/{backend}/seed{seed}/run.json",
    wildcard_constraints:
        model=_alternatives(models_of_types("shallow", "bert4rec")),
    params:
        model=lambda wc: train_params(wc.model),
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/train/{model}/{backend}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{model}/{backend}/seed{seed}.tsv"
    threads: workflow.cores
    resources:
        # The GPU is requested by profiles/slurm (set-resources: train: gres), whose values
        # also replace these on a cluster.
        mem_mb=lambda wc, attempt: 8000 * attempt,
        runtime=lambda wc, attempt: 720 * attempt,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train.py"


use rule train as train_baseline with:
    wildcard_constraints:
        model=_alternatives(models_of_types("pop", "knn")),
    log:
        "logs/{dataset}/train/{model}/{backend}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{model}/{backend}/seed{seed}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,


# artist_mean (docs/beyond.md, "Artist-aware cold start"): KNN on artist-mean vectors, so it
# needs the dataset's id_information too. A rule of its own, so that the train rules above
# (and the runs they made) are untouched by it.
rule train_artist_mean:
    input:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        embeddings=embeddings_for,
        catalogue=split_catalogue,
        artists=artist_information,
    output:
        recs_val="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_val.parquet",
        recs_test="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_test.parquet",
        history="results/{dataset}/runs/{model}/{backend}/seed{seed}/history.csv",
        weights="results/{dataset}/runs/{model}/{backend}/seed{seed}/model.pt",
        info="results/{dataset}/runs/{model}/{backend}/seed{seed}/run.json",
    wildcard_constraints:
        model=_alternatives(models_of_types("artist_mean")),
    params:
        model=lambda wc: train_params(wc.model),
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/train/{model}/{backend}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{model}/{backend}/seed{seed}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train_artist_mean.py"
