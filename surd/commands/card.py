"""`surd card RUN`: the dataset card of a run (README.md, croissant.json, card.html, provenance.parquet)."""

from __future__ import annotations

import typer

from surd.export.card import card


def card_cmd(
    run_dir: str = typer.Argument(..., help="A run folder (runs/<name>: its NN_<stage>/ folders)."),
    out: str = typer.Option("", "--out", "-o", help="Folder for the card files (default: the run folder itself, "
                                                  "so the card's configs point at the final stage's shards)."),
    about: str = typer.Option("", help="YAML with what only a person knows: pretty_name, summary, motivation, "
                                      "maintainer, contact, uses, out_of_scope, limitations, personal_information, "
                                      "maintenance, language, citation, homepage, sources: {NAME: {license_link, "
                                      "terms}}."),
) -> None:
    """Write the card of a run from its own shards, sidecars, configs and stats: README.md (a Hugging Face dataset
    card with the datasheet sections), croissant.json (Croissant + RAI), card.html (plots) and provenance.parquet
    (one row per sample ever seen, each stage's decision and reason), plus LICENSE.md (terms per source).

    Example: surd card runs/sample --about about.yaml
    """
    result = card(run_dir, out or None, about or None)
    for _name, path in result["paths"].items():
        typer.echo(f"{path}")
    typer.echo(f"{result['kept']} samples kept of {result['seen']} seen")
    if result["needs_person"]:
        typer.echo(f"  {result['needs_person']} field(s) still need a person (NEEDS A PERSON in README.md): "
                   "pass --about FILE")


def register(app: typer.Typer) -> None:
    """Add `surd card`."""
    app.command("card")(card_cmd)
