# Helpers and config checks of hyperparameter tuning (docs/models.md "Tuning"; configs/tuning.yaml):
# rules/common.smk's, kept apart because they concern one optional section. Included right after
# rules/common.smk (whose helpers they use); the checks run when this file is read.


def _load_tuning_space_module():
    """audiorec.tuning.space, loaded by file path (standard library only), so the Snakefile checks
    search spaces exactly as the tuning job reads them without importing audiorec."""
    path = Path(workflow.basedir) / "src" / "audiorec" / "tuning" / "space.py"
    spec = importlib.util.spec_from_file_location("_audiorec_tuning_space", path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up there
    spec.loader.exec_module(loaded)
    return loaded


_tuning_space = _load_tuning_space_module()
TUNING = config["tuning"]
TUNED_MODELS = list(TUNING["models"])
TUNING_DIR = "results/{dataset}/tuning/{model}/{backend}"


def tuning_file(dataset, model, backend, name):
    """A study's file: best.json, trials.csv (outputs), journal.log (its trials, kept)."""
    return f"results/{dataset}/tuning/{model}/{backend}/{name}"


def _checked_space(model):
    """tuning.models.<model>, checked against the settings of the model's type (a config error
    naming the key otherwise), in canonical form ([low, high, flags], `int` spelled out)."""
    decl = model_declaration(model)
    settings = _tuning_space.model_settings(decl.get("settings") or {}, list(decl.get("uses") or []), CONFIG_SCHEMA)
    try:
        params = _tuning_space.parse_space(f"tuning.models.{model}", TUNING["models"][model], settings)
    except _tuning_space.SpaceError as err:
        _config_error(f"{err} (the settings of type {model_type(model)}: src/audiorec/models/{model_type(model)}.yaml and schemas/config.schema.yaml)")
    return _tuning_space.space_as_config(params)


def _check_tuning():
    for model in TUNED_MODELS:
        if model not in MODELS:
            _config_error(
                f"tuning.models lists '{model}', which is not a configured model instance "
                f"(configured: {', '.join(MODELS)}). Add it under `models:` or remove it."
            )
    return {model: _checked_space(model) for model in TUNED_MODELS}


TUNING_SPACES = _check_tuning()


def tuning_params(model):
    """A tuning job's params: its model's training params, its space, and the study settings
    (only this model's slice of `tuning:`, so tuning another model re-runs nothing here)."""
    return {
        "model": train_params(model),
        "space": TUNING_SPACES[model],
        "budget": TUNING["budget"],
        "metric": TUNING["metric"],
        "seed": TUNING["seed"],
    }


def tuned_input(wildcards):
    """Rule train's input `tuned` of a tuned model (its study's best.json); none otherwise, so an
    untuned model's jobs are exactly as without tuning."""
    if wildcards.model not in TUNING_SPACES:
        return {}
    return {"tuned": tuning_file(wildcards.dataset, wildcards.model, wildcards.backend, "best.json")}


def tuning_studies(dataset):
    """(model, backend) of every study on a dataset: each backend of each tuned model."""
    return [(m, b) for m in TUNED_MODELS if model_runs_on(m, dataset) for b in model_backends(m)]


def tuning_files(dataset, name):
    return [tuning_file(dataset, m, b, name) for m, b in tuning_studies(dataset)]


def tuning_pairs():
    """Tuned model -> a configured, untuned instance of the same type with the same settings (the
    report's paired test of tuned vs default on test, where one exists)."""
    pairs = {}
    for model in TUNED_MODELS:
        same = [m for m in MODELS if m not in TUNING_SPACES and train_params(m) == train_params(model)]
        if same:
            pairs[model] = same[0]
    return pairs


def tuning_report_metrics(wildcards):
    """Per-user metrics of the tuned runs and of their untuned twins (tuning_pairs)."""
    dataset = wildcards.dataset
    runs = tuning_studies(dataset)
    for tuned, default in tuning_pairs().items():
        if model_runs_on(default, dataset):
            runs += [(default, b) for m, b in tuning_studies(dataset) if m == tuned and b in model_backends(default)]
    return sorted(
        f"results/{dataset}/runs/{m}/{b}/seed{s}/metrics_{p}.parquet" for m, b in set(runs) for s in SEEDS for p in ("val", "test")
    )


def tuning_targets(dataset):
    return [f"results/{dataset}/report/tuning.md"] if tuning_studies(dataset) else []
