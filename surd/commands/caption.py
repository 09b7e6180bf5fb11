"""`surd caption`: BLIP captions → each sample's simple prompt (the caption stage as a command; its options are the
stage Config's fields, see `surd.commands.common.stage_command`)."""

from __future__ import annotations

import typer

from surd.commands.common import stage_command

DOC = """Caption every image with BLIP into simple_prompt (the paper's settings by default).

Example: surd caption runs/mine/00_ingest --out runs/mine/01_caption --model Salesforce/blip-image-captioning-base
"""


def register(app: typer.Typer) -> None:
    """Add `surd caption` to the app."""
    app.command("caption")(stage_command("caption", DOC))
