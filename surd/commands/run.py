"""`surd run pipelines/<name>.yaml`: every step of a pipeline file, finished shards skipped."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from surd.commands.common import ADDRESS, EXECUTOR, RETRIES, WORKERS, report
from surd.pipeline import run_pipeline
from surd.runner import RunResult


def run_cmd(
    pipeline: Path = typer.Argument(..., help="Pipeline file: an ordered list of {stage, config}."),
    runs_dir: str = typer.Option(None, show_default=False, help="Where <name>/<NN>_<stage>/ are written: a path "
                                 "or URL (s3://bucket/runs) [default: the file's runs_dir, else runs].",),
    until: str = typer.Option(None, help="Stop after this stage (e.g. clip_filter, to review before going on)."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
    fuse: bool = typer.Option(None, "--fuse/--no-fuse", show_default=False,
                              help="Run consecutive per-shard stages (caption, clip_filter, safety, ...) over each "
                              "shard in one pass: the same outputs, each image decoded once [default: the file's "
                              "fuse, else on]."),
) -> None:
    """Run every stage of a pipeline file; rerunning skips finished shards. runs_dir, executor, address, workers
    and fuse may be set in the file (a cluster run then needs no flags); flags given here override them.

    Example: surd run pipelines/sample.yaml --workers 2
    """
    for step, res in run_pipeline(pipeline, runs_dir, workers=workers, executor=executor, address=address,
                                  retries=retries, until=until, fuse=fuse):
        typer.echo(f"[{step.dirname}]")
        if isinstance(res, RunResult):
            report(res)
        else:
            typer.echo(json.dumps(res, indent=2, default=str))


def register(app: typer.Typer) -> None:
    """Add `surd run`."""
    app.command("run")(run_cmd)
