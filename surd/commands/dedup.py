"""`surd dedup`: remove near-duplicate images across the whole dataset (options: the dedup stage Config's fields)."""

from __future__ import annotations

import typer

from surd.commands.common import stage_command

DOC = """Remove near-duplicate images across the whole dataset; the first in shard order is kept.

Every drop is a `near_duplicate` (or `duplicate_prompt`) reject whose detail names the kept sample's key.

Example: surd dedup runs/mine/00_ingest --out runs/mine/01_dedup --max-distance 8
"""


def register(app: typer.Typer) -> None:
    """Add `surd dedup` to the app."""
    app.command("dedup")(stage_command("dedup", DOC))
