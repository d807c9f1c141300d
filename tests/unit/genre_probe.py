"""A held-out-artist genre probe shared by the tests that check that audio (or an embedding
of it) carries the synthetic genres: nearest centroid on z-scored features, trained on some
artists of each genre and tested on the others, so that it must hear the genre, not the
artist."""

from __future__ import annotations

import numpy as np


def held_out_artist_accuracy(x: np.ndarray, labels: np.ndarray, artists: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(accuracy, majority-class accuracy, the held-out labels) of nearest-centroid genre prediction;
    every other artist of each genre is held out (a genre's only artist stays in training)."""
    held_out: set[str] = set()
    for genre in np.unique(labels):
        names = sorted(set(artists[labels == genre]))
        held_out |= set(names[1::2])
    test = np.isin(artists, list(held_out))
    train = ~test
    mu, sd = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
    z = (x - mu) / sd
    classes = np.unique(labels[train])
    centroids = np.stack([z[train][labels[train] == c].mean(axis=0) for c in classes])
    predicted = classes[np.argmin(((z[test][:, None] - centroids[None]) ** 2).sum(axis=-1), axis=1)]
    accuracy = float((predicted == labels[test]).mean())
    majority = float(np.bincount(labels[test]).max() / test.sum())  # always guessing the commonest genre
    return accuracy, majority, labels[test]
