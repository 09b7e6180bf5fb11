"""`surd caption`: BLIP captions → each sample's simple prompt (the caption stage as a command)."""

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
from surd.models.blip import DEFAULT_MODEL as BLIP_DEFAULT
from surd.stages.caption import Config


def caption_cmd(
    input_dir: Path = IN,
    out: Path = OUT,
    model: str = typer.Option(BLIP_DEFAULT, help="BLIP captioner: a hub id, a local folder, or tiny."),
    revision: str = typer.Option(None, help="Hub revision (branch, tag or commit) of --model."),
    lavis_checkpoint: str = typer.Option(None, help="LAVIS BLIP caption checkpoint (.pth or .safetensors), e.g. "
                                         "blip_coco_caption_base.pth (the paper's base_coco), loaded into --model's "
                                         "architecture."),
    prompt: str = typer.Option("a picture of ", help="Generation prompt, stripped from the caption."),
    num_beams: int = typer.Option(3, help="Beam search width."),
    min_length: int = typer.Option(10, help="Minimum tokens, prompt included."),
    max_length: int = typer.Option(30, help="Maximum tokens, prompt included."),
    batch_size: int = typer.Option(16, help="Images per batch (halved automatically on out-of-memory)."),
    decode_threads: int = DECODE_THREADS,
    device: str = DEVICE,
    dtype: str = DTYPE,
    overwrite: bool = typer.Option(False, help="Replace simple prompts the samples already have."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Caption every image with BLIP into simple_prompt (the paper's settings by default).

    Example: surd caption runs/mine/00_ingest --out runs/mine/01_caption --model Salesforce/blip-image-captioning-base
    """
    cfg = Config(model=model, revision=revision, lavis_checkpoint=lavis_checkpoint, prompt=prompt,
                 num_beams=num_beams, min_length=min_length, max_length=max_length, batch_size=batch_size,
                 decode_threads=decode_threads, device=device, dtype=dtype, overwrite=overwrite)
    run_and_report("caption", cfg, out, input_dir, workers=workers, retries=retries, executor=executor,
                   address=address)


def register(app: typer.Typer) -> None:
    """Add `surd caption` to the app."""
    app.command("caption")(caption_cmd)
