# Helpers of the report's rules (rules/report.smk, rules/errata.smk): what a cold-item report
# calls its floor, and the warm/cold pairs the gains table sets side by side. Included after
# rules/common.smk (it uses its config helpers); kept apart so common.smk stays the config core.


def cold_sibling(dataset):
    """The `cold_items` dataset on the same data as a `warm` one (`same_data_as`), or None: the
    pair whose runs the gains table sets side by side (docs/report.md, "Gains")."""
    if split_protocol(dataset) != "warm":
        return None
    siblings = [d for d in DATASETS if d != dataset and split_protocol(d) == "cold_items" and data_source(d) == data_source(dataset)]
    return siblings[0] if siblings else None


def gains_inputs(wildcards):
    """Test metrics of every run of a warm dataset and of its cold sibling (rule gains)."""
    cold = cold_sibling(wildcards.dataset)
    if cold is None:
        _config_error(
            f"results/{wildcards.dataset}/report/gains.csv needs a `cold_items` dataset with "
            f"`same_data_as: {wildcards.dataset}` (configs/cold_start.yaml shows one); {wildcards.dataset} has none"
        )
    return {
        part: [f for f in run_metrics(d) if f.endswith("metrics_test.parquet")]
        for part, d in (("warm", wildcards.dataset), ("cold", cold))
    }


def report_settings_params():
    """config["report"] as rules report and errata_report get it: without the gains' own
    `bootstrap_resamples`, so changing it re-runs rule gains only."""
    return {key: value for key, value in config["report"].items() if key != "bootstrap_resamples"}


def split_protocol_params(dataset):
    """What the report says about the split's protocol (the cold-item settings for cold_items)."""
    spec = dataset_spec(dataset)["split"]
    if spec["protocol"] != "cold_items":
        return {"protocol": "warm"}
    keys = ("protocol", "cold_item_share", "include_new_tracks", "cold_candidates")
    floors = [m for m in MODELS if model_runs_on(m, dataset) and model_is_cold_floor(m)]
    return {**{key: spec[key] for key in keys}, "floor_models": floors}


def model_is_cold_floor(model):
    """A model instance that cannot score a track nobody played in train (declaration
    `scores_unseen_tracks: false`, e.g. pop and ials, or `items: id`): the floor of a
    cold-item report (docs/report.md)."""
    if not model_declaration(model).get("scores_unseen_tracks", False):
        return True
    return model_reads_embeddings(model) and model_spec(model).get("items") == "id"
