# Recommenders: one job per model x backend x seed (ARCHITECTURE §3, §6).
#
# Two rules with the same outputs, split by model type so that profiles can give them
# different resources: `train` for the types declared `gpu: true` (shallow, bert4rec,
# sasrec: GPU when present, minutes to hours) and `train_baseline` for the others (pop, knn:
# CPU, seconds). Model types are declared in src/audiorec/models/<type>.yaml (and
# `model_dirs`); a declaration's `extra_inputs` (other jobs' outputs) become named inputs.
# Params hold only the model's own config slice (minus the keys that choose which runs
# exist) and evaluation.k, so editing one model re-runs only that model's jobs.
# Neural jobs checkpoint to `checkpoint.pt` in the run folder after every epoch (not an
# output: a failed job leaves it for the retry to resume from; it is deleted on success).


rule train:
    input:
        unpack(model_extra_inputs),  # the model type's declared extra_inputs, by name
        unpack(tuned_input),  # a tuned model's best settings (tuning.smk); none otherwise
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        known="results/{dataset}/split/known.parquet",  # what ranking excludes (docs/split.md)
        embeddings=embeddings_for,
        catalogue=split_catalogue,  # cold-item splits only: the held-out tracks to rank (docs/beyond.md)
    output:
        recs_val="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_val.parquet",
        recs_test="results/{dataset}/runs/{model}/{backend}/seed{seed}/recs_test.parquet",
        history="results/{dataset}/runs/{model}/{backend}/seed{seed}/history.csv",
        weights="results/{dataset}/runs/{model}/{backend}/seed{seed}/model.pt",
        info="results/{dataset}/runs/{model}/{backend}/seed{seed}/run.json",
    wildcard_constraints:
        model=_alternatives(models_on_gpu(True)),
    params:
        model=lambda wc: train_params(wc.model),
        k=config["evaluation"]["k"],
    log:
        "logs/{dataset}/train/{model}/{backend}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{model}/{backend}/seed{seed}.tsv"
    # half the cores: two trainings run side by side (a small model uses ~1.5 of 2 threads, so
    # on a 2-core machine two 1-thread jobs get more done); a profile's set-threads overrides it
    threads: max(1, workflow.cores // 2)
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
        model=_alternatives(models_on_gpu(False)),
    log:
        "logs/{dataset}/train/{model}/{backend}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{model}/{backend}/seed{seed}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
