"""`surd clip-filter`: keep samples whose image CLIP matches the simple prompt at least as well as the complex one
(options: the stage Config's fields)."""

from __future__ import annotations

import typer

from surd.commands.common import stage_command

DOC = """Keep samples whose image CLIP matches at least as well to the simple prompt as to the complex one.

Example: surd clip-filter runs/mine/01_caption --out runs/mine/02_clip_filter --model ViT-B-32 --pretrained openai
"""


def register(app: typer.Typer) -> None:
    """Add `surd clip-filter` to the app."""
    app.command("clip-filter")(stage_command("clip_filter", DOC))
