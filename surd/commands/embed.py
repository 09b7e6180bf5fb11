"""`surd embed`: LLM layer-wise mean vectors of the simple prompts (options: the embed stage Config's fields)."""

from __future__ import annotations

import typer

from surd.commands.common import stage_command

DOC = """Add llm.npy to every sample: the mean over tokens of one LLM layer's hidden states of its simple prompt.

Example: surd embed runs/mine/03_review --llm 33b --layer 60 --out runs/mine/04_embed --cache-dir ~/.cache/surd/embed
"""


def register(app: typer.Typer) -> None:
    """Add `surd embed`."""
    app.command("embed")(stage_command("embed", DOC))
