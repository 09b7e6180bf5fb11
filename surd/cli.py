"""The `surd` command: a thin typer app assembled from the command modules in `surd.commands`."""

from __future__ import annotations

import atexit
import os
import sys
import threading

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


def entry() -> None:
    """The `surd` process (console script and ``python -m surd``): `main`, then `leave` with its exit status."""
    try:
        main()
    except SystemExit as e:
        if isinstance(e.code, str):  # as the interpreter would: the message on stderr, status 1
            sys.stderr.write(e.code + "\n")
        leave(e.code if isinstance(e.code, int) else 0 if e.code is None else 1)
    leave(0)


def leave(code: int) -> None:
    """Exit with `code` the way the interpreter does (wait for non-daemon threads, run the atexit handlers, flush
    stdout and stderr), but without its final teardown, where a native library's thread pool still starting or
    stopping (pyarrow's, seen under load) can abort the process with "terminate called without an active
    exception" and status -6 after the command had finished and printed its result."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # the handlers a normal exit runs (Ray's shutdown, multiprocessing's, logging's)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)
