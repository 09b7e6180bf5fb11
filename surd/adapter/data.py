"""Training data from webdataset shards (members ``jpg``, ``json`` with simple/complex prompts, ``llm.npy``), streamed.

Order is a pure function of (seed, epoch): shards are permuted per epoch, samples pass a seeded shuffle buffer, and
flips/crops are drawn from a hash of (seed, epoch, key). So a data position — (epoch, samples consumed) — is all a
checkpoint needs to resume the exact stream, and nothing is ever loaded whole into memory.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from surd.sample import Sample
from surd.shards import list_shards, read_shard

IMAGE_MEMBERS = ("jpg", "jpeg", "webp", "png")


@dataclass(frozen=True)
class DataPosition:
    """Where a stream stands: ``index`` samples of ``epoch`` already consumed (per rank)."""

    epoch: int = 0
    index: int = 0


def sample_rng(seed: int, epoch: int, key: str) -> random.Random:
    """Per-sample randomness (flip, crop) that does not depend on what came before it in the stream."""
    digest = hashlib.sha256(f"{seed}\x00{epoch}\x00{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def llm_vector(sample: Sample) -> np.ndarray:
    """The sample's LLM knowledge vector as float32 [llm_dim] (stored as float16 ``.npy``, never unpickled)."""
    raw = sample.get("llm.npy")
    if raw is None:
        raise ValueError(f"sample {sample['__key__']} has no llm.npy: run the embed stage (surd run ... embed) first")
    arr = np.load(io.BytesIO(raw), allow_pickle=False)
    return np.asarray(arr, dtype=np.float32).reshape(-1)


def prompts(sample: Sample) -> tuple[str, str]:
    """(simple, complex) prompt of a sample; a clear error when the caption stage has not filled them."""
    meta = sample.get("json") or {}
    simple, complex_ = meta.get("simple_prompt"), meta.get("complex_prompt")
    if not simple or not complex_:
        raise ValueError(f"sample {sample['__key__']} lacks simple_prompt/complex_prompt: train on the output of "
                         f"the caption (and clip_filter) stages")
    return str(simple), str(complex_)


def image_bytes(sample: Sample) -> bytes:
    for ext in IMAGE_MEMBERS:
        if sample.get(ext):
            return sample[ext]
    raise ValueError(f"sample {sample['__key__']} has no image member ({', '.join(IMAGE_MEMBERS)})")


def load_image(data: bytes, resolution: int, center_crop: bool, flip: bool, rng: random.Random) -> Any:
    """Image bytes → float tensor [3, R, R] in [-1, 1]: shorter side resized to R (bilinear), cropped, flipped."""
    import torch  # optional extra: imported on use

    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    img = img.resize((nw, nh), Image.BILINEAR)
    if center_crop:
        left, top = (nw - resolution) // 2, (nh - resolution) // 2
    else:
        left, top = rng.randint(0, nw - resolution), rng.randint(0, nh - resolution)
    img = img.crop((left, top, left + resolution, top + resolution))
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0  # [R, R, 3]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()  # [R, R, 3] → [3, R, R]


def stream(data_dir: str, seed: int, epoch: int, shuffle_buffer: int = 256, rank: int = 0,
           world: int = 1) -> Iterator[Sample]:
    """One epoch of raw samples for this rank, in the order fixed by (seed, epoch)."""
    shards = list_shards(data_dir)
    if not shards:
        raise FileNotFoundError(f"no NNNNN.tar shards in {data_dir}: pass a stage output directory")
    rng = random.Random(f"surd-adapter:{seed}:{epoch}")
    rng.shuffle(shards)
    buf: list[Sample] = []
    i = 0

    def raw() -> Iterator[Sample]:
        for path in shards:
            yield from read_shard(path)

    for sample in raw():
        buf.append(sample)
        if len(buf) >= shuffle_buffer:
            out = buf.pop(rng.randrange(len(buf)))
            if i % world == rank:
                yield out
            i += 1
    rng.shuffle(buf)
    for out in buf:
        if i % world == rank:
            yield out
        i += 1


def positioned_stream(data_dir: str, start: DataPosition, seed: int, shuffle_buffer: int = 256, rank: int = 0,
                      world: int = 1) -> Iterator[tuple[DataPosition, Sample]]:
    """Endless epochs from ``start``; yields (position after this sample, sample). Skipped samples are not decoded."""
    epoch, skip = start.epoch, start.index
    while True:
        n = 0
        for n, sample in enumerate(stream(data_dir, seed, epoch, shuffle_buffer, rank, world), start=1):
            if n <= skip:
                continue
            yield DataPosition(epoch, n), sample
        if n == 0:
            raise ValueError(f"{data_dir} has no samples for rank {rank} of {world}")
        epoch, skip = epoch + 1, 0


def decode_sample(sample: Sample, resolution: int, center_crop: bool, random_flip: bool, seed: int,
                  epoch: int) -> dict[str, Any]:
    """A raw sample → {key, pixel_values [3, R, R], simple, complex, llm [llm_dim], flip}."""
    rng = sample_rng(seed, epoch, sample["__key__"])
    flip = random_flip and rng.random() < 0.5
    simple, complex_ = prompts(sample)
    return {"key": sample["__key__"], "simple": simple, "complex": complex_, "llm": llm_vector(sample), "flip": flip,
            "pixel_values": load_image(image_bytes(sample), resolution, center_crop, flip, rng)}
