"""Identifiers and names shaped like Music4All's.

Music4All track ids are 16 characters of [0-9A-Za-z] (e.g. `0009fFIM1eYThaPg`) and its
user ids are `user_` plus 8 such characters (e.g. `user_007XIjOr`); code written against
the real dataset therefore runs unchanged on the synthetic one. Artist, album and song
names are pronounceable nonsense, so figures and tables stay readable.
"""

from __future__ import annotations

import numpy as np

ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
TRACK_ID_LENGTH = 16
USER_ID_LENGTH = 8

_ONSETS = ("b", "br", "c", "ch", "d", "dr", "f", "g", "gl", "h", "j", "k", "l", "m", "n", "p", "pr",
           "r", "s", "sh", "st", "t", "tr", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ee", "y")
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "x", "nd", "st", "th")


def random_ids(rng: np.random.Generator, n: int, length: int, prefix: str = "") -> list[str]:
    """n distinct ids of `length` alphanumeric characters (sorted draws are redrawn on collision)."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        chars = ALPHABET[rng.integers(len(ALPHABET), size=(n - len(ids), length))]
        for row in chars:
            candidate = prefix + "".join(row)
            if candidate not in seen:
                seen.add(candidate)
                ids.append(candidate)
    return ids


def track_ids(rng: np.random.Generator, n: int) -> list[str]:
    return random_ids(rng, n, TRACK_ID_LENGTH)


def user_ids(rng: np.random.Generator, n: int) -> list[str]:
    return random_ids(rng, n, USER_ID_LENGTH, prefix="user_")


def _word(rng: np.random.Generator) -> str:
    syllables = int(rng.integers(1, 4))
    parts = []
    for _ in range(syllables):
        parts.append(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))])
    parts.append(_CODAS[rng.integers(len(_CODAS))])
    return "".join(parts).capitalize()


def names(rng: np.random.Generator, n: int, max_words: int = 3, unique: bool = False) -> list[str]:
    """n title-cased names of 1..max_words made-up words (distinct if `unique`)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        words = int(rng.integers(1, max_words + 1))
        name = " ".join(_word(rng) for _ in range(words))
        if unique:
            if name in seen:
                continue
            seen.add(name)
        out.append(name)
    return out
