"""Helpers of the whole-workflow tests (incremental plans, kill/resume, SLURM): the tiny
config they share, what a dry run plans, and result trees compared by content."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import polars as pl
import torch
import yaml

from tests.conftest import ROOT, run_workflow, snakemake_cmd, tiny_config

#: the shared tiny experiment: two CPU backends (`mfcc` in small resumable chunks), a tiny
#: random MERT saved locally (a network backend: weights fetched on the submitting host,
#: extracted by the GPU rule), pop and knn on every backend, and one neural run (shallow on
#: oracle) long enough to be killed between checkpoints. About 25 jobs.
SHALLOW = {
    "backends": ["oracle"],
    "random_baseline": False,
    "epochs": 8,
    "patience": 8,
    "lr_patience": 8,
    "batch_size": 256,
    "n_negatives": 3,
}


def save_tiny_mert(folder: Path) -> Path:
    """A random MERT of a few thousand weights in the published layout (tests/unit helpers)."""
    from tests.unit.big_backend_helpers import save_mert

    return save_mert(folder)


def workflow_config(mert_weights: Path, **overrides: Any) -> dict[str, Any]:
    return tiny_config(
        backends={
            "oracle": {},
            "mfcc": {"chunk_size": 10},
            "mert": {"weights": str(mert_weights), "local_files_only": True},
        },
        models={"pop": {}, "knn": {}, "shallow": dict(SHALLOW)},
        **overrides,
    )


#: cores of the local runs; the SLURM test gives its jobs the same threads, so that both
#: compute the same numbers
CORES = 2


def copy_workdir(src: Path, dst: Path) -> Path:
    """A finished workflow directory copied with its mtimes and Snakemake's metadata, so that
    Snakemake sees the copy exactly as the original."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return dst


# --- what a dry run plans ---


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    wildcards: dict[str, str] = field(hash=False)
    threads: int = 1
    resources: dict[str, str] = field(default_factory=dict, hash=False)
    reason: str = ""
    local: bool = False  # "localrule" in a real run's listing (a dry run never says so)

    def key(self) -> str:
        """rule[w1=v1,...], e.g. train[dataset=tiny,model=shallow,backend=oracle,seed=0]."""
        return f"{self.rule}[{','.join(f'{k}={v}' for k, v in self.wildcards.items())}]"


_JOB_HEAD = re.compile(r"^\s*(local)?rule (\w+):\s*$")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def parse_plan(output: str) -> list[PlannedJob]:
    """The jobs a dry run (`-n`) lists, group members included, without the `all` target."""
    jobs: list[PlannedJob] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None and current["rule"] != "all":
            jobs.append(PlannedJob(**current))

    for line in output.splitlines():
        head = _JOB_HEAD.match(line)
        if head:
            close()
            current = {"rule": head[2], "wildcards": {}, "threads": 1, "resources": {}, "reason": "", "local": bool(head[1])}
            continue
        if current is None:
            continue
        match = _FIELD.match(line)
        if not match:
            if not line.strip():
                close()
                current = None
            continue
        name, value = match[1], match[2].strip()
        if name == "wildcards":
            current["wildcards"] = _pairs(value)
        elif name == "threads":
            current["threads"] = int(value)
        elif name == "resources":
            current["resources"] = _pairs(value)
        elif name == "reason":
            current["reason"] = value
    close()
    return jobs


def plan(workdir: Path, config: dict[str, Any] | None, *args: str) -> list[PlannedJob]:
    """What `snakemake -n` would run in `workdir` with `config` (written to its config.yaml)."""
    proc = run_workflow(workdir, config, "-n", "--cores", str(CORES), *args)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return []
    return parse_plan(out)


def plan_keys(jobs: list[PlannedJob]) -> set[str]:
    keys = [job.key() for job in jobs]
    assert len(keys) == len(set(keys)), f"a job is planned twice: {sorted(keys)}"
    return set(keys)


def run_jobs(dataset: str, model: str, backend: str, seeds: tuple[int, ...] = (0,), rule: str = "train") -> set[str]:
    """Plan keys of one run's training and its evaluations (accuracy and beyond accuracy, two parts each)."""
    keys = set()
    for seed in seeds:
        keys.add(f"{rule}[dataset={dataset},model={model},backend={backend},seed={seed}]")
        for evaluation in ("evaluate", "evaluate_beyond"):
            keys |= {
                f"{evaluation}[dataset={dataset},model={model},backend={backend},seed={seed},part={p}]" for p in ("val", "test")
            }
    return keys


def extraction_jobs(dataset: str, backend: str, rule: str = "embed_shard", nshards: int = 1) -> set[str]:
    keys = {f"{rule}[dataset={dataset},backend={backend},shard={i},nshards={nshards}]" for i in range(nshards)}
    return keys | {f"embed[dataset={dataset},backend={backend}]"}


# --- result trees compared by content ---

#: run-time measurements, not results
VOLATILE_COLUMNS = {"seconds"}
VOLATILE_KEYS = re.compile(r"seconds$")
SKIPPED = re.compile(r"(^|/)benchmarks/|\.png$")


def result_files(workdir: Path) -> list[str]:
    """Every file the workflow wrote under results/ and resources/datasets/, relative."""
    out = []
    for top in ("results", "resources/datasets"):
        for path in sorted((workdir / top).rglob("*")):
            rel = path.relative_to(workdir).as_posix()
            if path.is_file() and "/.resume/" not in rel:
                out.append(rel)
    return out


def _h5_items(path: Path) -> dict[str, Any]:
    items: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        items.update({f"@{k}": np.asarray(v).tolist() for k, v in f.attrs.items()})
        f.visititems(lambda name, obj: items.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return items


def _same_values(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return a == b


def _drop_volatile(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop([c for c in frame.columns if c in VOLATILE_COLUMNS])


def file_difference(a: Path, b: Path, ignore: frozenset[str] = frozenset()) -> str | None:
    """Why two output files differ in content (None if they agree). Formats whose bytes carry
    metadata (Parquet, HDF5, torch) are compared by their values; timings and the JSON keys
    in `ignore` are left out."""
    suffix = "".join(a.suffixes[-1:])
    if suffix == ".parquet":
        fa, fb = pl.read_parquet(a), pl.read_parquet(b)
        return None if fa.equals(fb) and fa.schema == fb.schema else f"tables differ:\n{fa}\n{fb}"
    if suffix == ".csv":
        fa, fb = (_drop_volatile(pl.read_csv(p, infer_schema_length=None)) for p in (a, b))
        return None if fa.equals(fb) else f"tables differ:\n{fa}\n{fb}"
    if suffix == ".h5":
        ia, ib = _h5_items(a), _h5_items(b)
        if ia.keys() != ib.keys():
            return f"HDF5 items differ: {sorted(ia.keys() ^ ib.keys())}"
        bad = [k for k in ia if not _same_values(ia[k], ib[k])]
        return f"HDF5 items differ: {bad}" if bad else None
    if suffix == ".json":
        ja, jb = (
            {k: v for k, v in json.loads(p.read_text()).items() if not VOLATILE_KEYS.search(k) and k not in ignore}
            for p in (a, b)
        )
        return None if ja == jb else f"{ja}\n!=\n{jb}"
    if suffix == ".pt":
        pa, pb = (torch.load(p, weights_only=True) for p in (a, b))
        if pa.keys() != pb.keys():
            return "torch payload keys differ"
        for key in pa:
            va, vb = pa[key], pb[key]
            if isinstance(va, dict):
                if va.keys() != vb.keys() or not all(torch.equal(va[k], vb[k]) for k in va):
                    return f"tensors of {key!r} differ"
            elif va != vb:
                return f"{key!r} differs"
        return None
    return None if a.read_bytes() == b.read_bytes() else "bytes differ"


def tree_differences(a: Path, b: Path) -> list[str]:
    """Outputs of two workflow directories that are missing in one or differ in content."""
    fa = {f for f in result_files(a) if not SKIPPED.search(f)}
    fb = {f for f in result_files(b) if not SKIPPED.search(f)}
    problems = [f"only in {a}: {f}" for f in sorted(fa - fb)] + [f"only in {b}: {f}" for f in sorted(fb - fa)]
    for rel in sorted(fa & fb):
        why = file_difference(a / rel, b / rel)
        if why:
            problems.append(f"{rel}: {why}")
    return problems


# --- SLURM ---


def slurm_unavailable() -> str | None:
    """Why no local SLURM can take jobs (None if one can)."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM client tools (sinfo, sbatch) are not installed; .ci/start-slurm installs and starts a local cluster"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s; start a local cluster with .ci/start-slurm (as root)"
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s.rstrip("*~#").startswith(("idle", "mix", "alloc")) for s in states):
        return (
            f"no SLURM node is up (sinfo exit {proc.returncode}, states {states or 'none'}: {proc.stderr.strip()[:200]}); "
            "start a local cluster with .ci/start-slurm (as root)"
        )
    return None


def node_limits() -> tuple[int, int]:
    """CPUs and memory (MB) of the smallest node that is up."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%c %m"], capture_output=True, text=True, check=True).stdout
    sizes = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    return min(c for c, _ in sizes), min(m for _, m in sizes)


def fit_profile(profile: Path, dest: Path, cpus: int, mem_mb: int) -> Path:
    """profiles/slurm scaled down to a test node: every thread count and the `cores` cap
    limited to `cpus` (training and extraction to half of it, as a local run gives them), every memory request to `mem_mb`; everything else (GPU requests,
    runtimes, retries, groups) exactly as the profile says."""
    settings = yaml.safe_load((profile / "config.yaml").read_text())
    settings["cores"] = min(int(settings.get("cores", cpus)), cpus)
    settings["set-threads"] = {rule: min(int(n), cpus) for rule, n in settings.get("set-threads", {}).items()}
    # the training and extraction rules take half the cores locally (rules/train.smk,
    # rules/embed.smk): the same threads here, so that both runs compute the same bits
    for rule in ("train", "train_baseline", "embed_shard", "embed_shard_gpu"):
        if rule in settings["set-threads"]:
            settings["set-threads"][rule] = min(settings["set-threads"][rule], max(1, cpus // 2))

    def cap(resources: dict[str, Any]) -> dict[str, Any]:
        out = dict(resources)
        if "mem_mb" in out:
            out["mem_mb"] = f"min({out['mem_mb']}, {mem_mb})"
        return out

    settings["default-resources"] = cap(settings.get("default-resources", {}))
    settings["set-resources"] = {rule: cap(res) for rule, res in settings.get("set-resources", {}).items()}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return dest


def repo_profile(name: str) -> Path:
    return ROOT / "profiles" / name


# --- killing jobs mid-way ---


def start_workflow(workdir: Path, *args: str) -> subprocess.Popen[str]:
    """Snakemake started in the background in its own session (so that the whole run can be
    killed like a crashed node), its output going to workdir/snakemake.out."""
    out = (workdir / "snakemake.out").open("w")
    return subprocess.Popen(
        snakemake_cmd(workdir, *args), cwd=workdir, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def output_of(workdir: Path) -> str:
    return (workdir / "snakemake.out").read_text()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_job_when(proc: subprocess.Popen[str], workdir: Path, script: str, ready: Any, timeout: float = 300) -> None:
    """SIGKILL the job process running `script` (a rule's scripts/*.py) and everything it
    started, as soon as `ready()` is true: an out-of-memory kill or a node failure of that
    one job, which Snakemake sees fail. Fails if the job ends before it could be killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [p for p in descendants(proc.pid) if script in _cmdline(p) and "snakemake" not in _cmdline(p).split()[:3]]
        if ready():
            assert jobs, f"{script} finished before it could be killed; make the job longer"
            victims = jobs + [d for p in jobs for d in descendants(p)]
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended before {script} was killed:\n{output_of(workdir)[-4000:]}")
        time.sleep(0.01)
    raise AssertionError(f"{script}: the moment to kill it never came within {timeout} s")


def kill_workflow_when(proc: subprocess.Popen[str], ready: Any, timeout: float = 300) -> None:
    """SIGKILL Snakemake and all its jobs (its whole session) once `ready()`: a crashed node."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "snakemake ended before it could be killed"
        assert time.monotonic() < deadline, f"the moment to kill snakemake never came within {timeout} s"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def wait_for(proc: subprocess.Popen[str], workdir: Path, timeout: float = 600) -> str:
    """Snakemake's output once it has finished successfully."""
    rc = proc.wait(timeout=timeout)
    out = output_of(workdir)
    assert rc == 0, f"snakemake failed ({rc}):\n{out[-8000:]}"
    return out
