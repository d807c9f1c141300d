"""The embeddings carry the audio's signal: on the synthetic dataset, genre is recoverable
far above chance from the MFCC and the real pretrained MusiCNN vectors, computed the way the
rules compute them (track index, one extraction shard, gather into the .h5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from genre_probe import held_out_artist_accuracy

from audiorec.data.synthetic import GENRE_NAMES
from audiorec.extraction.jobs import embed_gather, embed_shard, make_tracks
from audiorec.extraction.store import read_embeddings


def _embed(spec: dict, dataset: Path, work: Path) -> tuple[list[str], np.ndarray]:
    work.mkdir(parents=True, exist_ok=True)
    tracks = work / "tracks.parquet"
    make_tracks(dataset / "audios", dataset / "userid_trackid_timestamp.tsv", tracks, threads=2)
    shard = work / "shard.h5"
    embed_shard(spec, tracks, shard, shard=0, nshards=1, threads=2, dataset_dir=dataset)
    out = work / "embeddings.h5"
    summary = embed_gather(spec, [shard], tracks, out, work / "failures.csv")
    assert not summary.failures, summary.failures
    return read_embeddings(out)


@pytest.mark.parametrize("backend", ["mfcc", "musicnn"])
def test_genre_is_recoverable_from_the_embeddings(backend: str, tiny_dataset: Path, tmp_path: Path, request) -> None:
    spec: dict = {"type": backend, "device": "cpu"}
    if backend == "musicnn":
        spec.update(variant="MSD_musicnn", layer="penultimate", weights_dir=str(request.getfixturevalue("musicnn_weights_dir")))
    ids, vectors = _embed(spec, tiny_dataset, tmp_path)
    assert np.isfinite(vectors).all()

    info = pl.read_csv(tiny_dataset / "id_information.tsv", separator="\t").select("id", "artist")
    genres = pl.read_csv(tiny_dataset / "id_genres.tsv", separator="\t").join(info, on="id")
    row = {tid: i for i, tid in enumerate(ids)}
    x = vectors[[row[tid] for tid in genres["id"]]]
    labels = np.array([GENRE_NAMES.index(g) for g in genres["genre"]])
    accuracy, majority, held_out = held_out_artist_accuracy(x, labels, genres["artist"].to_numpy())
    assert len(held_out) >= 20 and len(np.unique(held_out)) >= 5
    chance = 1 / len(np.unique(labels))
    assert accuracy > 0.5 and accuracy > majority + 0.2 and accuracy > 3 * chance, (backend, accuracy, majority, chance)
