# Raw data: the synthetic dataset generator, and the audio index every backend shares.


rule synthesize:
    """Generate a dataset in the Music4All-Onion layout (only for `format: synthetic`)."""
    output:
        log="resources/datasets/{dataset}/userid_trackid_timestamp.tsv",
        genres="resources/datasets/{dataset}/id_genres.tsv",
        information="resources/datasets/{dataset}/id_information.tsv",
        tastes="resources/datasets/{dataset}/user_tastes.tsv",
        audio=directory("resources/datasets/{dataset}/audios"),
    params:
        settings=lambda wc: dataset_spec(wc.dataset)["synthetic"],
    wildcard_constraints:
        dataset=_alternatives(synthetic_datasets()),
    log:
        "logs/{dataset}/synthesize.log",
    benchmark:
        "results/{dataset}/benchmarks/synthesize.tsv"
    threads: workflow.cores
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/synthesize.py"


rule tracks:
    """Index and probe every clip: track_id, path, duration, sample rate, channels, decode status.
    Tracks of the listening log without audio are listed too (status `missing`)."""
    input:
        audio=lambda wc: audio_dir(wc.dataset),
        listening_log=lambda wc: listening_log(wc.dataset),
    output:
        "results/{dataset}/tracks.parquet",
    log:
        "logs/{dataset}/tracks.log",
    benchmark:
        "results/{dataset}/benchmarks/tracks.tsv"
    threads: workflow.cores
    conda:
        "../envs/extract.yaml"
    script:
        "../scripts/tracks.py"
