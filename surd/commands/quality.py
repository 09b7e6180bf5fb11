"""`surd quality`: LAION aesthetic and watermark scores, with optional thresholds (options: the quality stage
Config's fields)."""

from __future__ import annotations

import typer

from surd.commands.common import stage_command

DOC = """Score every image: LAION's aesthetic predictor (reusing clip.npy when the CLIP matches) and watermark detector.

Example: surd quality runs/mine/04_safety --out runs/mine/05_quality --aesthetic-head tiny --min-aesthetic 5
"""


def register(app: typer.Typer) -> None:
    """Add `surd quality` to the app."""
    app.command("quality")(stage_command("quality", DOC))
