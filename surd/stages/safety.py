"""safety: samples with an image (and clip.npy from clip_filter, if any) → the same samples minus unsafe ones.

Metadata first (json["nsfw"] as the sources record it): Civitai's browsingLevel (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX,
32 Blocked) above ``max_browsing_level`` (2: Civitai's own SFW levels), or without it the deprecated nsfwLevel
string (None 1, Soft 2, Mature 4, X 8, Blocked 32); DiffusionDB's image_nsfw / prompt_nsfw above their limits
(image_nsfw 2.0 marks an image Stable Diffusion's filter blurred); otherwise a source's ``nsfw`` flag (Lexica).
Unsafe → ``nsfw_metadata``, and no classifier runs. Then the classifier: ``laion_clip`` (LAION's CLIP-based head on
the image embedding, reusing clip.npy when clip_filter made it with ``clip_model``/``clip_pretrained``: no second
CLIP pass), ``nudenet`` (NudeNet's ONNX detector; score = its best detection of ``nudenet_classes``) or ``none``;
score >= ``threshold`` → ``nsfw_classifier``. json["stages"]["safety"] records verdicts, model and score.
"""

from __future__ import annotations

import importlib.metadata as md
import numbers
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from surd.batching import BatchPlan, Done, decode_rgb, map_batched
from surd.deps import require
from surd.embed.prompt2vec import vector_from_npy
from surd.models import DECODE_THREADS_HELP, DEVICE_HELP, DTYPE_HELP, DTYPES, TINY, parse_spec
from surd.models.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, clip_labels, load_clip
from surd.models.nsfw import load_head
from surd.models.nudenet import BUNDLED, LABELS, UNSAFE, load_detector, preprocess, unsafe_score
from surd.options import config, option
from surd.sample import Rejected, Sample, record_stage, reject
from surd.stages.clip_filter import EMBEDDING_MEMBER

NAME = "safety"
USES_GPU = True
METADATA, CLASSIFIER = "nsfw_metadata", "nsfw_classifier"
CLASSIFIERS = ("laion_clip", "nudenet", "none")
CIVITAI_LEVELS = {"None": 1, "Soft": 2, "Mature": 4, "X": 8, "Blocked": 32}  # Civitai's nsfwLevelReverseMapDeprecated


@config
class Config:
    """Metadata limits, the classifier and its threshold, and batching (see `surd safety --help`)."""

    classifier: str = option("nudenet", help="nudenet (NudeNet's ONNX detector, shipped in its wheel), laion_clip "
                             "(LAION's CLIP-based head; needs --head), or none (metadata only).", choices=CLASSIFIERS)
    threshold: float = option(0.5, help="Reject when the classifier's NSFW score is at least this (a probability).",
                              ge=0.0, le=1.0)
    max_browsing_level: int = option(2, help="Civitai: reject browsingLevel above this (1 PG, 2 PG-13, 4 R, 8 X, "
                                     "16 XXX).")
    max_image_nsfw: float | None = option(0.5, help="DiffusionDB: reject image_nsfw above this.")
    max_prompt_nsfw: float | None = option(0.5, help="DiffusionDB: reject prompt_nsfw above this.")
    head: str = option("", help="laion_clip head: a local .safetensors or LAION .pth file, a hub id, or tiny.")
    clip_model: str = option(DEFAULT_MODEL, help="The CLIP the head reads (ViT-B-32 or ViT-L-14); clip.npy "
                             "embeddings stored by clip-filter with the same CLIP are reused.")
    clip_pretrained: str = option(DEFAULT_PRETRAINED, help="open_clip weights tag or checkpoint file.")
    nudenet_model: str = option(BUNDLED, help=f"'{BUNDLED}' (the wheel's 320n.onnx) or a NudeNet .onnx file.")
    nudenet_resolution: int = option(320, help="NudeNet input side (640 for 640m.onnx).", ge=32)
    nudenet_classes: tuple[str, ...] = option(UNSAFE, help="NudeNet classes whose detection counts as NSFW "
                                              "(repeat the option for several).", choices=LABELS)
    batch_size: int = option(32, help="Images per batch.", ge=1)
    decode_threads: int = option(2, help=DECODE_THREADS_HELP, ge=1)
    device: str = option("auto", help=DEVICE_HELP)
    dtype: str = option("auto", help=DTYPE_HELP, choices=DTYPES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nudenet_classes", tuple(self.nudenet_classes))
        if self.clip_model == TINY and self.clip_pretrained == DEFAULT_PRETRAINED:
            object.__setattr__(self, "clip_pretrained", "")  # as clip_filter: tiny has only its random weights
        if self.classifier == "laion_clip":
            if not self.head:
                raise ValueError("classifier laion_clip needs head: tiny, a local LAION head file "
                                 "(clip_ViT-B-32_openai_binary_nsfw_head.pth), or a hub id")
            parse_spec(self.head)  # a missing local file is named now, not in every shard
        if not self.nudenet_classes:
            raise ValueError(f"nudenet_classes must be a non-empty subset of {', '.join(LABELS)}")


def versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "open_clip_torch", "onnxruntime", "nudenet"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def metadata_verdict(nsfw: Any, cfg: Config) -> tuple[str, str]:
    """("unsafe" | "safe" | "unknown", why) from a sample's json["nsfw"]."""

    def by_level(level: int, what: str) -> tuple[str, str]:
        over = level > cfg.max_browsing_level
        return ("unsafe" if over else "safe"), f"{what} -> level {level} {'>' if over else '<='} {cfg.max_browsing_level}"

    if isinstance(nsfw, bool):
        return ("unsafe", "flagged nsfw by the source") if nsfw else ("safe", "not flagged by the source")
    if not isinstance(nsfw, dict):
        return "unknown", "no nsfw metadata"
    level, name = nsfw.get("browsing_level"), nsfw.get("level")
    if isinstance(level, int) and not isinstance(level, bool) and level > 0:
        return by_level(level, f"Civitai browsingLevel {level}")
    if isinstance(name, str) and name in CIVITAI_LEVELS:
        return by_level(CIVITAI_LEVELS[name], f"Civitai nsfwLevel {name}")
    scored = False
    for col, limit in (("image_nsfw", cfg.max_image_nsfw), ("prompt_nsfw", cfg.max_prompt_nsfw)):
        value = nsfw.get(col)
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and limit is not None:
            scored = True
            if value > limit:
                blurred = " (blurred by Stable Diffusion's safety filter)" if col == "image_nsfw" and value == 2.0 else ""
                return "unsafe", f"DiffusionDB {col} {value:.3f} > {limit}{blurred}"
    if scored:
        return "safe", "DiffusionDB scores within limits"
    if isinstance(nsfw.get("nsfw"), bool):
        return metadata_verdict(nsfw["nsfw"], cfg)
    return "unknown", "no nsfw metadata"


def _screen(sample: Sample, cfg: Config) -> Done | tuple[str, str]:
    """Done(reject) on unsafe metadata, Done(sample) when no classifier runs, else the metadata verdict."""
    verdict, why = metadata_verdict(sample["json"].get("nsfw"), cfg)
    if verdict == "unsafe" or cfg.classifier == "none":
        record_stage(sample, NAME, {"metadata": verdict, "metadata_detail": why, "classifier": cfg.classifier,
                                    "score": None, "threshold": cfg.threshold, "keep": verdict != "unsafe"})
        return Done(reject(sample, METADATA, why) if verdict == "unsafe" else sample)
    return verdict, why


def _decide(sample: Sample, cfg: Config, verdict: tuple[str, str], score: float, extra: dict[str, Any]) -> Any:
    keep = score < cfg.threshold
    record_stage(sample, NAME, {"metadata": verdict[0], "metadata_detail": verdict[1], "classifier": cfg.classifier,
                                **extra, "score": score, "threshold": cfg.threshold, "keep": keep})
    return sample if keep else reject(sample, CLASSIFIER, f"{cfg.classifier} score {score:.4f} >= {cfg.threshold}")


def _stored_embedding(sample: Sample, labels: tuple[str, str]) -> Any:
    """clip_filter's clip.npy when it was computed by the CLIP named by `labels`, else None."""

    rec = (sample["json"].get("stages") or {}).get("clip_filter") or {}
    if EMBEDDING_MEMBER not in sample or (rec.get("model"), rec.get("pretrained")) != labels:
        return None
    return vector_from_npy(sample[EMBEDDING_MEMBER])


def _laion_plan(cfg: Config) -> BatchPlan:
    torch = require("torch", "safety")
    labels = clip_labels(cfg.clip_model, cfg.clip_pretrained)
    head_label: list[str] = []

    def prepare(sample: Sample) -> Any:
        screened = _screen(sample, cfg)
        if isinstance(screened, Done):
            return screened
        stored = _stored_embedding(sample, labels)
        return (screened, "reused", stored) if stored is not None else (screened, "computed", decode_rgb(sample))

    def infer(items: list[Any]) -> list[tuple[float, Any, str]]:
        vectors = [it[2] if it[1] == "reused" else None for it in items]
        todo = [k for k, it in enumerate(items) if it[1] == "computed"]
        if todo:  # the images clip_filter did not embed with this CLIP: one CLIP pass over them only
            clip = load_clip(cfg.clip_model, cfg.clip_pretrained, device=cfg.device, dtype=cfg.dtype)
            images = torch.stack([clip.preprocess(items[k][2]) for k in todo]).to(clip.device, clip.dtype)
            with torch.inference_mode():
                emb = clip.model.encode_image(images, normalize=True).float().cpu().numpy()
            for k, e in zip(todo, emb):
                vectors[k] = e.astype(np.float16)  # stored precision: reused and computed give the same score
        x = torch.from_numpy(np.stack(vectors).astype(np.float32))
        head, label = load_head(cfg.head, x.shape[1])
        head_label[:] = [label]
        with torch.inference_mode():
            scores = head(x).tolist()
        return [(float(sc), it[0], it[1]) for sc, it in zip(scores, items)]

    def finish(sample: Sample, res: tuple[float, Any, str]) -> Any:
        score, verdict, source = res
        return _decide(sample, cfg, verdict, score, {"head": head_label[0], "clip_model": labels[0],
                                                     "clip_pretrained": labels[1], "embedding": source})

    return BatchPlan(prepare, infer, finish, batch_size=cfg.batch_size, threads=cfg.decode_threads)


def _nudenet_plan(cfg: Config) -> BatchPlan:
    detector = load_detector(cfg.nudenet_model, cfg.nudenet_resolution)  # before any sample: load errors stop the run

    def prepare(sample: Sample) -> Any:
        screened = _screen(sample, cfg)
        if isinstance(screened, Done):
            return screened
        return (screened, *preprocess(decode_rgb(sample), cfg.nudenet_resolution))

    def infer(items: list[Any]) -> list[tuple[Any, list[dict[str, Any]]]]:
        found = detector.detect([it[1] for it in items], [it[2] for it in items])
        return [(it[0], dets) for it, dets in zip(items, found)]

    def finish(sample: Sample, res: tuple[Any, list[dict[str, Any]]]) -> Any:
        verdict, dets = res
        return _decide(sample, cfg, verdict, unsafe_score(dets, cfg.nudenet_classes),
                       {"model": detector.label, "classes": list(cfg.nudenet_classes), "detections": dets})

    return BatchPlan(prepare, infer, finish, batch_size=cfg.batch_size, threads=cfg.decode_threads)


def _metadata_plan(cfg: Config) -> BatchPlan:
    return BatchPlan(lambda s: _screen(s, cfg), lambda items: [], lambda s, r: s, batch_size=cfg.batch_size,
                     threads=cfg.decode_threads)


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Judge every sample; one output per input, in input order."""
    plans = {"laion_clip": _laion_plan, "nudenet": _nudenet_plan, "none": _metadata_plan}
    yield from map_batched(samples, plans[cfg.classifier](cfg))
