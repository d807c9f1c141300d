# Helpers and input functions shared by every rule file.
#
# Kept free of audiorec imports on purpose: the Snakefile is evaluated by the
# interpreter that runs snakemake, which (with --use-conda) need not have the library.
# Per-job params are built from that job's own slice of the config only, so that
# adding or changing one backend/model re-runs only its jobs and the report.

import datetime
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


# --- config: fill implied names, validate with schema defaults, check cross-references ---


def _fill_types(section):
    """An instance whose `type` is omitted is of the type named like the instance."""
    for name, spec in (config.get(section) or {}).items():
        if spec is None:
            spec = config[section][name] = {}
        spec.setdefault("type", name)


def _split_dates_as_text():
    """YAML reads an unquoted 2020-02-20 as a date; the schema and the split job take text."""
    for spec in (config.get("datasets") or {}).values():
        settings = spec.get("split") if isinstance(spec, dict) else None
        for key, value in (settings if isinstance(settings, dict) else {}).items():
            if isinstance(value, datetime.datetime):
                settings[key] = value.isoformat(sep=" ")
            elif isinstance(value, datetime.date):
                settings[key] = value.isoformat()


def _sorted_keys(value):
    """Dicts with their keys sorted, recursively (lists keep their order). Snakemake compares a
    job's params by repr(), which follows key order: without this, reordering keys in
    config.yaml, or spelling out a default, would re-run jobs whose settings did not change."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _schema_problems():
    """What the schema finds wrong with the config, one `key.path: message` per problem,
    the real cause first. (A value failing inside a type-specific block, e.g. `epochs: 0`,
    also makes every key of that block "unevaluated"; that echo is left out.)"""
    import jsonschema
    import yaml

    schema = yaml.safe_load((Path(workflow.basedir) / "schemas" / "config.schema.yaml").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(config))
    specific = [e for e in errors if e.validator != "unevaluatedProperties"]
    echoes = [
        e
        for e in errors
        if e.validator == "unevaluatedProperties"
        and any(list(s.absolute_path)[: len(e.absolute_path)] == list(e.absolute_path) for s in specific)
    ]
    kept = sorted((e for e in errors if e not in echoes), key=lambda e: -len(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in kept]


def _fill_same_data():
    """A dataset with `same_data_as` reuses another one's data (docs/beyond.md): it takes that
    dataset's format and must not name data of its own."""
    datasets = config.get("datasets") or {}
    for name, spec in datasets.items():
        if not isinstance(spec, dict) or spec.get("same_data_as") is None:
            continue
        source = spec["same_data_as"]
        target = datasets.get(source)
        where = f"config error: datasets.{name}.same_data_as"
        if source == name or not isinstance(target, dict):
            known = ", ".join(d for d in datasets if d != name) or "none"
            raise WorkflowError(f"{where} is {source!r}, which is not another configured dataset (configured: {known}).")
        if target.get("same_data_as") is not None:
            raise WorkflowError(
                f"{where}: {source!r} itself has same_data_as; point it at {target['same_data_as']!r} directly."
            )
        clash = [key for key in ("path", "synthetic") if key in spec]
        if clash:
            raise WorkflowError(
                f"{where}: a dataset that reuses {source!r}'s data cannot set {', '.join(clash)}; "
                f"set it on datasets.{source} instead."
            )
        if spec.get("format", target.get("format")) != target.get("format"):
            raise WorkflowError(f"{where}: its format {spec['format']!r} differs from {source!r}'s; remove it.")
        spec["format"] = target.get("format")


_fill_types("backends")
_fill_types("models")
_split_dates_as_text()
_fill_same_data()
try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError:
    _problems = _schema_problems()
    if not _problems:
        raise
    raise WorkflowError(
        "config error: the config does not match schemas/config.schema.yaml (every setting, its type and "
        "default are described there):\n  " + "\n  ".join(_problems)
    ) from None
# Each instance's settings in canonical order; the order of the instances themselves (which
# the report's tables follow) is kept.
for _section in ("datasets", "backends", "models"):
    config[_section] = {name: _sorted_keys(spec) for name, spec in config[_section].items()}
for _section in ("evaluation", "report"):
    config[_section] = _sorted_keys(config[_section])

# Reserved backend names of run directories: `none` (models that use no item vectors)
# and `random` (item vectors randomly initialised and learned: the collaborative baseline).
RESERVED_BACKENDS = ("none", "random")
DATASETS = list(config["datasets"])
BACKENDS = list(config["backends"])
MODELS = list(config["models"])
SEEDS = [int(s) for s in config["seeds"]]


def _config_error(msg):
    raise WorkflowError(f"config error: {msg}")


for _model, _spec in config["models"].items():
    for _b in _spec.get("backends") or []:
        if _b not in BACKENDS:
            _config_error(
                f"models.{_model}.backends lists '{_b}', which is not a configured backend "
                f"(configured: {', '.join(BACKENDS) or 'none'}). Add it under `backends:` or remove it."
            )


# --- datasets ---


def dataset_spec(dataset):
    return config["datasets"][dataset]


def dataset_dir(dataset):
    """Where the raw dataset lives: `path` if set, else resources/datasets/{name}
    (those of the `same_data_as` dataset for one that reuses another's data)."""
    dataset = data_source(dataset)
    return dataset_spec(dataset).get("path") or f"resources/datasets/{dataset}"


def synthetic_datasets():
    """Datasets the workflow generates (not those that reuse another's data)."""
    return [d for d in DATASETS if dataset_spec(d)["format"] == "synthetic" and data_source(d) == d]


def listening_log(dataset):
    """The dataset's listening log: .tsv, or .tsv.bz2 where only that exists."""
    base = Path(dataset_dir(dataset)) / "userid_trackid_timestamp.tsv"
    if dataset_spec(dataset)["format"] == "synthetic":
        return str(base)
    for candidate in (base, base.with_name(f"{base.name}.bz2")):
        if candidate.exists():
            return str(candidate)
    _config_error(
        f"dataset '{dataset}': no listening log at {base} or {base}.bz2. "
        f"Put Music4All-Onion's userid_trackid_timestamp.tsv[.bz2] there, or set datasets.{dataset}.path."
    )


def audio_dir(dataset):
    path = Path(dataset_dir(dataset)) / "audios"
    if dataset_spec(dataset)["format"] != "synthetic" and not path.is_dir():
        _config_error(
            f"dataset '{dataset}': no audio folder at {path}. "
            f"Put the clips there as audios/{{track_id}}.mp3, or set datasets.{dataset}.path."
        )
    return str(path)


# --- backends and models ---


def backend_spec(backend):
    return config["backends"][backend]


def model_spec(model):
    return config["models"][model]


def model_type(model):
    return model_spec(model)["type"]


def model_backends(model):
    """Backend directories a model runs with: `none`, or its backends (+ `random`)."""
    spec = model_spec(model)
    if model_type(model) == "pop":
        return ["none"]
    backends = list(spec.get("backends") or BACKENDS)
    # schema default: true for shallow/bert4rec (the paper's collaborative baseline), false for knn
    if spec.get("random_baseline", model_type(model) != "knn"):
        backends.append("random")
    return backends


def models_of_types(*types):
    """Configured model instances of these types (the train rules' {model} constraints)."""
    return [m for m in MODELS if model_type(m) in types]


# Keys that choose which runs exist rather than how a run trains: left out of a training
# job's params, so adding a backend to a model's list does not re-run its other backends.
RUN_SELECTION_KEYS = ("backends", "random_baseline")


def train_params(model):
    """A training job's params: its model's config slice (schema defaults filled in)."""
    return {k: v for k, v in model_spec(model).items() if k not in RUN_SELECTION_KEYS}


def embeddings_for(wildcards):
    """The embedding file a run reads; none for `none`/`random`."""
    if wildcards.backend in RESERVED_BACKENDS:
        return []
    return f"results/{data_source(wildcards.dataset)}/embeddings/{wildcards.backend}.h5"


# --- embeddings (extraction engine; scripts/embed_*.py, src/audiorec/extraction/) ---

WEIGHTS_DIR = "resources/weights"
# Backend types whose `has_weights` is True: they get a `fetch_weights` job. This file cannot
# import audiorec, so the names are kept here; tests/unit/test_extraction_rules.py keeps
# them in step with the classes.
WEIGHTED_BACKEND_TYPES = ("musicnn", "mert", "music2vec", "musicfm", "encodecmae", "jukebox")
# Backend settings that never change the vectors: left out of params (changing them re-runs
# nothing) and read from the config by the scripts.
RUNTIME_BACKEND_KEYS = ("num_workers", "max_fail_share")

# Backend types whose weights and extraction need their own conda env (envs/{type}.yaml:
# Jukebox's OpenAI code); every other type runs in envs/extract.yaml.
OWN_ENV_BACKEND_TYPES = ("jukebox",)


def backend_env(wildcards):
    kind = backend_spec(wildcards.backend)["type"]
    return f"../envs/{kind}.yaml" if kind in OWN_ENV_BACKEND_TYPES else "../envs/extract.yaml"


def backend_params(backend, drop=()):
    """A backend's settings as job params, minus the runtime-only ones and `drop`."""
    return {
        k: v
        for k, v in backend_spec(backend).items()
        if k not in RUNTIME_BACKEND_KEYS and k not in drop
    }


# --- GPU routing (profiles/slurm gives rules embed_shard_gpu and train a GPU) ---

# Backend types that run a pretrained network on the audio, which a GPU speeds up; the others
# (oracle, mfcc) compute on the CPU and go to rule embed_shard, which asks for no GPU.
# tests/unit/test_gpu_routing.py keeps this in step with the backend classes.
GPU_BACKEND_TYPES = ("musicnn", "mert", "music2vec", "musicfm", "encodecmae", "jukebox")


def backend_uses_gpu(backend):
    """Whether a backend's extraction jobs should hold a GPU: a network type not pinned to the CPU."""
    spec = backend_spec(backend)
    return spec["type"] in GPU_BACKEND_TYPES and spec.get("device", "auto") != "cpu"


def gpu_backends():
    return [b for b in BACKENDS if backend_uses_gpu(b)]


def cpu_backends():
    return [b for b in BACKENDS if not backend_uses_gpu(b)]


def weights_manifest(wildcards):
    """The weights manifest an extraction job waits for (none for weightless types)."""
    if backend_spec(wildcards.backend)["type"] in WEIGHTED_BACKEND_TYPES:
        return f"{WEIGHTS_DIR}/manifests/{wildcards.backend}.json"
    return []


def weights_root_of(manifests):
    """The weights folder, inferred from a manifest path ({root}/manifests/{backend}.json)."""
    paths = [manifests] if isinstance(manifests, str) else list(manifests)
    return str(Path(paths[0]).parent.parent) if paths else None


def embed_shards(wildcards):
    n = backend_spec(wildcards.backend)["shards"]
    return [
        f"results/{wildcards.dataset}/embeddings/{wildcards.backend}/shard{i}-of-{n}.h5"
        for i in range(n)
    ]


def backend_metadata_files(wildcards):
    """Dataset files a backend reads instead of (or beside) audio."""
    spec = backend_spec(wildcards.backend)
    root = Path(dataset_dir(wildcards.dataset))
    if spec["type"] == "oracle":
        return [str(root / "id_genres.tsv")]
    if spec["type"] == "mfcc" and spec.get("source") == "dataset":
        stats = root / "id_mfcc_stats.tsv"
        return [str(stats if stats.exists() else stats.with_name(f"{stats.name}.bz2"))]
    return []


def run_dirs(dataset):
    return [
        f"results/{dataset}/runs/{model}/{backend}/seed{seed}"
        for model in MODELS
        for backend in model_backends(model)
        for seed in SEEDS
    ]


def run_metrics(dataset):
    return [f"{run}/metrics_{part}.parquet" for run in run_dirs(dataset) for part in ("val", "test")]


def all_targets():
    targets = []
    for dataset in DATASETS:
        targets += [
            f"results/{dataset}/split/stats.csv",
            f"results/{dataset}/report/metrics.csv",
        ]
        targets += layer_sweep_targets(dataset)
        targets += probe_targets(dataset)
    return targets


# --- beyond the paper (docs/beyond.md): shared data, cold-item splits, layer sweep ---


def data_source(dataset):
    """The dataset whose raw data, track index and embeddings `dataset` uses: itself, or the
    one its `same_data_as` names (so a second protocol on the same data extracts nothing)."""
    return dataset_spec(dataset).get("same_data_as") or dataset


def split_protocol(dataset):
    return dataset_spec(dataset)["split"]["protocol"]


def split_protocol_params(dataset):
    """What the report says about the split's protocol (the cold-item settings for cold_items)."""
    spec = dataset_spec(dataset)["split"]
    if spec["protocol"] != "cold_items":
        return {"protocol": "warm"}
    keys = ("protocol", "cold_item_share", "include_new_tracks", "cold_candidates")
    return {key: spec[key] for key in keys}


def split_catalogue(wildcards):
    """The split's catalogue (catalogue.parquet) for runs of a cold-item split: it lists the held-out
    tracks the models must rank. Warm splits rank their train tracks and need no extra input."""
    if split_protocol(wildcards.dataset) == "cold_items":
        return f"results/{wildcards.dataset}/split/catalogue.parquet"
    return []


# Backend types whose cache holds several layers (`/layers`); jukebox when `layers` lists
# several. tests/unit/test_layer_sweep.py keeps this in step with the backend classes.
LAYERED_BACKEND_TYPES = ("musicnn", "mert", "music2vec", "musicfm", "encodecmae")
SWEEP_MODEL_TYPES = ("knn", "shallow", "bert4rec")


def backend_has_layers(backend):
    spec = backend_spec(backend)
    if spec["type"] == "jukebox":
        return len(spec.get("layers") or []) > 1
    return spec["type"] in LAYERED_BACKEND_TYPES


def _check_layer_sweep():
    sweep = config["layer_sweep"]
    for model in sweep["models"]:
        if model not in MODELS:
            _config_error(
                f"layer_sweep.models lists '{model}', which is not a configured model "
                f"(configured: {', '.join(MODELS)})."
            )
        if model_type(model) not in SWEEP_MODEL_TYPES:
            _config_error(
                f"layer_sweep.models lists '{model}' of type {model_type(model)}; only models of type "
                f"{', '.join(SWEEP_MODEL_TYPES)} use item vectors."
            )
    for backend in sweep["backends"] or []:
        if backend not in BACKENDS:
            _config_error(
                f"layer_sweep.backends lists '{backend}', which is not a configured backend "
                f"(configured: {', '.join(BACKENDS) or 'none'})."
            )


_check_layer_sweep()


def sweep_backends(model):
    """Backends a swept model is evaluated on layer by layer."""
    chosen = config["layer_sweep"]["backends"]
    own = [b for b in model_backends(model) if b in BACKENDS]
    if chosen is not None:
        return [b for b in own if b in chosen]
    return [b for b in own if backend_has_layers(b)]


def sweep_seeds(model):
    """KNN has no randomness: one seed says it all. Trained models sweep every seed."""
    return SEEDS[:1] if model_type(model) == "knn" else SEEDS


def layer_sweep_files(dataset):
    return [
        f"results/{dataset}/layer_sweep/{model}/{backend}/seed{seed}/metrics.parquet"
        for model in config["layer_sweep"]["models"]
        for backend in sweep_backends(model)
        for seed in sweep_seeds(model)
    ]


def layer_sweep_targets(dataset):
    if not layer_sweep_files(dataset):
        return []
    return [f"results/{dataset}/report/layer_sweep.md"]


# --- MIR probes (docs/probes.md) ---

PROBE_RANDOM = "random"
# the probes: keys that say which jobs exist, not how a probe fits
PROBE_SELECTION_KEYS = ("enable", "backends")


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
    """The Table-4-style MIR score CSV: `report.mir_scores`, else the one shipped with the package."""
    configured = config["report"].get("mir_scores")
    if configured:
        return configured
    return str(Path(workflow.basedir) / "src" / "audiorec" / "report" / "reference" / "table4_mir.csv")


def _alternatives(names, fallback="__none__"):
    """A wildcard regex matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) if names else fallback


wildcard_constraints:
    dataset=_alternatives(DATASETS),
    backend=_alternatives(BACKENDS + list(RESERVED_BACKENDS)),
    model=_alternatives(MODELS),
    seed=r"\d+",
    part="train|val|test",
