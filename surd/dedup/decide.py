"""Perceptual hashes of images and the global keep/drop decision: the first sample in dataset order wins.

`phash64` is imagehash's pHash (grey 32×32 Lanczos thumbnail, 2-D DCT, the 8×8 lowest frequencies against their
median) packed into an int with the first bit most significant, so ``f"{h:016x}" == str(imagehash.phash(img))``.
`first_wins` walks the samples in order once: a sample is dropped when an earlier *kept* sample's hash is within
the distance (or, optionally, has the same normalised prompt), so every drop names a sample that stays.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from surd.dedup.index import near_pairs
from surd.deps import require

NEAR_DUPLICATE = "near_duplicate"
DUPLICATE_PROMPT = "duplicate_prompt"
_NON_WORD = re.compile(r"[\W_]+")


def phash64(image: Any) -> int:
    """imagehash.phash of a PIL image (64 bits) as an int."""
    imagehash = require("imagehash", "dedup")
    bits = imagehash.phash(image, hash_size=8).hash.ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def normalise_prompt(prompt: str | None) -> str:
    """Unicode-compatible, case-folded, punctuation and spacing collapsed: "A cat,  8K!" → "a cat 8k"."""
    text = unicodedata.normalize("NFKC", prompt or "").casefold()
    return _NON_WORD.sub(" ", text).strip()


@dataclass(frozen=True)
class Drop:
    """Sample `index` is dropped for `reason`; `keeper` is the index of the earlier kept sample it repeats."""

    index: int
    reason: str
    keeper: int
    distance: int | None = None


def _neighbours(values: np.ndarray, max_distance: int) -> tuple[list[int], list[int], list[int]]:
    """CSR (indptr, value ids, distances) of every distinct value's neighbours within the distance."""
    i, j, d = near_pairs(values, max_distance)
    src, dst, dist = np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([d, d])
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=len(values)), out=indptr[1:])
    return indptr.tolist(), dst[order].tolist(), dist[order].astype(np.int64).tolist()


def first_wins(hashes: Sequence[int] | np.ndarray, max_distance: int,
               prompts: Sequence[str] | None = None) -> list[Drop]:
    """Drops, in order, for samples given in dataset order: near-duplicates of an earlier kept sample first, then
    (when `prompts` are given) repeats of an earlier kept sample's normalised prompt; empty prompts never match.

    The neighbour search runs on distinct hash values, so exact copies cost nothing extra.
    """
    h = np.asarray(hashes, dtype=np.uint64).ravel()
    if prompts is not None and len(prompts) != len(h):
        raise ValueError(f"{len(prompts)} prompts for {len(h)} hashes")
    values, inverse = np.unique(h, return_inverse=True)
    inverse = inverse.ravel()
    indptr, nbr, dist = _neighbours(values, max_distance)
    first_kept = [-1] * len(values)  # value id → the first kept sample with that hash
    prompt_owner: dict[str, int] = {}
    drops: list[Drop] = []
    todo = np.arange(len(h))
    if prompts is None:  # a hash with no copy and no neighbour is kept and never consulted: skip it
        lonely = (np.bincount(inverse, minlength=len(values)) == 1) & (np.diff(np.asarray(indptr)) == 0)
        todo = np.flatnonzero(~lonely[inverse])
    for s, v in zip(todo.tolist(), inverse[todo].tolist()):
        keeper, distance = first_kept[v], 0
        for k in range(indptr[v], indptr[v + 1]):
            other = first_kept[nbr[k]]
            if other >= 0 and (keeper < 0 or other < keeper):
                keeper, distance = other, dist[k]
        if keeper >= 0:
            drops.append(Drop(s, NEAR_DUPLICATE, keeper, distance))
            continue
        key = normalise_prompt(prompts[s]) if prompts is not None else ""
        if key and key in prompt_owner:
            drops.append(Drop(s, DUPLICATE_PROMPT, prompt_owner[key]))
            continue
        first_kept[v] = s
        if key:
            prompt_owner[key] = s
    return drops
