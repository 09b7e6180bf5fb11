"""`surd embed`: LLM layer-wise mean vectors of the simple prompts (the embed stage as a command)."""

from __future__ import annotations

from pathlib import Path

import typer

from surd.commands.common import ADDRESS, EXECUTOR, RETRIES, WORKERS, run_and_report
from surd.stages.embed import Config


def embed_cmd(
    input_dir: Path = typer.Argument(..., help="Input dataset directory (shards with json.simple_prompt)."),
    llm: str = typer.Option(..., "--llm", help="7b, 13b, 33b, 65b (LLaMA-1), a hub id, a local model folder, or tiny."),
    layer: int = typer.Option(..., "--layer", help="1-based block whose output is averaged (-1 = last). "
                              "--layer 40 on 13b reproduces the official prompt2vec/13B/39.pt."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory."),
    final_norm: bool = typer.Option(False, "--final-norm", help="Apply the model's final norm to the layer output."),
    exclude_bos: bool = typer.Option(False, "--exclude-bos", help="Leave the BOS/CLS token out of the mean "
                                     "(the official recipe includes it)."),
    batch_size: int = typer.Option(32, help="Prompts per forward (sorted by length, so padding stays small)."),
    max_length: int = typer.Option(None, help="Cut longer prompts to this many tokens (default: the model's "
                                   "context); cut prompts are flagged truncated in their json."),
    device: str = typer.Option("auto", help="auto (cuda, then mps, then cpu) or a torch device; several GPUs are "
                               "used together through device_map=auto."),
    dtype: str = typer.Option("auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), fp32, fp16 or bf16."),
    quantize: str = typer.Option(None, help="8bit or 4bit (bitsandbytes) to fit big models; CHANGES the vectors."),
    cache_dir: str = typer.Option(None, help="Shared vector cache folder: reruns and repeated prompts cost nothing."),
    padding_side: str = typer.Option("right", help="right or left; both give the same vectors."),
    revision: str = typer.Option(None, help="Hub revision (branch, tag or commit) of --llm."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Add llm.npy to every sample: the mean over tokens of one LLM layer's hidden states of its simple prompt.

    Example: surd embed runs/mine/03_review --llm 33b --layer 60 --out runs/mine/04_embed --cache-dir ~/.cache/surd/embed
    """
    cfg = Config(llm=llm, layer=layer, final_norm=final_norm, exclude_bos=exclude_bos, batch_size=batch_size,
                 max_length=max_length, device=device, dtype=dtype, quantize=quantize, cache_dir=cache_dir,
                 padding_side=padding_side, revision=revision)
    run_and_report("embed", cfg, out, input_dir, workers=workers, retries=retries, executor=executor, address=address)


def register(app: typer.Typer) -> None:
    """Add `surd embed`."""
    app.command("embed")(embed_cmd)
