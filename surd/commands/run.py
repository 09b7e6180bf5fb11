"""`surd run pipelines/<name>.yaml`: every step of a pipeline file, finished shards skipped.

Its run flags are the pipeline file's top-level settings (`surd.pipeline.PipelineSettings`), derived from that
one definition: a flag given here overrides the file's value.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from surd.commands.common import _param, guarded, report
from surd.options import cli_params, make_command, problems, values_from
from surd.pipeline import PipelineSettings, run_pipeline
from surd.runner import RunResult

DOC = """Run every stage of a pipeline file; rerunning skips finished shards. runs_dir, executor, address, workers,
retries and fuse may be set in the file (a cluster run then needs no flags); flags given here override them. The
whole file is checked before anything runs.

Example: surd run pipelines/sample.yaml --workers 2
"""

SETTINGS = cli_params(PipelineSettings, unset=True)  # not given: the file's value, else the field's default


def _body(given: dict[str, Any]) -> None:
    over = {k: v for k, v in values_from(PipelineSettings, SETTINGS, given).items() if v is not None}
    found = problems(PipelineSettings, over)  # the same checks as the file's own values
    if found:
        raise ValueError("; ".join(found))
    for step, res in run_pipeline(given["pipeline"], over.get("runs_dir"), workers=over.get("workers"),
                                  executor=over.get("executor"), address=over.get("address"),
                                  retries=over.get("retries"), until=given["until"], fuse=over.get("fuse"),
                                  finished_only=over.get("finished_only"), append=over.get("append")):
        typer.echo(f"[{step.dirname}]")
        if isinstance(res, RunResult):
            report(res)
        else:
            typer.echo(json.dumps(res, indent=2, default=str))


PARAMS = [
    _param("pipeline", typer.Argument(..., help="Pipeline file: an ordered list of {stage, config}.")),
    _param("until", typer.Option(None, help="Stop after this stage (e.g. clip_filter, to review before going on).")),
    *SETTINGS,
]


def register(app: typer.Typer) -> None:
    """Add `surd run`."""
    app.command("run")(make_command(PARAMS, guarded(_body), DOC, "run_cmd"))
