"""`surd safety`: remove unsafe images by source metadata and by an NSFW classifier (the safety stage as a command)."""

from __future__ import annotations

from pathlib import Path

import typer

from surd.commands.common import (
    ADDRESS,
    DECODE_THREADS,
    DEVICE,
    DTYPE,
    EXECUTOR,
    IN,
    OUT,
    RETRIES,
    WORKERS,
    run_and_report,
)
from surd.models.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED
from surd.models.nudenet import BUNDLED, UNSAFE
from surd.stages.safety import Config


def safety_cmd(
    input_dir: Path = IN,
    out: Path = OUT,
    classifier: str = typer.Option("nudenet", help="nudenet (NudeNet's ONNX detector, shipped in its wheel), "
                                   "laion_clip (LAION's CLIP-based head; needs --head), or none (metadata only)."),
    threshold: float = typer.Option(0.5, help="Reject when the classifier's NSFW score is at least this."),
    max_browsing_level: int = typer.Option(2, help="Civitai: reject browsingLevel above this (1 PG, 2 PG-13, 4 R, "
                                           "8 X, 16 XXX)."),
    max_image_nsfw: float = typer.Option(0.5, help="DiffusionDB: reject image_nsfw above this."),
    max_prompt_nsfw: float = typer.Option(0.5, help="DiffusionDB: reject prompt_nsfw above this."),
    head: str = typer.Option("", help="laion_clip head: a local .safetensors or LAION .pth file, a hub id, or tiny."),
    clip_model: str = typer.Option(DEFAULT_MODEL, help="The CLIP the head reads (ViT-B-32 or ViT-L-14); clip.npy "
                                   "embeddings stored by clip-filter with the same CLIP are reused."),
    clip_pretrained: str = typer.Option(DEFAULT_PRETRAINED, help="open_clip weights tag or checkpoint file."),
    nudenet_model: str = typer.Option(BUNDLED, help=f"'{BUNDLED}' (the wheel's 320n.onnx) or a NudeNet .onnx file."),
    nudenet_resolution: int = typer.Option(320, help="NudeNet input side (640 for 640m.onnx)."),
    nudenet_classes: str = typer.Option(",".join(UNSAFE), help="NudeNet classes whose detection counts as NSFW."),
    batch_size: int = typer.Option(32, help="Images per batch."),
    decode_threads: int = DECODE_THREADS,
    device: str = DEVICE,
    dtype: str = DTYPE,
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Remove unsafe images: by source metadata (`nsfw_metadata`), then by an NSFW classifier (`nsfw_classifier`).

    Example: surd safety runs/mine/03_clip_filter --out runs/mine/04_safety --classifier nudenet --threshold 0.5
    """
    classes = tuple(c.strip() for c in nudenet_classes.split(",") if c.strip())
    cfg = Config(classifier=classifier, threshold=threshold, max_browsing_level=max_browsing_level,
                 max_image_nsfw=max_image_nsfw, max_prompt_nsfw=max_prompt_nsfw, head=head, clip_model=clip_model,
                 clip_pretrained=clip_pretrained, nudenet_model=nudenet_model, nudenet_resolution=nudenet_resolution,
                 nudenet_classes=classes, batch_size=batch_size, decode_threads=decode_threads, device=device,
                 dtype=dtype)
    run_and_report("safety", cfg, out, input_dir, workers=workers, retries=retries, executor=executor,
                   address=address)


def register(app: typer.Typer) -> None:
    """Add `surd safety` to the app."""
    app.command("safety")(safety_cmd)
