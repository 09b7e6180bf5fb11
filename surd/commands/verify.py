"""`surd verify RUN|STAGE_DIR`: every shard against its stats marker, and every stage against the one before it."""

from __future__ import annotations

import json

import typer

from surd import storage
from surd.audit import verify_run
from surd.commands.common import fail


def verify_cmd(
    path: str = typer.Argument(..., help="A run directory (runs/<name>) or one stage's output directory (or URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check that a dataset holds exactly what its stats markers say: each shard's tar and sidecar (size, sample
    count, SHA-256), in = kept + Σ rejected per shard, and each stage's in = the previous stage's kept. Exits 1
    naming every problem.

    Example: surd verify runs/sample
    """
    if not storage.isdir(path):
        fail(f"{path} does not exist")
    reports, across = verify_run(path)
    problems = [p for r in reports for p in r.problems] + across
    if as_json:
        typer.echo(json.dumps({"ok": not problems, "stages": [r.to_json() for r in reports], "across": across},
                              indent=2))
    else:
        for r in reports:
            t = r.totals()
            mark = "ok" if not r.problems else f"{len(r.problems)} problem(s)"
            what = "adapter files" if r.kind == "adapter" else \
                f"{t['shards']:>6} shards {t['in']:>8} in {t['kept']:>8} kept"
            typer.echo(f"{storage.basename(r.path):<20} {what}  {mark}")
    if problems:
        typer.secho(f"{len(problems)} problem(s):", fg=typer.colors.RED, err=True)
        for p in problems:
            typer.secho(f"  {p}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `surd verify`."""
    app.command("verify")(verify_cmd)
