"""Fetch and cache the musicnn checkpoints from the `musicnn==0.1.0` wheel on PyPI.

Why the wheel: it is the only official, versioned, checksummed distribution of the trained
weights (the GitHub repository is the same files without a checksum), and PyPI is
reachable where Hugging Face and GitHub may not be. The wheel is only unzipped, never
installed: its dependency pins (numpy<1.17, tensorflow 1.x era) break modern environments.

Layout of the cache (`weights_dir`, default resources/weights/musicnn):

    {weights_dir}/{variant}/model.index
    {weights_dir}/{variant}/model.data-00000-of-00001
    {weights_dir}/{variant}/config.json          the training config shipped beside them
    {weights_dir}/{variant}/manifest.json        source URL, wheel sha256, sha256 of each file

The checkpoint is saved in the wheel under an empty file-name prefix (`MSD_musicnn/.index`);
it is renamed to `model.*` here, which the tensor bundle allows (shard file names are
derived from the prefix; the index does not record them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from .base import BackendError, MissingWeightsError

log = logging.getLogger(__name__)

WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_URL = (
    "https://files.pythonhosted.org/packages/1b/6f/38229e7d99c438e11114bbfa39c8c39185458c398011d0b6d7d7c7401617/"
    + WHEEL_NAME
)
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
#: environment variable naming a local copy (path) or mirror (URL) of the wheel
WHEEL_ENV = "AUDIOREC_MUSICNN_WHEEL"
DEFAULT_WEIGHTS_DIR = Path("resources/weights/musicnn")
CHECKPOINT_PREFIX = "model"
#: file in the wheel (under musicnn/{variant}/) -> file in the cache
CHECKPOINT_FILES = {
    ".index": f"{CHECKPOINT_PREFIX}.index",
    ".data-00000-of-00001": f"{CHECKPOINT_PREFIX}.data-00000-of-00001",
    "config.json": "config.json",
}
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def offline_instructions(weights_dir: Path) -> str:
    return (
        f"To prepare it offline, on a machine with internet run "
        f"`pip download musicnn==0.1.0 --no-deps -d {weights_dir}` and copy {weights_dir}/{WHEEL_NAME} "
        f"to the same place here (it is unpacked on first use), or point {WHEEL_ENV} at a copy of that wheel."
    )


def _download(url: str, dest: Path, timeout: float = 120.0) -> None:
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def obtain_wheel(weights_dir: Path, workdir: Path) -> tuple[Path, str]:
    """A verified copy of the wheel: from $AUDIOREC_MUSICNN_WHEEL, a copy left in
    `weights_dir`, or PyPI (in that order). Returns (path, where it came from)."""
    source = os.environ.get(WHEEL_ENV)
    local = weights_dir / WHEEL_NAME
    if source and "://" not in source:
        path, origin = Path(source), source
        if not path.is_file():
            raise MissingWeightsError(f"{WHEEL_ENV}={source}: no such file. {offline_instructions(weights_dir)}")
    elif not source and local.is_file():
        path, origin = local, str(local)
    else:
        url = source or WHEEL_URL
        path, origin = workdir / WHEEL_NAME, url
        try:
            _download(url, path)
        except OSError as err:  # URLError, timeouts and HTTP errors are all OSErrors
            raise MissingWeightsError(
                f"musicnn weights: downloading {url} failed ({err}). {offline_instructions(weights_dir)}"
            ) from err
    digest = _sha256(path)
    if digest != WHEEL_SHA256:
        raise MissingWeightsError(
            f"musicnn weights: {origin} has sha256 {digest}, expected {WHEEL_SHA256} (musicnn==0.1.0). "
            f"Remove it and fetch again. {offline_instructions(weights_dir)}"
        )
    return path, origin


def variant_dir(weights_dir: Path, variant: str) -> Path:
    return Path(weights_dir) / variant


def read_manifest(weights_dir: Path, variant: str, verify: bool = True) -> dict[str, Any] | None:
    """The manifest of a complete cached variant, or None if it is not cached.

    With `verify`, every file is checked against its recorded sha256 (a few ms), and a
    damaged cache is an error naming the folder to delete rather than garbage weights.
    """
    folder = variant_dir(weights_dir, variant)
    path = folder / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    for name, digest in manifest["files"].items():
        f = folder / name
        if not f.is_file() or (verify and _sha256(f) != digest):
            raise MissingWeightsError(
                f"musicnn weights cache {folder} is incomplete or corrupt ({name} missing or changed). "
                f"Delete {folder} and run again to re-fetch it."
            )
    return manifest


def fetch_variant(weights_dir: Path, variant: str) -> dict[str, Any]:
    """Make sure `{weights_dir}/{variant}/` holds the checkpoint; return its manifest.

    Written into a temporary folder and renamed into place, so that a killed fetch or two
    jobs fetching at once never leave a half-written cache.
    """
    weights_dir = Path(weights_dir)
    manifest = read_manifest(weights_dir, variant)
    if manifest is not None:
        return manifest
    weights_dir.mkdir(parents=True, exist_ok=True)
    final = variant_dir(weights_dir, variant)
    with tempfile.TemporaryDirectory(dir=weights_dir, prefix=f".{variant}.") as tmp:
        tmp_dir = Path(tmp)
        wheel, origin = obtain_wheel(weights_dir, tmp_dir)
        staged = tmp_dir / variant
        staged.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            for inner, outer in CHECKPOINT_FILES.items():
                member = f"musicnn/{variant}/{inner}"
                if member not in names:
                    raise BackendError(f"musicnn wheel {origin} has no {member}: is {variant!r} a released variant?")
                with zf.open(member) as src, open(staged / outer, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        manifest = {
            "source": "musicnn==0.1.0 (PyPI wheel)",
            "origin": origin if "://" in origin else WHEEL_URL,
            "wheel_sha256": WHEEL_SHA256,
            "variant": variant,
            "checkpoint_prefix": CHECKPOINT_PREFIX,
            "files": {outer: _sha256(staged / outer) for outer in CHECKPOINT_FILES.values()},
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            os.rename(staged, final)
        except OSError:
            # another job finished first (or a stale folder without manifest is in the way)
            existing = read_manifest(weights_dir, variant)
            if existing is None:
                raise MissingWeightsError(
                    f"musicnn weights: {final} exists but holds no {MANIFEST}; delete it and run again."
                ) from None
            return existing
    log.info("musicnn %s checkpoint cached in %s", variant, final)
    return manifest


def download_wheel(dest_dir: Path) -> Path:
    """Keep a verified copy of the wheel at `{dest_dir}/{WHEEL_NAME}` (fetching it if needed).

    A wheel left there is what `fetch_variant` unpacks offline, so this is also the way to
    prepare a cache for machines without internet.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".wheel.") as tmp:
        path, _ = obtain_wheel(dest_dir, Path(tmp))
        final = dest_dir / WHEEL_NAME
        if path != final:
            staged = Path(tmp) / f"{WHEEL_NAME}.part"
            if path.parent == Path(tmp):
                path.rename(staged)
            else:  # a user's copy named by the environment variable: copy, never move
                shutil.copyfile(path, staged)
            os.replace(staged, final)
    return final
