# Helpers and config checks of the errata pairs (docs/report.md "Errata"; configs/errata.yaml):
# rules/common.smk's, kept apart because they concern one optional section. Included right after
# rules/common.smk (whose helpers they use); the checks run when this file is read.


# The split setting that restores the published code's "known to the user" rule.
ERRATUM_SPLIT_SETTING = ("history", "train_window")


def _erratum_run_problem(side, ref):
    """Why `ref` (an errata pair's fixed/erratum run) is not a configured run, or None."""
    dataset, model, backend = ref["dataset"], ref["model"], ref["backend"]
    if dataset not in DATASETS:
        return f"{side}.dataset '{dataset}' is not a configured dataset (configured: {', '.join(DATASETS)})"
    if model not in MODELS:
        return f"{side}.model '{model}' is not a configured model (configured: {', '.join(MODELS)})"
    if not model_runs_on(model, dataset):
        return f"{side}.model '{model}' does not run on dataset {dataset} (its `datasets` list)"
    if backend not in model_backends(model):
        return f"{side}.backend '{backend}' is not one of model {model}'s backends ({', '.join(model_backends(model))})"
    return None


def _spec_changes(fixed, erratum, ignore=()):
    keys = (set(fixed) | set(erratum)) - set(ignore)
    return sorted(k for k in keys if fixed.get(k) != erratum.get(k))


def erratum_settings(pair):
    """The settings an errata pair's runs differ by, as `section.instance.key: value` lines; a
    config error if they differ by anything else, or if an erratum setting is on the fixed side."""
    fixed, erratum = pair["fixed"], pair["erratum"]
    where = f"errata '{pair['name']}'"
    changes, other = [], []
    if fixed["dataset"] != erratum["dataset"]:
        if data_source(fixed["dataset"]) != data_source(erratum["dataset"]):
            other.append(f"datasets {fixed['dataset']} and {erratum['dataset']} hold different data (set same_data_as)")
        split_f, split_e = dataset_spec(fixed["dataset"])["split"], dataset_spec(erratum["dataset"])["split"]
        for key in _spec_changes(split_f, split_e):
            if (key, split_e[key]) == ERRATUM_SPLIT_SETTING:
                changes.append(f"datasets.{erratum['dataset']}.split.{key}: {split_e[key]}")
            else:
                other.append(f"split.{key} ({split_f.get(key)!r} vs {split_e.get(key)!r})")
    for section, name, spec, ignore in (
        ("models", "model", model_spec, RUN_SELECTION_KEYS),
        ("backends", "backend", backend_spec, RUNTIME_BACKEND_KEYS),
    ):
        a, b = fixed[name], erratum[name]
        if a == b:
            continue
        if name == "backend" and (a in RESERVED_BACKENDS or b in RESERVED_BACKENDS):
            other.append(f"backend {a} vs {b}")
            continue
        for key in _spec_changes(spec(a), spec(b), ignore):
            if key.startswith("erratum_") and spec(b).get(key) is True and not spec(a).get(key):
                changes.append(f"{section}.{b}.{key}: true")
            else:
                other.append(f"{section} {a} vs {b}: {key} ({spec(a).get(key)!r} vs {spec(b).get(key)!r})")
    if other or not changes:
        _config_error(
            f"{where}: the fixed and erratum runs must differ only by erratum settings switched on on the "
            f"erratum side (an `erratum_*` key of a backend or model, or split.history: train_window); "
            + (f"they also differ by: {'; '.join(other)}." if other else "they differ by none.")
        )
    return changes


def _check_errata():
    names = set()
    for pair in config["errata"]:
        if pair["name"] in names:
            _config_error(f"errata: the name '{pair['name']}' is used twice; give each pair its own name.")
        names.add(pair["name"])
        for side in ("fixed", "erratum"):
            problem = _erratum_run_problem(side, pair[side])
            if problem:
                _config_error(f"errata '{pair['name']}': {problem}.")
        erratum_settings(pair)


_check_errata()


def errata_pairs(dataset):
    """The errata pairs reported with `dataset` (their fixed run's), each with its settings."""
    return [
        {**pair, "settings": erratum_settings(pair)}
        for pair in config["errata"]
        if pair["fixed"]["dataset"] == dataset
    ]


def errata_metrics(wildcards):
    """Per-user metrics of both runs of every errata pair reported with this dataset."""
    files = []
    for pair in errata_pairs(wildcards.dataset):
        for side in ("fixed", "erratum"):
            ref = pair[side]
            files += [
                f"results/{ref['dataset']}/runs/{ref['model']}/{ref['backend']}/seed{seed}/metrics_{part}.parquet"
                for seed in SEEDS
                for part in ("val", "test")
            ]
    return sorted(set(files))


def errata_targets(dataset):
    return [f"results/{dataset}/report/errata.md"] if errata_pairs(dataset) else []
