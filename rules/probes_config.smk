# Helpers of the MIR probe rules (rules/probes.smk): which backends are probed, with which
# labels and settings. Included after rules/common.smk (it uses its config helpers).


def probe_backends():
    """Backends probed (`probes.backends`, else all) plus `random`, the floor."""
    chosen = config["probes"]["backends"]
    return [b for b in BACKENDS if chosen is None or b in chosen] + [PROBE_RANDOM]


def probe_params():
    return {k: v for k, v in config["probes"].items() if k not in PROBE_SELECTION_KEYS}


def probe_embeddings(wildcards):
    if wildcards.backend == PROBE_RANDOM:
        return []
    return f"results/{data_source(wildcards.dataset)}/embeddings/{wildcards.backend}.h5"


def probe_label_files(dataset):
    """The label files present (a missing one is skipped by the job with a message)."""
    root = Path(dataset_dir(dataset))
    if dataset_spec(dataset)["format"] == "synthetic" and data_source(dataset) == dataset:
        return [str(root / "id_genres.tsv")]
    found = []
    for stem in ("id_genres", "id_tags", "id_metadata", "id_information"):
        for candidate in (root / f"{stem}.tsv", root / f"{stem}.tsv.bz2"):
            if candidate.exists():
                found.append(str(candidate))
                break
    return found


def probe_files(dataset):
    return [f"results/{dataset}/probes/{b}/scores.csv" for b in probe_backends()]


def probe_targets(dataset):
    if not config["probes"]["enable"]:
        return []
    for b in config["probes"]["backends"] or []:
        if b not in BACKENDS:
            _config_error(f"probes.backends lists '{b}', which is not a configured backend (configured: {', '.join(BACKENDS)}).")
    return probe_files(dataset) + [f"results/{dataset}/report/mir_vs_recs.md"]


# --- report ---


def mir_scores_table():
    """The report's Table-4-style MIR score CSV when the user sets `report.mir_scores` (an input, so
    editing it re-runs the report). Without it the report reads the table shipped in the package:
    no input, so that no absolute path of this checkout enters the job (a workflow folder moved or
    rsynced elsewhere re-runs nothing)."""
    return config["report"].get("mir_scores") or []
