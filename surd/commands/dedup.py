"""`surd dedup`: remove near-duplicate images across the whole dataset (the dedup stage as a command)."""

from __future__ import annotations

from pathlib import Path

import typer

from surd.commands.common import ADDRESS, DECODE_THREADS, EXECUTOR, IN, OUT, RETRIES, WORKERS, run_and_report
from surd.stages.dedup import Config


def dedup_cmd(
    input_dir: Path = IN,
    out: Path = OUT,
    max_distance: int = typer.Option(8, help="Drop an image whose 64-bit pHash is within this many bits of an "
                                     "earlier kept one (0 = identical hashes only)."),
    prompt_dedup: bool = typer.Option(False, help="Also drop samples repeating an earlier kept sample's complex "
                                      "prompt (case, punctuation and spacing ignored)."),
    decode_threads: int = DECODE_THREADS,
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Remove near-duplicate images across the whole dataset; the first in shard order is kept.

    Every drop is a `near_duplicate` (or `duplicate_prompt`) reject whose detail names the kept sample's key.

    Example: surd dedup runs/mine/00_ingest --out runs/mine/01_dedup --max-distance 8
    """
    cfg = Config(max_distance=max_distance, prompt_dedup=prompt_dedup, decode_threads=decode_threads)
    run_and_report("dedup", cfg, out, input_dir, workers=workers, retries=retries, executor=executor,
                   address=address)


def register(app: typer.Typer) -> None:
    """Add `surd dedup` to the app."""
    app.command("dedup")(dedup_cmd)
