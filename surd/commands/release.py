"""`surd release RUN --mode full|urls --out DIR`: what a run kept, filtered by licence, source and NSFW level,
as a folder others load (images, or a URL list to rebuild from), with its card."""

from __future__ import annotations

import typer

from surd.export.release import ReleaseConfig, load_rules, release


def release_cmd(
    run_dir: str = typer.Argument(..., help="A run folder (runs/<name>)."),
    out: str = typer.Option(..., "--out", "-o", help="New folder for the release (refused if not empty)."),
    mode: str = typer.Option("full", help="full: images + metadata.jsonl; urls: no image bytes, an img2dataset-style "
                                        "URL list with each image's sha256 (for licences that forbid redistribution)."),
    only_licence: list[str] = typer.Option([], "--only-licence", help="Release only samples under this licence "
                                           "(repeatable; the licence string the source recorded)."),
    exclude_source: list[str] = typer.Option([], "--exclude-source", help="Leave out a source (repeatable)."),
    max_nsfw: str = typer.Option("", "--max-nsfw", help="sfw (rated safe only), unrated (also unrated samples) or "
                                                      "nsfw (no NSFW filter, the default)."),
    rules: str = typer.Option("", help="YAML rule file: only_licence, exclude_source, max_nsfw (options add to it)."),
    embeddings: bool = typer.Option(False, "--embeddings", help="urls mode: add the stored CLIP/LLM vectors."),
    about: str = typer.Option("", help="YAML of what only a person knows, for the card (see `surd card --help`)."),
) -> None:
    """Release a run's kept samples with the card of exactly what is released.

    Example: surd release runs/paper_sfw --mode urls --exclude-source sdonline --out releases/paper_sfw
    """
    cfg = ReleaseConfig(mode=mode, embeddings=embeddings, about=about or None,
                        rules=load_rules(rules or None, only_licence=only_licence, exclude_source=exclude_source,
                                         max_nsfw=max_nsfw))
    summary = release(run_dir, out, cfg)
    typer.echo(f"{out}: {summary['released']} samples released ({mode})")
    for reason, n in summary["excluded"].items():
        typer.echo(f"  left out {reason}: {n}")


def register(app: typer.Typer) -> None:
    """Add `surd release`."""
    app.command("release")(release_cmd)
