"""`surd clip-filter`: keep samples whose image CLIP matches the simple prompt at least as well as the complex one."""

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
from surd.models.clip import DEFAULT_MODEL as CLIP_DEFAULT
from surd.models.clip import DEFAULT_PRETRAINED
from surd.stages.clip_filter import Config


def clip_filter_cmd(
    input_dir: Path = IN,
    out: Path = OUT,
    model: str = typer.Option(CLIP_DEFAULT, help="open_clip architecture (ViT-B-32), a local open_clip folder, "
                              "or tiny."),
    pretrained: str = typer.Option(DEFAULT_PRETRAINED, help="open_clip weights tag (openai) or a local checkpoint "
                                   "file; '' for random weights."),
    min_simple_score: float = typer.Option(None, help="Also reject samples whose cos(image, simple) is below this."),
    batch_size: int = typer.Option(64, help="Images per batch (halved automatically on out-of-memory)."),
    decode_threads: int = DECODE_THREADS,
    device: str = DEVICE,
    dtype: str = DTYPE,
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Keep samples whose image CLIP matches at least as well to the simple prompt as to the complex one.

    Example: surd clip-filter runs/mine/01_caption --out runs/mine/02_clip_filter --model ViT-B-32 --pretrained openai
    """
    cfg = Config(model=model, pretrained=pretrained, min_simple_score=min_simple_score, batch_size=batch_size,
                 decode_threads=decode_threads, device=device, dtype=dtype)
    run_and_report("clip_filter", cfg, out, input_dir, workers=workers, retries=retries, executor=executor,
                   address=address)


def register(app: typer.Typer) -> None:
    """Add `surd clip-filter` to the app."""
    app.command("clip-filter")(clip_filter_cmd)
