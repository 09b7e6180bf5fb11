"""`surd eval` configuration: what to generate (base model, adapters, prompts, seeds, sampler) and which models
score the images (CLIP, BLIP VQA, BRISQUE, MUSIQ, CLIP-IQA)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from surd.models.detector import DEFAULT_DETECTOR
from surd.models.vqa import DEFAULT_VQA

BASELINE = "baseline"
METRICS = ("clip", "vqa", "detect", "brisque", "musiq", "clip_iqa")
PIPELINES = ("sd", "sag", "panorama")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class MetricModels:
    """Which model computes each metric: a hub id / library name, a local path, or ``tiny``.

    detector: the open-vocabulary detector of the second judge (colours by ``clip``); detect_threshold its minimum
    confidence for an object to count (part of the scores' key: another threshold rescores).
    """

    clip: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    vqa: str = DEFAULT_VQA
    detector: str = DEFAULT_DETECTOR
    detect_threshold: float = 0.3
    brisque: str = "brisque"
    musiq: str = "musiq"
    clip_iqa: str = "clip_iqa"

    @classmethod
    def tiny(cls) -> MetricModels:
        return cls(clip="tiny", clip_pretrained="", vqa="tiny", detector="tiny", brisque="tiny", musiq="tiny",
                   clip_iqa="tiny")

    def __post_init__(self) -> None:
        if not 0.0 < self.detect_threshold < 1.0:
            raise ValueError(f"detect_threshold must be in (0, 1), got {self.detect_threshold}")


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: baseline and adapter images with identical seeds and scheduler, then every metric.

    adapters: adapter folders, each ``DIR`` (named after the folder) or ``NAME=DIR``.
    images_per_prompt: seeds ``seed … seed + n - 1``, the same for every prompt and model.
    batch_size: images per scoring batch (generation makes each image alone, so its bytes never depend on it).
    paper_setting: the paper's row the report compares with, "MODEL / METHOD" (e.g. "DM (cartoon) / MultiDiffusion");
    empty = the one matching the run (`surd.eval.paper.setting_for`).
    """

    base: str
    adapters: tuple[str, ...]
    out: str
    prompts: str = "paper"
    images_per_prompt: int = 10
    seed: int = 0
    steps: int = 50
    guidance: float = 7.5
    size: int | None = None
    negative_prompt: str = ""
    pipeline: str = "sd"
    batch_size: int = 8
    paper_setting: str = ""
    metrics: tuple[str, ...] = METRICS
    models: MetricModels = field(default_factory=MetricModels)
    device: str = "auto"
    dtype: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapters", tuple(self.adapters))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if isinstance(self.models, dict):
            object.__setattr__(self, "models", MetricModels(**self.models))
        if not self.adapters:
            raise ValueError("pass at least one --adapter DIR (a folder written by `surd train-adapter`)")
        if not 1 <= self.images_per_prompt <= 1000:
            raise ValueError(f"images_per_prompt must be 1..1000, got {self.images_per_prompt}")
        if not 1 <= self.steps <= 1000:
            raise ValueError(f"steps must be 1..1000 denoising steps, got {self.steps}")
        if not 1 <= self.batch_size <= 256:
            raise ValueError(f"batch_size must be 1..256 images, got {self.batch_size}")
        if self.size is not None and (self.size < 32 or self.size % 8):
            raise ValueError(f"size must be a multiple of 8 and at least 32 pixels, got {self.size}")
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, got {self.pipeline!r}")
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
        self.model_dirs(check=False)  # names now; folders when images are generated (a report needs none)

    def model_dirs(self, check: bool = True) -> dict[str, Path]:
        """Adapter name → folder, in the given order; names must be unique and not 'baseline'."""
        out: dict[str, Path] = {}
        for spec in self.adapters:
            name, sep, path = spec.partition("=")
            if not sep:
                name, path = Path(spec.rstrip("/")).name or "adapter", spec
            folder = Path(os.path.expanduser(path))
            if not _NAME.match(name) or name == BASELINE or name in out:
                raise ValueError(f"adapter name {name!r} must be unique, not {BASELINE!r}, and 1-64 letters, digits, "
                                 f"'.', '_' or '-': pass --adapter NAME=DIR")
            if check and not (folder / "adapter_config.json").is_file():
                raise FileNotFoundError(f"{folder} holds no adapter_config.json: pass a folder written by "
                                        f"`surd train-adapter` (or `surd import-adapter`)")
            out[name] = folder
        return out

    def generation(self) -> dict[str, Any]:
        """What determines the images: changing any of it needs a new output folder."""
        return {"base": self.base, "steps": self.steps, "guidance": self.guidance, "size": self.size,
                "negative_prompt": self.negative_prompt, "pipeline": self.pipeline}

    def metrics_key(self) -> str:
        """A short hash of the scoring models: scores cached under another key are recomputed."""
        blob = json.dumps({"models": asdict(self.models), "metrics": sorted(self.metrics)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "adapters": list(self.adapters), "metrics": list(self.metrics)}
