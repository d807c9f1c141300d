"""Fetching a backend's weights ahead of extraction (the `fetch_weights` local job).

Cluster nodes often have no internet; the workflow therefore downloads weights once, on
the submitting host, into `resources/weights/{type}/`, and records what it fetched in a
manifest that the extraction jobs depend on.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..backends.base import Backend
from ..io import write_text


def weights_dir_for(root: str | Path, backend: Backend) -> Path:
    """Where a backend's weights are cached: its spec's `weights_dir` where it sets one,
    else `{root}/{type}` under the workflow's weights folder."""
    explicit = backend.spec.get("weights_dir")
    return Path(explicit) if explicit else Path(root) / backend.type_name


def fetch_weights(backend: Backend, root: str | Path, manifest_path: str | Path) -> dict[str, Any]:
    """Run `backend.prefetch` into its cache folder and write the manifest (JSON)."""
    cache = weights_dir_for(root, backend)
    cache.mkdir(parents=True, exist_ok=True)
    fetched = backend.prefetch(cache) or {}
    manifest = {
        "backend_type": backend.type_name,
        "spec": backend.spec,
        "cache_dir": str(cache),
        "fetched": fetched,
        "fetched_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "audiorec": __version__,
    }
    write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", manifest_path)
    return manifest
