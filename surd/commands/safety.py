"""`surd safety`: remove unsafe images by source metadata and by an NSFW classifier (options: the stage Config's
fields)."""

from __future__ import annotations

import typer

from surd.commands.common import stage_command

DOC = """Remove unsafe images: by source metadata (`nsfw_metadata`), then by an NSFW classifier (`nsfw_classifier`).

Example: surd safety runs/mine/03_clip_filter --out runs/mine/04_safety --classifier nudenet --threshold 0.5
"""


def register(app: typer.Typer) -> None:
    """Add `surd safety` to the app."""
    app.command("safety")(stage_command("safety", DOC))
