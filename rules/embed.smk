# Per-backend embedding extraction: sharded jobs gathered into one HDF5 per backend.


rule embed_shard:
    input:
        tracks="results/{dataset}/tracks.parquet",
        metadata=backend_metadata_files,
    output:
        "results/{dataset}/embeddings/{backend}/shard{shard}-of-{nshards}.h5",
    params:
        backend=lambda wc: backend_spec(wc.backend),
    log:
        "logs/{dataset}/embed/{backend}/shard{shard}-of-{nshards}.log",
    benchmark:
        "results/{dataset}/benchmarks/embed/{backend}/shard{shard}-of-{nshards}.tsv"
    threads: workflow.cores
    conda:
        "../envs/extract.yaml"
    script:
        "../scripts/embed_shard.py"


rule embed:
    """Gather the shards into the one cache file per backend, plus its failures table."""
    input:
        embed_shards,
    output:
        h5="results/{dataset}/embeddings/{backend}.h5",
        failures="results/{dataset}/embeddings/{backend}.failures.csv",
    params:
        backend=lambda wc: backend_spec(wc.backend),
    log:
        "logs/{dataset}/embed/{backend}/gather.log",
    conda:
        "../envs/extract.yaml"
    script:
        "../scripts/embed_gather.py"
