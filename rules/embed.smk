# Per-backend embedding extraction: weights fetched once on the submitting host, sharded
# extraction jobs (resumable), gathered into one HDF5 per backend plus its failures table.
# Helpers (backend_params, weights_manifest, embed_shards, ...) live in rules/common.smk.


localrules:
    fetch_weights,


rule fetch_weights:
    """Download a backend's weights into resources/weights/{type}/ (needs internet; runs locally,
    so cluster nodes without internet find them cached) and record them in a manifest."""
    output:
        f"{WEIGHTS_DIR}/manifests/{{backend}}.json",
    params:
        backend=lambda wc: backend_params(wc.backend, drop=("layer",)),
        weights_root=lambda wc, output: weights_root_of(output),
    log:
        "logs/weights/{backend}.log",
    conda:
        backend_env  # envs/jukebox.yaml for jukebox, else envs/extract.yaml
    script:
        "../scripts/fetch_weights.py"


rule embed_shard:
    """Embed one shard of the track index (results are all cached layers, float32).
    This rule takes the backends that compute on the CPU (oracle, mfcc, any backend with
    `device: cpu`); embed_shard_gpu below takes the networks, so profiles can give it a GPU."""
    input:
        tracks="results/{dataset}/tracks.parquet",
        metadata=backend_metadata_files,
        weights=weights_manifest,
    output:
        "results/{dataset}/embeddings/{backend}/shard{shard}-of-{nshards}.h5",
    params:
        # the backend's settings minus those that do not change its vectors (see common.smk)
        backend=lambda wc: backend_params(wc.backend, drop=("layer",)),
        runtime_keys=RUNTIME_BACKEND_KEYS,
        dataset_dir=lambda wc: dataset_dir(wc.dataset),
        weights_root=lambda wc, input: weights_root_of(input.weights),
        failures_report="logs/{dataset}/embed/{backend}/shard{shard}-of-{nshards}.failures.csv",
    wildcard_constraints:
        backend=_alternatives(cpu_backends()),
        shard=r"\d+",
        nshards=r"\d+",
    log:
        "logs/{dataset}/embed/{backend}/shard{shard}-of-{nshards}.log",
    benchmark:
        "results/{dataset}/benchmarks/embed/{backend}/shard{shard}-of-{nshards}.tsv"
    # half the cores, as training: a CPU extraction (one model thread, one decode worker on 2
    # cores) uses ~0.8 of them, so the other half trains on the backends that are ready
    threads: max(1, workflow.cores // 2)
    conda:
        backend_env  # envs/jukebox.yaml for jukebox, else envs/extract.yaml
    script:
        "../scripts/embed_shard.py"


use rule embed_shard as embed_shard_gpu with:
    wildcard_constraints:
        backend=_alternatives(gpu_backends()),
        shard=r"\d+",
        nshards=r"\d+",


rule embed:
    """Gather the shards into the one cache file per backend, plus its failures table."""
    input:
        shards=embed_shards,
        tracks="results/{dataset}/tracks.parquet",
    output:
        h5="results/{dataset}/embeddings/{backend}.h5",
        failures="results/{dataset}/embeddings/{backend}.failures.csv",
    params:
        backend=lambda wc: backend_params(wc.backend),
        runtime_keys=RUNTIME_BACKEND_KEYS,
        failures_report="logs/{dataset}/embed/{backend}/failures.csv",
    log:
        "logs/{dataset}/embed/{backend}/gather.log",
    conda:
        "../envs/extract.yaml"
    script:
        "../scripts/embed_gather.py"
