"""`surd caption`: BLIP (or any image-to-text model's) captions → each sample's simple prompt (the caption stage as
a command)."""

from __future__ import annotations

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
from surd.models.clip import DEFAULT_MODEL as CLIP_DEFAULT
from surd.models.clip import DEFAULT_PRETRAINED as CLIP_PRETRAINED
from surd.stages.caption import Config


def caption_cmd(
    input_dir: str = IN,
    out: str = OUT,
    model: str = typer.Option(BLIP_DEFAULT, help="Captioner: BLIP (the paper's), or any transformers image-to-text "
                              "model (BLIP-2, Florence-2, Qwen2-VL, ...): a hub id, a local folder, tiny (BLIP), "
                              "tiny-blip2, tiny-florence2 or tiny-qwen2-vl."),
    revision: str = typer.Option(None, help="Hub revision (branch, tag or commit) of --model."),
    lavis_checkpoint: str = typer.Option(None, help="LAVIS BLIP caption checkpoint (.pth or .safetensors), e.g. "
                                         "blip_coco_caption_base.pth (the paper's base_coco), loaded into --model's "
                                         "architecture."),
    prompt: str = typer.Option("a picture of ", help="BLIP: generation prompt, stripped from the caption."),
    instruction: str = typer.Option("", help="Other models: the instruction (chat models) or task token "
                                    "(Florence-2: <CAPTION>, <DETAILED_CAPTION>, ...); empty = the family's default."),
    num_beams: int = typer.Option(3, help="Beam search width."),
    min_length: int = typer.Option(10, help="Minimum tokens (BLIP: prompt included; other models: new tokens)."),
    max_length: int = typer.Option(30, help="Maximum tokens (BLIP: prompt included; other models: new tokens)."),
    candidates: int = typer.Option(1, help="Captions per image; above 1, CLIP keeps the closest (LAION-COCO) and "
                                   "all are stored."),
    rank_clip_model: str = typer.Option(CLIP_DEFAULT, help="The CLIP that ranks candidates."),
    rank_clip_pretrained: str = typer.Option(CLIP_PRETRAINED, help="Its open_clip weights tag or checkpoint file."),
    batch_size: int = typer.Option(16, help="Images per batch (halved automatically on out-of-memory)."),
    decode_threads: int = DECODE_THREADS,
    device: str = DEVICE,
    dtype: str = DTYPE,
    overwrite: bool = typer.Option(False, help="Replace simple prompts the samples already have."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Caption every image into simple_prompt: BLIP with the paper's settings by default, or any image-to-text model.

    Example: surd caption runs/mine/00_ingest --out runs/mine/01_caption --model Salesforce/blip-image-captioning-base
    """
    cfg = Config(model=model, revision=revision, lavis_checkpoint=lavis_checkpoint, prompt=prompt,
                 instruction=instruction, num_beams=num_beams, min_length=min_length, max_length=max_length,
                 candidates=candidates, rank_clip_model=rank_clip_model, rank_clip_pretrained=rank_clip_pretrained,
                 batch_size=batch_size, decode_threads=decode_threads, device=device, dtype=dtype, overwrite=overwrite)
    run_and_report("caption", cfg, out, input_dir, workers=workers, retries=retries, executor=executor,
                   address=address)


def register(app: typer.Typer) -> None:
    """Add `surd caption` to the app."""
    app.command("caption")(caption_cmd)
