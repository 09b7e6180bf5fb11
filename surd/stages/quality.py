"""quality: samples with an image (and clip.npy from clip_filter, if any) → the same samples with LAION's aesthetic
and watermark scores in json["stages"]["quality"], minus those below ``min_aesthetic`` or at ``max_watermark``.

The aesthetic score is a LAION predictor (`surd.models.aesthetic`: the improved MLP on CLIP ViT-L/14, or the
linear head on ViT-B/32 or L/14) over the L2-normalised CLIP image embedding. clip_filter's stored ``clip.npy`` is
reused when it was made by the same CLIP (``clip_model`` / ``clip_pretrained``), so a ViT-B/32 run computes no
second embedding; otherwise CLIP runs on the images that lack one. The watermark score is LAION's detector
(`surd.models.watermark`): p(watermark). Either may be off (empty spec); with thresholds unset nothing is rejected.
Reasons: ``low_aesthetic`` (score < min_aesthetic), ``watermark`` (p >= max_watermark).
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from surd.batching import BatchPlan, decode_rgb, map_batched
from surd.deps import require
from surd.embed.prompt2vec import vector_from_npy
from surd.models import DTYPES, TINY, parse_spec
from surd.models.aesthetic import load_head
from surd.models.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, clip_labels, load_clip
from surd.models.watermark import INPUT_SIZE, load_detector, preprocess, watermark_probability
from surd.options import config, option
from surd.sample import Rejected, Sample, record_stage, reject
from surd.stages.clip_filter import EMBEDDING_MEMBER

NAME = "quality"
USES_GPU = True
LOW_AESTHETIC, WATERMARK = "low_aesthetic", "watermark"


@config
class Config:
    """The aesthetic head and the CLIP it reads, the watermark detector, the thresholds, and batching."""

    aesthetic_head: str = option("",
                                help="Aesthetic head: '' (no aesthetic score), tiny, tiny:linear, a LAION .pth/.safetensors, or owner/repo:file.")
    clip_model: str = option(DEFAULT_MODEL,
                            help='The CLIP the aesthetic head reads (MLP: ViT-L-14; linear: ViT-B-32 or L-14); clip.npy from the same CLIP is reused.')
    clip_pretrained: str = option(DEFAULT_PRETRAINED, help='open_clip weights tag or checkpoint file of --clip-model.')
    watermark_model: str = option("",
                                 help="Watermark detector: '' (no watermark score), tiny, LAION's watermark_model_v1.pt, or owner/repo:file.")
    watermark_size: int = option(INPUT_SIZE, help="The detector's input side (LAION's: 256).", ge=32)
    min_aesthetic: float | None = option(None,
                                        help='Reject a sample whose aesthetic score is below this (LAION-Aesthetics: 5, 6, 6.5); unset keeps all.')
    max_watermark: float | None = option(None, ge=0.0, le=1.0,
                                        help="Reject p(watermark) at or above this (LAION's example: 0.5); unset keeps all.")
    batch_size: int = option(32, help='Images per model batch.', ge=1)
    decode_threads: int = option(2, help='Image decoding threads per worker, overlapped with the models.', ge=1)
    device: str = option("auto", help='auto (cuda, then mps, then cpu), or a torch device such as cuda:1.')
    dtype: str = option("auto", choices=DTYPES,
                       help='auto, fp32, fp16 or bf16 (CLIP and the watermark model; heads run in fp32).')

    def __post_init__(self) -> None:
        if self.clip_model == TINY and self.clip_pretrained == DEFAULT_PRETRAINED:
            object.__setattr__(self, "clip_pretrained", "")  # as clip_filter: tiny has only its random weights
        if not self.aesthetic_head and not self.watermark_model:
            raise ValueError("quality needs aesthetic_head and/or watermark_model (tiny, a LAION weight file, or a "
                             "hub id owner/repo:file)")
        for spec in (self.aesthetic_head, self.watermark_model):
            if spec:
                parse_spec(spec)  # a missing local file is named now, not in every shard
        if self.min_aesthetic is not None and not self.aesthetic_head:
            raise ValueError("min_aesthetic needs aesthetic_head")
        if self.max_watermark is not None and (not self.watermark_model or not 0.0 <= self.max_watermark <= 1.0):
            raise ValueError("max_watermark is a probability in [0, 1] and needs watermark_model")
        if self.batch_size < 1 or self.decode_threads < 1 or self.watermark_size < 32:
            raise ValueError("batch_size and decode_threads must be >= 1, watermark_size >= 32")


def versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "open_clip_torch", "timm"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def stored_embedding(sample: Sample, labels: tuple[str, str]) -> np.ndarray | None:
    """clip_filter's clip.npy when it was computed by the CLIP named by `labels`, else None."""
    rec = (sample["json"].get("stages") or {}).get("clip_filter") or {}
    if EMBEDDING_MEMBER not in sample or (rec.get("model"), rec.get("pretrained")) != labels:
        return None
    return vector_from_npy(sample[EMBEDDING_MEMBER])


def _embeddings(items: list[dict[str, Any]], cfg: Config) -> np.ndarray:
    """(B, d) float32: stored vectors as they are, the others from one CLIP pass (rounded to float16 as clip.npy
    is, so a reused and a computed embedding give the same score)."""
    torch = require("torch", "safety")
    todo = [k for k, it in enumerate(items) if it["vector"] is None]
    if todo:
        clip = load_clip(cfg.clip_model, cfg.clip_pretrained, device=cfg.device, dtype=cfg.dtype)
        images = torch.stack([clip.preprocess(items[k]["image"]) for k in todo]).to(clip.device, clip.dtype)
        with torch.inference_mode():
            emb = clip.model.encode_image(images, normalize=True).float().cpu().numpy()
        for k, e in zip(todo, emb):
            items[k]["vector"] = e.astype(np.float16)
    return np.stack([it["vector"] for it in items]).astype(np.float32)


def _plan(cfg: Config) -> BatchPlan:
    torch = require("torch", "safety")
    labels = clip_labels(cfg.clip_model, cfg.clip_pretrained)
    model_labels: dict[str, str] = {"clip_model": labels[0], "clip_pretrained": labels[1]}

    def prepare(sample: Sample) -> dict[str, Any]:
        vector = stored_embedding(sample, labels) if cfg.aesthetic_head else None
        needs_image = cfg.watermark_model or (cfg.aesthetic_head and vector is None)
        image = decode_rgb(sample) if needs_image else None
        return {"vector": vector, "reused": vector is not None, "image": image,
                "pixels": preprocess(image, cfg.watermark_size) if cfg.watermark_model else None}

    def infer(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{} for _ in items]
        if cfg.aesthetic_head:
            x = _embeddings(items, cfg)
            head, model_labels["aesthetic"] = load_head(cfg.aesthetic_head, x.shape[1])
            with torch.inference_mode():
                scores = head(torch.from_numpy(x)).tolist()
            for o, it, s in zip(out, items, scores):
                o.update(aesthetic=float(s), embedding="reused" if it["reused"] else "computed")
        if cfg.watermark_model:
            model, model_labels["watermark"], dev, dt = load_detector(cfg.watermark_model, cfg.device, cfg.dtype)
            probs = watermark_probability(model, np.stack([it["pixels"] for it in items]), dev, dt)
            for o, p in zip(out, probs.tolist()):
                o["watermark"] = float(p)
        return out

    def finish(sample: Sample, res: dict[str, Any]) -> Sample | Rejected:
        return decide(sample, res, cfg, model_labels)

    return BatchPlan(prepare, infer, finish, batch_size=cfg.batch_size, threads=cfg.decode_threads)


def decide(sample: Sample, scores: dict[str, Any], cfg: Config, model_labels: dict[str, str]) -> Sample | Rejected:
    """Record the scores and the models that made them; reject below/at the thresholds, with the score."""
    record: dict[str, Any] = {"min_aesthetic": cfg.min_aesthetic, "max_watermark": cfg.max_watermark, **scores}
    if "aesthetic" in scores:
        record.update(aesthetic_head=model_labels["aesthetic"], clip_model=model_labels["clip_model"],
                      clip_pretrained=model_labels["clip_pretrained"])
    if "watermark" in scores:
        record.update(watermark_model=model_labels["watermark"], watermark_size=cfg.watermark_size)
    why = None
    if cfg.min_aesthetic is not None and scores["aesthetic"] < cfg.min_aesthetic:
        why = LOW_AESTHETIC, f"aesthetic score {scores['aesthetic']:.4f} < {cfg.min_aesthetic}"
    elif cfg.max_watermark is not None and scores["watermark"] >= cfg.max_watermark:
        why = WATERMARK, f"p(watermark) {scores['watermark']:.4f} >= {cfg.max_watermark}"
    record["keep"] = why is None
    record_stage(sample, NAME, record)
    return sample if why is None else reject(sample, *why)


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Score every sample; one output per input, in input order."""
    yield from map_batched(samples, _plan(cfg))
