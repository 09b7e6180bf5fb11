"""`surd embed` (LLM layer-wise mean vectors of the simple prompts) and `surd export prompt2vec`."""

from __future__ import annotations

from pathlib import Path

import typer


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
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (1 = in this process; one per GPU)."),
    retries: int = typer.Option(2, help="Retries of a failed shard before it is reported as failed."),
    executor: str = typer.Option("local", help="local (this machine) or ray (a Ray cluster)."),
    address: str = typer.Option(None, help="Ray cluster address for --executor ray, e.g. auto."),
) -> None:
    """Add llm.npy to every sample: the mean over tokens of one LLM layer's hidden states of its simple prompt.

    Example: surd embed runs/mine/03_review --llm 33b --layer 60 --out runs/mine/04_embed --cache-dir ~/.cache/surd/embed
    """
    from surd.cli import report
    from surd.runner import run_stage
    from surd.stages.embed import Config

    cfg = Config(llm=llm, layer=layer, final_norm=final_norm, exclude_bos=exclude_bos, batch_size=batch_size,
                 max_length=max_length, device=device, dtype=dtype, quantize=quantize, cache_dir=cache_dir,
                 padding_side=padding_side, revision=revision)
    report(run_stage("embed", cfg, out, input_dir=input_dir, workers=workers, retries=retries, executor=executor,
                     address=address))


def prompt2vec_cmd(
    input_dir: Path = typer.Argument(..., help="Output directory of `surd embed`."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write (.safetensors, or .pt with --pt)."),
    pt: bool = typer.Option(False, "--pt", help="Write torch.save's .pt (pickle) instead of safetensors."),
) -> None:
    """Write {simple prompt: vector} in the official SUR-adapter trainer's format (tensor name = prompt).

    Example: surd export prompt2vec runs/mine/04_embed --out prompt2vec/33B/59.safetensors
    """
    from surd.embed.export import export_prompt2vec

    meta = export_prompt2vec(input_dir, out, fmt="pt" if pt else "safetensors")
    typer.echo(f"{out}: {meta['count']} prompts x {meta['dim']} from {meta['model']} layer {meta['layer']} "
               f"(official index {meta['official_index']})")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add `surd embed` and `surd export prompt2vec`."""
    app.command("embed")(embed_cmd)
    groups["export"].command("prompt2vec")(prompt2vec_cmd)
