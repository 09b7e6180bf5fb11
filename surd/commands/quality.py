"""`surd quality`: LAION's aesthetic and watermark scores per sample, with optional thresholds (the quality stage)."""

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
from surd.models.watermark import INPUT_SIZE
from surd.stages.quality import Config


def quality_cmd(
    input_dir: Path = IN,
    out: Path = OUT,
    aesthetic_head: str = typer.Option("", help="LAION aesthetic predictor: sac+logos+ava1-l14-linearMSE.pth (MLP, "
                                       "ViT-L/14), sa_0_4_vit_b_32_linear.pth (linear, ViT-B/32), a .safetensors "
                                       "copy, owner/repo:file, or tiny / tiny:linear. Empty: no aesthetic score."),
    clip_model: str = typer.Option(DEFAULT_MODEL, help="The CLIP the aesthetic head reads; clip.npy stored by "
                                   "clip-filter with the same CLIP is reused (no second CLIP pass)."),
    clip_pretrained: str = typer.Option(DEFAULT_PRETRAINED, help="open_clip weights tag or checkpoint file."),
    watermark_model: str = typer.Option("", help="LAION's watermark_model_v1.pt (or .safetensors), owner/repo:file, "
                                        "or tiny. Empty: no watermark score."),
    watermark_size: int = typer.Option(INPUT_SIZE, help="The watermark detector's input side."),
    min_aesthetic: float = typer.Option(None, help="Reject an aesthetic score below this (e.g. 5 or 6)."),
    max_watermark: float = typer.Option(None, help="Reject p(watermark) at or above this (e.g. 0.5)."),
    batch_size: int = typer.Option(32, help="Images per batch."),
    decode_threads: int = DECODE_THREADS,
    device: str = DEVICE,
    dtype: str = DTYPE,
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Score images with LAION's aesthetic predictor and watermark detector; reject below/at the thresholds.

    Example: surd quality runs/mine/03_clip_filter --out runs/mine/04_quality --aesthetic-head models/sa_0_4_vit_b_32_linear.pth --min-aesthetic 5
    """
    cfg = Config(aesthetic_head=aesthetic_head, clip_model=clip_model, clip_pretrained=clip_pretrained,
                 watermark_model=watermark_model, watermark_size=watermark_size, min_aesthetic=min_aesthetic,
                 max_watermark=max_watermark, batch_size=batch_size, decode_threads=decode_threads, device=device,
                 dtype=dtype)
    run_and_report("quality", cfg, out, input_dir, workers=workers, retries=retries, executor=executor,
                   address=address)


def register(app: typer.Typer) -> None:
    """Add `surd quality` to the app."""
    app.command("quality")(quality_cmd)
