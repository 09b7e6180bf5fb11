"""`surd export …`: datasets out to the formats other tools read."""

from __future__ import annotations

from pathlib import Path

import typer

from surd.embed.prompt2vec import export_prompt2vec
from surd.export.imagefolder import ExportConfig, export_imagefolder

export_app = typer.Typer(help="Export a dataset to other tools' formats.\n\n"
                         "Example: surd export imagefolder runs/sample/03_embed --out exports/sample --prompt2vec tiny/0",
                         no_args_is_help=True)


def prompt2vec_cmd(
    input_dir: str = typer.Argument(..., help="Output directory of `surd embed`."),
    out: str = typer.Option(..., "--out", "-o", help="File to write (.safetensors, or .pt with --pt); a path or URL."),
    pt: bool = typer.Option(False, "--pt", help="Write torch.save's .pt (pickle) instead of safetensors."),
) -> None:
    """Write {simple prompt: vector} in the official SUR-adapter trainer's format (tensor name = prompt).

    Example: surd export prompt2vec runs/mine/04_embed --out prompt2vec/33B/59.safetensors
    """
    meta = export_prompt2vec(input_dir, out, fmt="pt" if pt else "safetensors")
    typer.echo(f"{out}: {meta['count']} prompts x {meta['dim']} from {meta['model']} layer {meta['layer']} "
               f"(official index {meta['official_index']})")


def imagefolder_cmd(
    input_dir: Path = typer.Argument(..., help="A stage's output directory (any stage: its kept samples)."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder to write (refused if it exists and is not empty)."),
    test_fraction: float = typer.Option(0.0, help="Share of samples in a test/ split (0 = one folder, no split)."),
    prompt2vec: str = typer.Option("", help="Also write prompt2vec/LLM/LAYER.pt (official names: 7B, 13B, 30B; "
                                           "LAYER 0-based, so `surd embed --layer 40` is 39). Needs an embed stage."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Write a Hugging Face imagefolder (images + metadata.jsonl: file_name, text, prompt, ...) for other tools.

    The official trainer reads it as it is: run SUR_adapter_train.py in OUT with --train_data_dir . (prompt2vec/
    is found there). `datasets.load_dataset("imagefolder", data_dir=OUT)` loads it; `surd ingest folder` reads it back.

    Example: surd export imagefolder runs/x/04_embed --out exports/surd --prompt2vec 30B/59 --test-fraction 0.05
    """
    summary = export_imagefolder(input_dir, out, ExportConfig(test_fraction=test_fraction, prompt2vec=prompt2vec),
                                 progress=progress)
    splits = ", ".join(f"{name} {n}" for name, n in summary["splits"].items())
    typer.echo(f"{out}: {splits} samples (images as stored, metadata.jsonl per folder)")
    if summary["without_simple_prompt"]:
        typer.echo(f"  {summary['without_simple_prompt']} have no simple prompt yet (text is empty): "
                   "export a stage after `surd caption` for the official trainer")
    if summary["prompt2vec"]:
        p = summary["prompt2vec"]
        typer.echo(f"  {p['path']}: {p['prompts']} prompts x {p['dim']}")


def register(app: typer.Typer) -> None:
    """Add the `surd export` group."""
    export_app.command("prompt2vec")(prompt2vec_cmd)
    export_app.command("imagefolder")(imagefolder_cmd)
    app.add_typer(export_app, name="export")
