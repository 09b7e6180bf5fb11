"""The `surd` command: a thin typer app assembled from the command modules in `surd.commands`."""

from __future__ import annotations

import sys

import typer

from surd import __version__
from surd.commands import (
    adapter,
    caption,
    card,
    clip_filter,
    datasets,
    dedup,
    embed,
    eval,
    export,
    ingest,
    publish,
    release,
    review,
    run,
    safety,
)
from surd.runner import ConfigMismatch

app = typer.Typer(
    help="Build SURD-style text-to-image datasets and train the SUR-adapter on them.\n\n"
    "Example: surd run pipelines/sample.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# In the order `surd --help` lists them: the pipeline, its stages, then the tools around them.
for module in (ingest, export, run, datasets, dedup, caption, clip_filter, safety, review, embed, adapter, eval, card,
               release, publish):
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
    except (ValueError, FileNotFoundError, KeyError, ConfigMismatch, ImportError, ConnectionError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
        sys.exit(2)
