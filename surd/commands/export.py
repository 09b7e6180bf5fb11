"""`surd export …`: datasets out to the formats other tools read."""

from __future__ import annotations

import typer

from surd.embed.export import export_prompt2vec

export_app = typer.Typer(help="Export a dataset to other tools' formats.\n\n"
                         "Example: surd export prompt2vec runs/sample/03_embed --out prompt2vec.safetensors",
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


def register(app: typer.Typer) -> None:
    """Add the `surd export` group."""
    export_app.command("prompt2vec")(prompt2vec_cmd)
    app.add_typer(export_app, name="export")
