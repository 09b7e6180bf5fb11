"""`surd publish RELEASE --to URL`: a release folder to object storage (any fsspec URL) or the Hugging Face Hub."""

from __future__ import annotations

import typer

from surd.commands.common import fail
from surd.export.publish import PublishConfig, publish


def publish_cmd(
    release_dir: str = typer.Argument(..., help="A folder written by `surd release` (or `surd card`)."),
    to: str = typer.Option(..., "--to", help="s3://bucket/prefix, gs://…, any fsspec URL or local folder, or "
                                            "hf://datasets/OWNER/NAME[@REVISION] (the Hub; token from HF_TOKEN)."),
    batch_files: int = typer.Option(500, help="Hub: files per commit."),
    retries: int = typer.Option(8, help="Hub: retries of a request answered 429 or 5xx (Retry-After honoured)."),
) -> None:
    """Publish a release; rerun the same command after an interruption to upload only what is missing.

    Example: surd publish releases/paper_sfw --to hf://datasets/me/surd-sfw
    """
    try:
        result = publish(release_dir, to, PublishConfig(batch_files=batch_files, retries=retries))
    except (ValueError, FileNotFoundError, ImportError):
        raise  # bad input: the CLI prints it as one line
    except Exception as e:  # noqa: BLE001 (a server or network failure: one line, and how to go on)
        fail(f"publishing to {to} stopped: {type(e).__name__}: {e}. What was uploaded stays; rerun the same "
             "command to upload the rest", code=1)
        return
    typer.echo(f"{result['to']}: {result['uploaded']} file(s) uploaded, {result['skipped']} already there"
               + (f", {result['commits']} commit(s)" if result["commits"] else ""))


def register(app: typer.Typer) -> None:
    """Add `surd publish`."""
    app.command("publish")(publish_cmd)
