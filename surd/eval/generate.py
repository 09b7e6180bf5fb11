"""Generate the evaluation images: baseline and every adapter, same pipeline, scheduler and seeds, resumable — an
image already on disk for (model, prompt, seed) is never generated again.

Each image is generated alone (a batch of one, its own seeded CPU generator), so its bytes depend only on (model,
prompt, seed, sampler settings) and never on which other images were missing: a resumed evaluation writes exactly
the images an uninterrupted one would. Batched denoising cannot promise that (a float kernel may reduce in another
order for another batch shape: measured on the sample adapter, 87 of 180 images differed between batch 1 and 4), so
``batch_size`` only batches the scoring.

Layout: ``OUT/images/<model>/<prompt id>/<seed>.png`` (model = ``baseline`` or the adapter's name).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from surd.adapter.inference import encode_prompts
from surd.deps import require
from surd.eval.config import BASELINE, EvalConfig
from surd.eval.prompts import EvalPrompt, PromptSet
from surd.files import write_bytes_atomic
from surd.models import resolve_device, resolve_dtype
from surd.models.sd import build_pipeline, load_sd


@dataclass(frozen=True)
class Job:
    model: str
    prompt: EvalPrompt
    seed: int


def seeds(cfg: EvalConfig) -> list[int]:
    return [cfg.seed + i for i in range(cfg.images_per_prompt)]


def model_names(cfg: EvalConfig) -> list[str]:
    return [BASELINE, *cfg.model_dirs(check=False)]


def image_path(out: str | Path, model: str, prompt_id: str, seed: int) -> Path:
    return Path(out) / "images" / model / prompt_id / f"{seed}.png"


def all_jobs(cfg: EvalConfig, prompts: PromptSet) -> list[Job]:
    """Every image of the evaluation, model by model, prompt by prompt, seed by seed."""
    return [Job(m, p, s) for m in model_names(cfg) for p in prompts.prompts for s in seeds(cfg)]


def missing(cfg: EvalConfig, prompts: PromptSet) -> list[Job]:
    return [j for j in all_jobs(cfg, prompts) if not image_path(cfg.out, j.model, j.prompt.id, j.seed).is_file()]


def file_digest(path: Path) -> str:
    """Identifies an image's bytes: a score row is valid only for the image it was computed from."""
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def _batches(jobs: list[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(jobs), size):
        yield jobs[start:start + size]


def _save_png(image: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    write_bytes_atomic(path, buf.getvalue())  # a killed run never leaves half an image that counts as done


def generate_images(cfg: EvalConfig, prompts: PromptSet) -> dict[str, Any]:
    """Generate every missing image; returns {"generated": n, "seconds": s}."""
    todo = missing(cfg, prompts)
    if not todo:
        return {"generated": 0, "seconds": 0.0}
    t0 = time.perf_counter()
    torch = require("torch", "eval")
    from surd.adapter.model import SURAdapter  # imports torch (the adapter extra)

    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    comps = load_sd(cfg.base)  # loads in fp32 on the CPU; moved only when needed (diffusers warns on every cast)
    if device.type != "cpu" or dtype != torch.float32:
        comps.to(device, dtype)
    pipe = build_pipeline(comps, kind=cfg.pipeline)
    side = cfg.size or comps.native_resolution
    dirs = cfg.model_dirs()
    with tqdm(total=len(todo), desc="generate", unit="img", disable=not cfg.progress) as bar:
        for name in model_names(cfg):
            jobs = [j for j in todo if j.model == name]
            if not jobs:
                continue
            adapter = None if name == BASELINE else SURAdapter.from_pretrained(
                dirs[name], base_text_dim=comps.text_dim, device=device)
            embeds: dict[str, tuple[Any, Any]] = {}
            for j in jobs:
                if j.prompt.id not in embeds:  # [1, 77, d] each; the same tensors whichever images are missing
                    embeds[j.prompt.id] = encode_prompts(pipe, adapter, [j.prompt.text], [cfg.negative_prompt])
                pe, npe = embeds[j.prompt.id]
                # A batch of one with its own CPU generator: the image depends on its seed alone (module docstring).
                gen = torch.Generator(device="cpu").manual_seed(j.seed)
                image = pipe(prompt_embeds=pe, negative_prompt_embeds=npe, generator=[gen], output_type="pil",
                             num_inference_steps=cfg.steps, guidance_scale=cfg.guidance, height=side,
                             width=side).images[0]
                _save_png(image, image_path(cfg.out, j.model, j.prompt.id, j.seed))
                bar.update(1)
    del pipe, comps
    return {"generated": len(todo), "seconds": time.perf_counter() - t0}
