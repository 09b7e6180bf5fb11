"""dedup: samples with an image → the same samples minus near-duplicates across the whole dataset.

Each shard's pass records the image's 64-bit pHash in json["stages"]["dedup"] (``phash``, 16 hex digits) and keeps
every decodable sample. Once all shards are done, `finalize` decides globally: walking samples in shard order, then
position, a sample whose pHash is within ``max_distance`` bits of an earlier *kept* sample is dropped as
``near_duplicate`` (the detail names the kept sample's key and the distance); with ``prompt_dedup``, one whose
normalised complex prompt repeats an earlier kept sample's is dropped as ``duplicate_prompt``. The decision reads
only the finished shards, so it is the same for any worker count, and rerunning it changes nothing. The kept
samples are saved (`surd.dedup.kept`), so after an append only the new shards are read and checked against them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import PIL

import surd
from surd import shards
from surd.batching import BatchPlan, decode_rgb, map_batched
from surd.dedup import kept
from surd.dedup.decide import DUPLICATE_PROMPT, NEAR_DUPLICATE, Drop, first_wins, normalise_prompt, phash64
from surd.dedup.index import near_pairs_between
from surd.deps import require
from surd.models import DECODE_THREADS_HELP
from surd.options import config, option
from surd.sample import Rejected, Sample, record_stage

NAME = "dedup"
USES_GPU = False
HASH = "imagehash.phash, 8x8 DCT of a 32x32 grey thumbnail"


@config
class Config:
    """The Hamming distance (of 64 bits) under which two images are one, and whether prompts dedup too."""

    max_distance: int = option(8, help="Drop an image whose 64-bit pHash is within this many bits of an earlier kept "
                               "one: 0 (identical hashes only) to 32; about 8 finds resized/re-encoded copies.",
                               ge=0, le=32)
    prompt_dedup: bool = option(False, help="Also drop samples repeating an earlier kept sample's complex prompt "
                                "(case, punctuation and spacing ignored).")
    decode_threads: int = option(2, help=DECODE_THREADS_HELP, ge=1)


def versions() -> dict[str, str]:
    return {"pillow": PIL.__version__, "imagehash": require("imagehash", "dedup").__version__}


def _record(sample: Sample, value: int, cfg: Config) -> Sample:
    record_stage(sample, NAME, {"phash": f"{value:016x}", "hash": HASH, "max_distance": cfg.max_distance,
                                "prompt_dedup": cfg.prompt_dedup, "surd": surd.__version__})
    return sample


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Hash every image in decode threads (an undecodable one is rejected as decode_error); one output per input."""
    require("imagehash", "dedup")  # before any sample: a missing dependency stops the run, it is no decode error
    plan = BatchPlan(prepare=lambda s: phash64(decode_rgb(s)), infer=lambda values: values,
                     finish=lambda s, value: _record(s, value, cfg), batch_size=64, threads=cfg.decode_threads)
    yield from map_batched(samples, plan)


def _detail(drop: Drop, keys: list[str], cfg: Config) -> str:
    keeper = keys[drop.keeper]
    if drop.reason == NEAR_DUPLICATE:
        return f"near-duplicate of {keeper} (pHash Hamming distance {drop.distance} <= {cfg.max_distance})"
    return f"same normalised complex prompt as {keeper}"


def _kept_rows(output_dir: str | Path, stems: list[str]) -> tuple[list[str], list[str], list[int], list[str]]:
    """(stem, key, pHash, complex prompt) of every kept sample of `stems`, in shard order then position."""

    out_stems, keys, hashes, prompts = [], [], [], []
    for stem in stems:
        for row in shards.read_sidecar(output_dir, stem):
            record = (row["meta"].get("stages") or {}).get(NAME) or {}
            if row["status"] != "kept" or not record.get("phash"):
                continue
            out_stems.append(stem)
            keys.append(row["key"])
            hashes.append(int(record["phash"], 16))
            prompts.append(str(row["meta"].get("complex_prompt") or ""))
    return out_stems, keys, hashes, prompts


def prompt_digest(prompt: str) -> str:
    """The normalised prompt's 128-bit digest (hex; "" for an empty prompt, which never matches), as the kept index
    stores it: `first_wins` compares these as it would the prompts."""
    text = normalise_prompt(prompt)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest() if text else ""


def finalize(output_dir: str | Path, cfg: Config) -> dict[str, int]:
    """Decide over the done shards and turn the drops into rejects in their shards; returns {reason: n}.

    Only the shards the kept index (`surd.dedup.kept`) does not cover are read: their samples are decided together
    with the kept samples they could repeat (within ``max_distance`` of one, or with its prompt), found by
    `near_pairs_between`. The other kept samples cannot change a decision, so the drops are those of a decision
    over the whole dataset, at a cost that grows with the new shards (an append's)."""

    out = str(output_dir)  # a path or a URL (surd.storage)
    settings = {"max_distance": cfg.max_distance, "prompt_dedup": cfg.prompt_dedup, "hash": HASH}
    index, todo = kept.open_index(out, NAME, settings, {"phash": np.uint64, "prompt": "U32"})
    stems, keys, hashes, prompts = _kept_rows(out, todo)
    digests = [prompt_digest(p) if cfg.prompt_dedup else "" for p in prompts]
    old_hashes, old_digests = index.columns["phash"], index.columns["prompt"]
    near = near_pairs_between(np.asarray(hashes, dtype=np.uint64), old_hashes, cfg.max_distance)[1]
    same_prompt = np.flatnonzero(np.isin(old_digests, [d for d in digests if d])) if cfg.prompt_dedup else []
    context = sorted(set(near.tolist()) | set(np.asarray(same_prompt).tolist()))  # kept samples that matter
    m = len(context)
    all_keys = [*index.keys[context].tolist(), *keys]
    drops = first_wins(np.concatenate([old_hashes[context], np.asarray(hashes, dtype=np.uint64)]), cfg.max_distance,
                       [*old_digests[context].tolist(), *digests] if cfg.prompt_dedup else None)
    by_stem: dict[str, dict[str, tuple[str, str]]] = {}
    for drop in drops:
        i = drop.index - m  # an earlier kept sample is never dropped: none repeats another
        by_stem.setdefault(stems[i], {})[keys[i]] = (drop.reason, _detail(drop, all_keys, cfg))
    for stem in sorted(by_stem):
        shards.drop_samples(out, stem, by_stem[stem])
    dropped = {drop.index - m for drop in drops}
    left = [i for i in range(len(keys)) if i not in dropped]
    index.extend(todo, [keys[i] for i in left], phash=np.asarray([hashes[i] for i in left], dtype=np.uint64),
                 prompt=np.asarray([digests[i] for i in left], dtype="U32"))
    kept.write(out, NAME, index)
    counts = {NEAR_DUPLICATE: 0, DUPLICATE_PROMPT: 0}
    for drop in drops:
        counts[drop.reason] += 1
    return counts
