# Helpers and input functions shared by every rule file.
#
# Kept free of audiorec imports on purpose: the Snakefile is evaluated by the
# interpreter that runs snakemake, which (with --use-conda) need not have the library.
# Per-job params are built from that job's own slice of the config only, so that
# adding or changing one backend/model re-runs only its jobs and the report.

import copy
import datetime
import importlib.util
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError


# --- backend declarations (src/audiorec/backends/{type}.yaml) ---


def _load_declarations_module():
    """audiorec.backends.declarations, loaded by file path: it needs only PyYAML, so the
    Snakefile reads the same declarations as the library without importing audiorec."""
    path = Path(workflow.basedir) / "src" / "audiorec" / "backends" / "declarations.py"
    spec = importlib.util.spec_from_file_location("_audiorec_backend_declarations", path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up there
    spec.loader.exec_module(loaded)
    return loaded


_declarations = _load_declarations_module()
try:
    BACKEND_DECLARATIONS = _declarations.read_declarations(Path(workflow.basedir) / "src" / "audiorec" / "backends")
    CONFIG_SCHEMA_WITH_BACKENDS = _declarations.load_config_schema(Path(workflow.basedir))
except _declarations.DeclarationError as _err:
    raise WorkflowError(str(_err)) from None


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

    errors = list(jsonschema.Draft202012Validator(CONFIG_SCHEMA).iter_errors(config))
    specific = [e for e in errors if e.validator != "unevaluatedProperties"]
    echoes = [
        e
        for e in errors
        if e.validator == "unevaluatedProperties"
        and any(list(s.absolute_path)[: len(e.absolute_path)] == list(e.absolute_path) for s in specific)
    ]
    kept = sorted((e for e in errors if e not in echoes), key=lambda e: -len(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in kept]


# --- model types: one declaration each (src/audiorec/models/<type>.yaml, `model_dirs`) ---

MODEL_DECLARATION_KEYS = {"type", "label", "summary", "gpu", "inputs", "extra_inputs", "scores_unseen_tracks", "uses", "settings"}


def _model_declarations():
    """type -> declaration (a dict, plus `dir`: its folder), as audiorec.models.registry reads
    them: the package's, then those of the config's `model_dirs`."""
    import yaml

    folders = [Path(workflow.basedir) / "src" / "audiorec" / "models"]
    folders += [Path(d) for d in config.get("model_dirs") or []]
    found = {}
    for folder in folders:
        if not folder.is_dir():
            raise WorkflowError(f"config error: model_dirs lists {folder}, which is not a folder")
        for path in sorted(folder.glob("*.yaml")):
            decl = yaml.safe_load(path.read_text()) or {}
            if set(decl) - MODEL_DECLARATION_KEYS or decl.get("type") != path.stem:
                raise WorkflowError(
                    f"model declaration {path}: needs `type: {path.stem}` and takes only {sorted(MODEL_DECLARATION_KEYS)}"
                )
            if decl["type"] in found:
                raise WorkflowError(f"model type {decl['type']!r} is declared twice: in {found[decl['type']]['dir']} and {folder}")
            found[decl["type"]] = {**decl, "dir": str(folder)}
    return found


def _config_schema():
    """The schema with the backend declarations (above) and every declared model type's
    settings added to `$defs/model`."""
    schema = copy.deepcopy(CONFIG_SCHEMA_WITH_BACKENDS)
    model = schema["$defs"]["model"]
    model["properties"]["type"]["enum"] = list(MODEL_DECLARATIONS)
    for kind, decl in MODEL_DECLARATIONS.items():
        then = {"properties": decl.get("settings") or {}}
        shared = [{"$ref": f"#/$defs/model_{block}"} for block in decl.get("uses") or []]
        if shared:
            then["allOf"] = shared
        model.setdefault("allOf", []).append({"if": {"properties": {"type": {"const": kind}}, "required": ["type"]}, "then": then})
    return schema


def _validate_with_defaults(data, schema):
    """Validate and fill in the schema's defaults (snakemake.utils.validate does the same, but
    reads its schema from a file; this one is composed in memory)."""
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from check_properties(validator, properties, instance, subschema)

    try:
        validators.extend(base, {"properties": set_defaults})(schema).validate(data)
    except jsonschema.ValidationError as e:
        raise WorkflowError(f"config error: {e.message}") from None


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
MODEL_DECLARATIONS = _model_declarations()
CONFIG_SCHEMA = _config_schema()
try:
    _validate_with_defaults(config, CONFIG_SCHEMA)
except WorkflowError:
    _problems = _schema_problems()
    if not _problems:
        raise
    raise WorkflowError(
        "config error: the config does not match schemas/config.schema.yaml (every setting, its type and "
        "default are described there; a backend type's own settings in src/audiorec/backends/{type}.yaml, "
        "a model type's in src/audiorec/models/{type}.yaml):\n  "
        + "\n  ".join(_problems)
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
    for _d in _spec.get("datasets") or []:
        if _d not in DATASETS:
            _config_error(
                f"models.{_model}.datasets lists '{_d}', which is not a configured dataset "
                f"(configured: {', '.join(DATASETS)}). Add it under `datasets:` or remove it."
            )
    # an extra input that is another model instance's run (content2cf reads the `ials` run):
    # that instance must be configured, or the job would wait for a file no rule makes
    for _name, _pattern in (MODEL_DECLARATIONS[_spec["type"]].get("extra_inputs") or {}).items():
        _other = re.match(r"results/\{dataset\}/runs/([^/{}]+)/", _pattern)
        if _other and _other.group(1) not in config["models"]:
            _config_error(
                f"models.{_model} (type {_spec['type']}) reads the run of model instance '{_other.group(1)}' "
                f"(its declaration's extra_inputs.{_name}: {_pattern}), which is not configured. "
                f"Add `{_other.group(1)}: {{}}` under `models:`."
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


def model_declaration(model):
    return MODEL_DECLARATIONS[model_type(model)]


def model_reads_embeddings(model):
    return "embeddings" in (model_declaration(model).get("inputs") or [])


def model_backends(model):
    """Backend directories a model runs with: `none` (a type that reads no vectors), `random`
    alone (`items: id`), or its backends (+ `random` with random_baseline)."""
    spec = model_spec(model)
    if not model_reads_embeddings(model):
        return ["none"]
    if spec.get("items") == "id":
        return ["random"]
    backends = list(spec.get("backends") or BACKENDS)
    # schema default: true for the neural types (the paper's collaborative baseline), false for knn
    if spec.get("random_baseline", False):
        backends.append("random")
    return backends


def models_on_gpu(gpu=True):
    """Configured model instances whose type trains on a GPU (rule `train`) or not
    (`train_baseline`): the declaration's `gpu`."""
    return [m for m in MODELS if bool(model_declaration(m).get("gpu")) == gpu]


def model_way(model):
    """How a model uses content, for the report: its `items` mode (+ normalisation)."""
    spec = model_spec(model)
    if not model_reads_embeddings(model):
        return ""
    way = spec.get("items", "content")
    if spec.get("normalize", "none") != "none":
        way += f", {spec['normalize']}"
    if spec.get("layers", "configured") == "weighted" and way.split(",")[0] != "id":
        way += ", weighted layers"
    if "warm_items" in (model_declaration(model).get("settings") or {}):
        # content2cf, contrastive: what scores a warm track (its own iALS factor or its content's)
        way += f", warm items: {spec.get('warm_items', 'predicted')}"
    return way


def model_runs_on(model, dataset):
    """Whether a model runs on a dataset: its `datasets` list, default every dataset."""
    chosen = model_spec(model).get("datasets")
    return chosen is None or dataset in chosen


# Keys that choose which runs exist rather than how a run trains: left out of a training
# job's params, so adding a backend to a model's list does not re-run its other backends.
RUN_SELECTION_KEYS = ("backends", "random_baseline", "datasets")


def train_params(model):
    """A training job's params: its model's config slice (schema defaults filled in)."""
    return {k: v for k, v in model_spec(model).items() if k not in RUN_SELECTION_KEYS}


def model_extra_inputs(wildcards):
    """Other jobs' outputs a model type reads (its declaration's `extra_inputs`), by name."""
    patterns = model_declaration(wildcards.model).get("extra_inputs") or {}
    inputs = {}
    for name, pattern in patterns.items():
        if pattern.startswith("dataset_file:"):  # a metadata file of the dataset, if it has one
            inputs[name] = dataset_metadata(wildcards.dataset, pattern.split(":", 1)[1])
        else:
            inputs[name] = pattern.format(**dict(wildcards.items()))
    return inputs


def embeddings_for(wildcards):
    """The embedding file a run reads; none for `none`/`random`."""
    if wildcards.backend in RESERVED_BACKENDS:
        return []
    return f"results/{data_source(wildcards.dataset)}/embeddings/{wildcards.backend}.h5"


# --- embeddings (extraction engine; scripts/embed_*.py, src/audiorec/extraction/) ---

WEIGHTS_DIR = "resources/weights"
# Backend types that download weights (declaration `weights: true`): they get a `fetch_weights` job.
WEIGHTED_BACKEND_TYPES = tuple(t for t, d in BACKEND_DECLARATIONS.items() if d.weights)
# Backend settings that never change the vectors: left out of params (changing them re-runs
# nothing) and read from the config by the scripts.
RUNTIME_BACKEND_KEYS = ("num_workers", "max_fail_share")

# Backend types whose weights and extraction need their own conda env (declaration `env:`
# other than extract, e.g. Jukebox's OpenAI code); every other type runs in envs/extract.yaml.
OWN_ENV_BACKEND_TYPES = tuple(t for t, d in BACKEND_DECLARATIONS.items() if d.env != "extract")


def backend_env(wildcards):
    """envs/{env}.yaml of the backend's declaration (extract.yaml for most)."""
    return f"../envs/{BACKEND_DECLARATIONS[backend_spec(wildcards.backend)['type']].env}.yaml"


def backend_params(backend, drop=()):
    """A backend's settings as job params, minus the runtime-only ones and `drop`."""
    return {
        k: v
        for k, v in backend_spec(backend).items()
        if k not in RUNTIME_BACKEND_KEYS and k not in drop
    }


# --- GPU routing (profiles/slurm gives rules embed_shard_gpu and train a GPU) ---

# Backend types that run a pretrained network on the audio (declaration `network: true`), which
# a GPU speeds up; the others (oracle, mfcc) compute on the CPU and go to rule embed_shard,
# which asks for no GPU.
GPU_BACKEND_TYPES = tuple(t for t, d in BACKEND_DECLARATIONS.items() if d.network)


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
        if model_runs_on(model, dataset)
        for backend in model_backends(model)
        for seed in SEEDS
    ]


def run_metrics(dataset):
    return [f"{run}/metrics_{part}.parquet" for run in run_dirs(dataset) for part in ("val", "test")]


def run_infos(dataset):
    """Every run's run.json: the report's runs.csv (candidates dropped and why, per run)."""
    return [f"{run}/run.json" for run in run_dirs(dataset)]


def all_targets():
    targets = []
    for dataset in DATASETS:
        targets += [
            f"results/{dataset}/split/stats.csv",
            f"results/{dataset}/report/metrics.csv",
        ]
        if cold_sibling(dataset):
            targets.append(f"results/{dataset}/report/gains.csv")
        targets += layer_sweep_targets(dataset)
        targets += errata_targets(dataset)
        targets += probe_targets(dataset)
        targets += tuning_targets(dataset)  # rules/tuning_config.smk
    return targets


# --- beyond the paper (docs/beyond.md): shared data, cold-item splits, layer sweep ---


def data_source(dataset):
    """The dataset whose raw data, track index and embeddings `dataset` uses: itself, or the
    one its `same_data_as` names (so a second protocol on the same data extracts nothing)."""
    return dataset_spec(dataset).get("same_data_as") or dataset


def split_protocol(dataset):
    return dataset_spec(dataset)["split"]["protocol"]


def split_catalogue(wildcards):
    """The split's catalogue (catalogue.parquet) for runs of a cold-item split: it lists the held-out
    tracks the models must rank. Warm splits rank their train tracks and need no extra input."""
    if split_protocol(wildcards.dataset) == "cold_items":
        return f"results/{wildcards.dataset}/split/catalogue.parquet"
    return []


# Backend types whose cache always holds several layers (`/layers`; declaration `layered: true`);
# a type whose `layered` names a list setting (jukebox: `layers`) has them when it lists several.
LAYERED_BACKEND_TYPES = tuple(t for t, d in BACKEND_DECLARATIONS.items() if d.layered is True)
SWEEP_MODEL_TYPES = ("knn", "shallow", "bert4rec", "sasrec")


def backend_has_layers(backend):
    spec = backend_spec(backend)
    return BACKEND_DECLARATIONS[spec["type"]].has_layers(spec)


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


def _check_weighted_layers():
    """`layers: weighted` (docs/models.md, "Learned layer weighting"): a trained model, frozen
    content, and backends that cache several layers (their widths are checked by the run)."""
    for model in MODELS:
        spec = model_spec(model)
        if spec.get("layers", "configured") != "weighted" or not model_reads_embeddings(model):
            continue
        where = f"models.{model}.layers: weighted"
        if not model_declaration(model).get("gpu"):
            _config_error(
                f"{where}: a {model_type(model)} model learns nothing, so it cannot learn layer weights; "
                f"use it with shallow, bert4rec or sasrec, or pick one layer with the backend's `layer:`."
            )
        if spec.get("items", "content") not in ("content", "hybrid", "id"):
            _config_error(f"{where} keeps the layers frozen; it works with items: content or hybrid, not {spec['items']}.")
        for backend in model_backends(model):
            if backend in BACKENDS and not backend_has_layers(backend):
                _config_error(
                    f"{where}: backend '{backend}' ({backend_spec(backend)['type']}) caches one layer, nothing to "
                    f"weight. Set models.{model}.backends to layered backends only, or drop `layers: weighted`."
                )


_check_weighted_layers()


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
        if model_runs_on(model, dataset)
        for backend in sweep_backends(model)
        for seed in sweep_seeds(model)
    ]


def layer_sweep_targets(dataset):
    if not layer_sweep_files(dataset):
        return []
    return [f"results/{dataset}/report/layer_sweep.md"]


# --- beyond accuracy (docs/report.md "Beyond accuracy", docs/beyond.md "Artist-aware cold start") ---


def dataset_metadata(dataset, stem):
    """A dataset's Music4All-style metadata file ({stem}.tsv/.csv, optionally .bz2), or [] if
    it has none. The synthetic generator writes {stem}.tsv (a rule output, so it is named
    even before it exists)."""
    root = Path(dataset_dir(dataset))
    if dataset_spec(dataset)["format"] == "synthetic":
        return str(root / f"{stem}.tsv")
    for name in (f"{stem}.tsv", f"{stem}.tsv.bz2", f"{stem}.csv", f"{stem}.csv.bz2"):
        if (root / name).exists():
            return str(root / name)
    return []


def genre_labels(wildcards):
    """Genre labels for intra-list diversity (id_genres); none: no diversity metric."""
    return dataset_metadata(wildcards.dataset, "id_genres")


def artist_information(wildcards):
    """Music4All's id_information (track -> artist): artist_mean models and artist groups."""
    return dataset_metadata(wildcards.dataset, "id_information")


def run_beyond(dataset):
    """Per-user beyond-accuracy files (rule evaluate_beyond) of every run and part."""
    return [f"{run}/beyond_{part}.parquet" for run in run_dirs(dataset) for part in ("val", "test")]


def run_beyond_summaries(dataset):
    """Per-run beyond-accuracy files (coverage, Gini) of every run and part."""
    return [f"{run}/beyond_run_{part}.csv" for run in run_dirs(dataset) for part in ("val", "test")]


def run_artist_metrics(dataset):
    """Per artist group accuracy files: cold-item splits of datasets with artist information."""
    if split_protocol(dataset) != "cold_items" or not dataset_metadata(dataset, "id_information"):
        return []
    return [f"{run}/artist_metrics_{part}.parquet" for run in run_dirs(dataset) for part in ("val", "test")]


# --- MIR probes (docs/probes.md) ---

PROBE_RANDOM = "random"
# the probes: keys that say which jobs exist, not how a probe fits
PROBE_SELECTION_KEYS = ("enable", "backends")


def _alternatives(names, fallback="__none__"):
    """A wildcard regex matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) if names else fallback


wildcard_constraints:
    dataset=_alternatives(DATASETS),
    backend=_alternatives(BACKENDS + list(RESERVED_BACKENDS)),
    model=_alternatives(MODELS),
    seed=r"\d+",
    part="train|val|test",
