"""The `surd` command: a thin typer app assembled from the command modules in `surd.commands`."""

from __future__ import annotations

import os
import sys

import typer

from surd import __version__
from surd.commands import (
    adapter,
    caption,
    card,
    clip_filter,
    dedup,
    embed,
    eval,
    export,
    ingest,
    inspect,
    publish,
    quality,
    release,
    review,
    run,
    safety,
    verify,
)
from surd.commands.common import USER_ERRORS, user_error_message

app = typer.Typer(
    help="Build SURD-style text-to-image datasets and train the SUR-adapter on them.\n\n"
    "Example: surd run pipelines/sample.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# In the order `surd --help` lists them: the pipeline, its stages, then the tools around them.
for module in (ingest, export, run, inspect, verify, dedup, caption, clip_filter, safety, quality, review, embed,
               adapter, eval, card, release, publish):
    module.register(app)


@app.command("version")
def version_cmd() -> None:
    """Print the surd version.

    Example: surd version
    """
    typer.echo(__version__)


def main() -> None:
    """Console entry point: bad arguments, missing inputs and unreachable hosts print one line and exit 2."""
    try:
        app()
    except USER_ERRORS as e:  # ConfigMismatch is a ValueError
        if os.environ.get("SURD_DEBUG"):
            raise
        typer.secho(f"error: {user_error_message(e)}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: finished shards are kept; rerun the same command to resume", err=True)
        sys.exit(130)
