"""`surd caption` and `surd clip-filter`: the model stages as commands (build a Config, call run_stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from surd.models.blip import DEFAULT_MODEL as BLIP_DEFAULT
from surd.models.clip import DEFAULT_MODEL as CLIP_DEFAULT
from surd.models.clip import DEFAULT_PRETRAINED

IN = typer.Argument(..., help="Input dataset directory (shards of the previous stage).")
OUT = typer.Option(..., "--out", "-o", help="Output dataset directory.")
WORKERS = typer.Option(1, "--workers", "-w", help="Worker processes, one per shard at a time (one per GPU).")
THREADS = typer.Option(2, help="Image decoding threads per worker, overlapped with the model.")
DEVICE = typer.Option("auto", help="auto (cuda, then mps, then cpu), or a torch device such as cuda:1.")
DTYPE = typer.Option("auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), fp32, fp16 or bf16.")
RETRIES = typer.Option(2, help="Retries of a failed shard before it is reported as failed.")
EXECUTOR = typer.Option("local", help="local (this machine) or ray (a Ray cluster).")
ADDRESS = typer.Option(None, help="Ray cluster address for --executor ray, e.g. auto.")


def _run(stage: str, cfg: Any, input_dir: Path, out: Path, workers: int, retries: int, executor: str,
         address: str | None) -> None:
    from surd.cli import report
    from surd.runner import run_stage

    report(run_stage(stage, cfg, out, input_dir, workers=workers, retries=retries, executor=executor,
                     address=address))


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
    decode_threads: int = THREADS,
    device: str = DEVICE,
    dtype: str = DTYPE,
    overwrite: bool = typer.Option(False, help="Replace simple prompts the samples already have."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Caption every image with BLIP into simple_prompt (the paper's settings by default).

    Example: surd caption runs/mine/00_ingest --out runs/mine/01_caption --model Salesforce/blip-image-captioning-base
    """
    from surd.stages.caption import Config

    cfg = Config(model=model, revision=revision, lavis_checkpoint=lavis_checkpoint, prompt=prompt,
                 num_beams=num_beams, min_length=min_length, max_length=max_length, batch_size=batch_size,
                 decode_threads=decode_threads, device=device, dtype=dtype, overwrite=overwrite)
    _run("caption", cfg, input_dir, out, workers, retries, executor, address)


def clip_filter_cmd(
    input_dir: Path = IN,
    out: Path = OUT,
    model: str = typer.Option(CLIP_DEFAULT, help="open_clip architecture (ViT-B-32), a local open_clip folder, "
                              "or tiny."),
    pretrained: str = typer.Option(DEFAULT_PRETRAINED, help="open_clip weights tag (openai) or a local checkpoint "
                                   "file; '' for random weights."),
    min_simple_score: float = typer.Option(None, help="Also reject samples whose cos(image, simple) is below this."),
    batch_size: int = typer.Option(64, help="Images per batch (halved automatically on out-of-memory)."),
    decode_threads: int = THREADS,
    device: str = DEVICE,
    dtype: str = DTYPE,
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Keep samples whose image CLIP matches at least as well to the simple prompt as to the complex one.

    Example: surd clip-filter runs/mine/01_caption --out runs/mine/02_clip_filter --model ViT-B-32 --pretrained openai
    """
    from surd.stages.clip_filter import Config

    cfg = Config(model=model, pretrained=pretrained, min_simple_score=min_simple_score, batch_size=batch_size,
                 decode_threads=decode_threads, device=device, dtype=dtype)
    _run("clip_filter", cfg, input_dir, out, workers, retries, executor, address)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add `surd caption` and `surd clip-filter` to the app."""
    app.command("caption")(caption_cmd)
    app.command("clip-filter")(clip_filter_cmd)
