"""Frozen features of a training batch: text features (simple, complex) and the VAE latent distribution.

Computed per step (the official loop), or once into a cache (``--cache-features``): per shard one safetensors file
with, per sample, the text features and the latent mean/std of the image and of its horizontal flip. The latent is
still *sampled* every step from that mean/std, so a cached step draws from the same distribution as an uncached one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from surd.adapter.data import decode_sample
from surd.deps import require
from surd.files import write_bytes_atomic, write_json_atomic
from surd.models.sd import SDComponents
from surd.shards import list_shards, read_shard

CACHE_META = "_cache.json"


def encode_text(components: SDComponents, texts: list[str], device: Any) -> Any:
    """Prompts → the text encoder's last hidden state [B, 77, d] (what SD conditions on)."""
    tok = components.tokenizer
    ids = tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids  # [B, 77]
    return components.text_encoder(ids.to(device))[0]  # [B, 77, d]


def latent_moments(components: SDComponents, pixels: Any) -> tuple[Any, Any]:
    """Images [B, 3, R, R] in [-1, 1] → latent mean and std [B, 4, R/f, R/f] (unscaled)."""
    dist = components.vae.encode(pixels.to(components.vae.dtype)).latent_dist
    return dist.mean, dist.std


def sample_latents(components: SDComponents, mean: Any, std: Any, generator: Any) -> Any:
    """One draw of the scaled latent, z = (μ + σ·ε)·scaling_factor, ε from ``generator`` (CPU, resumable)."""
    torch = require("torch", "adapter")
    eps = torch.randn(mean.shape, generator=generator).to(mean.device, mean.dtype)
    return (mean + std * eps) * components.vae.config.scaling_factor


def compute_features(components: SDComponents, items: list[dict[str, Any]], device: Any) -> dict[str, Any]:
    """The official loop's per-step work: one VAE encode and two text-encoder passes."""
    torch = require("torch", "adapter")
    with torch.no_grad():
        pixels = torch.stack([it["pixel_values"] for it in items]).to(device)  # [B, 3, R, R]
        mean, std = latent_moments(components, pixels)
        x = encode_text(components, [it["simple"] for it in items], device)
        x_complex = encode_text(components, [it["complex"] for it in items], device)
    return {"mean": mean, "std": std, "x": x, "x_complex": x_complex}


class FeatureCache:
    """Read side of the cache: per-key lazy access to the per-shard safetensors files (memory-mapped)."""

    def __init__(self, cache_dir: str | Path):
        from safetensors import safe_open  # optional extra: imported on use

        self._where: dict[str, Any] = {}
        self._handles = []
        for path in sorted(Path(cache_dir).glob("*.safetensors")):
            h = safe_open(str(path), framework="pt")
            self._handles.append(h)
            for name in h.keys():
                self._where.setdefault(name.split("/")[0], h)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def features(self, items: list[dict[str, Any]], device: Any, dtype: Any) -> dict[str, Any]:
        """Batch features for ``items`` (each needs ``key`` and ``flip``); same layout as `compute_features`."""
        torch = require("torch", "adapter")
        out: dict[str, list[Any]] = {"mean": [], "std": [], "x": [], "x_complex": []}
        for it in items:
            h, k, suffix = self._where[it["key"]], it["key"], "_flip" if it["flip"] else ""
            out["mean"].append(h.get_tensor(f"{k}/mean{suffix}"))
            out["std"].append(h.get_tensor(f"{k}/std{suffix}"))
            out["x"].append(h.get_tensor(f"{k}/x"))
            out["x_complex"].append(h.get_tensor(f"{k}/x_complex"))
        return {n: torch.stack(v).to(device, dtype) for n, v in out.items()}


def _cache_meta(components: SDComponents, resolution: int, dtype: Any, flips: bool) -> dict[str, Any]:
    return {"base": components.label, "resolution": resolution, "text_dim": components.text_dim,
            "dtype": str(dtype).replace("torch.", ""), "flips": flips, "version": 1}


def _cache_shard(components: SDComponents, shard: Path, resolution: int, device: Any, dtype: Any, flips: bool,
                 batch: int = 8) -> bytes:
    from safetensors.torch import save  # optional extra: imported on use

    torch = require("torch", "adapter")
    tensors: dict[str, Any] = {}
    items = [decode_sample(s, resolution, True, False, 0, 0) for s in read_shard(shard)]
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        feats = compute_features(components, chunk, device)
        if flips:
            with torch.no_grad():
                pixels = torch.stack([it["pixel_values"] for it in chunk]).to(device).flip(-1)  # [B, 3, R, R] mirrored
                feats["mean_flip"], feats["std_flip"] = latent_moments(components, pixels)
        for j, it in enumerate(chunk):
            row = {name: t[j] for name, t in feats.items()}
            tensors.update({f"{it['key']}/{n}": t.to("cpu", dtype).contiguous() for n, t in row.items()})
    return save(tensors)


def build_feature_cache(components: SDComponents, data_dir: str, cache_dir: str | Path, resolution: int,
                        device: Any, dtype: Any, progress: bool = True, flips: bool = True) -> Path:
    """Precompute features for every shard once; resumable (done shards are skipped), refuses a foreign cache.

    ``flips`` also caches the mirrored image's latents (needed for random flips; doubles the VAE work).
    """

    out = Path(cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta, meta_path = _cache_meta(components, resolution, dtype, flips), out / CACHE_META
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"feature cache {out} was built for {json.loads(meta_path.read_text())}, not {meta}: "
                         f"pass another --cache-dir or delete it")
    write_json_atomic(meta_path, meta)
    for shard in tqdm(list_shards(data_dir), desc="caching features", disable=not progress):
        target = out / f"{shard.stem}.safetensors"
        if not target.exists():
            write_bytes_atomic(target, _cache_shard(components, shard, resolution, device, dtype, flips))
    return out


class LazyFeatureStore:
    """Features stored per sample the first time a sample is used, then read back (``--cache-features lazy``).

    Never more frozen-model work than the official loop (a miss costs exactly its per-step work), and every later
    use of the sample is a cache hit — the right choice when a run sees each sample only a few times (the official
    recipe, 5,000 × 4 samples, covers 0.35 epoch of SURD's 57,603). Files: ``<key[:2]>/<key>.<part>.safetensors``
    with part ``text`` (x, x_complex), ``img`` and ``img_flip`` (latent mean, std); each written atomically.
    """

    def __init__(self, cache_dir: str | Path, components: SDComponents, resolution: int, dtype: Any):
        self.dir, self.components, self.dtype = Path(cache_dir), components, dtype
        self.dir.mkdir(parents=True, exist_ok=True)
        meta, meta_path = _cache_meta(components, resolution, dtype, True), self.dir / CACHE_META
        meta["lazy"] = True
        if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
            raise ValueError(f"feature cache {self.dir} was built for {json.loads(meta_path.read_text())}, not "
                             f"{meta}: pass another --cache-dir or delete it")
        if not meta_path.exists():
            write_json_atomic(meta_path, meta)

    def _path(self, key: str, part: str) -> Path:
        return self.dir / key[:2] / f"{key}.{part}.safetensors"

    def has(self, key: str, flip: bool) -> bool:
        return self._path(key, "text").exists() and self._path(key, "img_flip" if flip else "img").exists()

    def put(self, items: list[dict[str, Any]], feats: dict[str, Any]) -> None:
        """Store freshly computed features of decoded ``items`` (as `compute_features` returns them)."""
        from safetensors.torch import save  # optional extra: imported on use

        for j, it in enumerate(items):
            self._path(it["key"], "text").parent.mkdir(exist_ok=True)
            parts = {"text": ("x", "x_complex"), "img_flip" if it["flip"] else "img": ("mean", "std")}
            for part, names in parts.items():
                tensors = {n: feats[n][j].to("cpu", self.dtype).contiguous() for n in names}
                write_bytes_atomic(self._path(it["key"], part), save(tensors))

    def features(self, items: list[dict[str, Any]], device: Any) -> dict[str, Any]:
        from safetensors.torch import load_file  # optional extra: imported on use

        torch = require("torch", "adapter")
        out: dict[str, list[Any]] = {"mean": [], "std": [], "x": [], "x_complex": []}
        for it in items:
            rows = {**load_file(self._path(it["key"], "text")),
                    **load_file(self._path(it["key"], "img_flip" if it["flip"] else "img"))}
            for name in out:
                out[name].append(rows[name])
        return {n: torch.stack(v).to(device, self.dtype) for n, v in out.items()}
