"""What every command shares: the run options (workers, retries, executor, address), errors and result reports."""

from __future__ import annotations

import copy
import inspect
import os
import tarfile
from collections.abc import Callable
from typing import Any

import typer

from surd.models import DEVICE_HELP, DTYPE_HELP
from surd.options import Param, build, cli_params, make_command, values_from
from surd.review.server import ServeConfig
from surd.runner import RunResult, RunSettings, run_stage
from surd.stages import build_config, get_stage

IN = typer.Argument(..., help="Input dataset directory (shards of the previous stage).")
OUT = typer.Option(..., "--out", "-o", help="Output dataset directory (or URL); rerun the same command to resume.")
DEVICE = typer.Option("auto", help=DEVICE_HELP)
DTYPE = typer.Option("auto", help=DTYPE_HELP)
# --workers, --retries, --executor, --address, --finished-only: every stage command's; --append too for the
# commands that start a run from a source (surd ingest ...), where there is something to append.
RUN_PARAMS = cli_params(RunSettings, skip=("append",))
SOURCE_RUN_PARAMS = cli_params(RunSettings)
SERVE_PARAMS = cli_params(ServeConfig)  # --host, --port, --token, --no-auth, --rate: every served page's


# Bad input or environment: one line and exit 2, never a traceback (SURD_DEBUG=1 shows it). OSError covers a
# missing file, a permission, a full disk, a path under a file; TarError a tar that is not one.
USER_ERRORS = (ValueError, KeyError, ImportError, OSError, tarfile.TarError)


def user_error_message(e: BaseException) -> str:
    """The line a user sees for a bad-input error (a KeyError's repr quotes; its argument does not)."""
    return str(e.args[0] if isinstance(e, KeyError) and e.args else e)


def fail(message: str, code: int = 2) -> None:
    """Print one red error line and exit (2 = bad input or arguments)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def report(result: RunResult) -> None:
    """Print a stage result's totals; exit 1 naming the failed shards if any."""
    st = result.stats
    typer.echo(f"{result.output_dir}: {st['kept']} kept of {st['in']} in {st['shards']} shards "
               f"({len(result.done)} written, {len(result.skipped)} already done)")
    for reason, n in st["rejected"].items():
        typer.echo(f"  rejected {reason}: {n}")
    if result.failed:
        typer.secho(f"{len(result.failed)} shard(s) failed after retries (rerun the same command to retry them):",
                    fg=typer.colors.RED, err=True)
        by_error: dict[str, list[str]] = {}
        for stem, err in sorted(result.failed.items()):
            by_error.setdefault(err, []).append(stem)
        for err, stems in by_error.items():
            shown = ", ".join(stems[:8]) + (f" and {len(stems) - 8} more" if len(stems) > 8 else "")
            typer.secho(f"  {shown}: {err}", err=True)
        raise typer.Exit(1)


def run_and_report(stage: str, cfg: Any, out: str, input_dir: str | None, settings: RunSettings | None = None) -> None:
    """The body of every stage command: run the stage over all shards, then report."""
    st = settings or RunSettings()
    report(run_stage(stage, cfg, out, input_dir, workers=st.workers, retries=st.retries,
                     executor=st.executor or "local", address=st.address, finished_only=st.finished_only,
                     append=st.append))


def _param(name: str, info: Any, annotation: Any = str) -> Param:
    return Param(name, name, inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                               annotation=annotation))


IN_PARAM = _param("input_dir", IN)
OUT_PARAM = _param("out", OUT)


def stage_command(stage: str, doc: str) -> Callable[..., None]:
    """The command of a per-shard stage, derived from its Config: INPUT_DIR, --out, one option per config field
    (`surd.options.cli_params`: name, type, default, help and checks as the field declares them) and the run
    options. Nothing is restated: adding a field to the Config adds the option."""
    module = get_stage(stage)
    params = cli_params(module.Config)

    def body(given: dict[str, Any]) -> None:
        cfg = build_config(module, values_from(module.Config, params, given))
        run_and_report(stage, cfg, given["out"], given["input_dir"], run_settings(given))

    return make_command([IN_PARAM, OUT_PARAM, *params, *RUN_PARAMS], guarded(body), doc, f"{stage}_cmd")


def guarded(body: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A command body whose bad-input errors print one line and exit 2 (``SURD_DEBUG=1`` shows the traceback)."""

    def run(given: dict[str, Any]) -> None:
        try:
            body(given)
        except USER_ERRORS as e:
            if os.environ.get("SURD_DEBUG"):
                raise
            fail(user_error_message(e))

    return run


def serve_command(site: Param, doc: str, start: Callable[[Any, ServeConfig], None], *,
                  port: int | None = None) -> Callable[..., None]:
    """A command serving a site with the review server's machinery: SITE plus the `ServeConfig` options (derived
    from its fields; `port` replaces the default port). `start(site, cfg)` serves until stopped."""
    params = [site, *(_with_default(p, port) if p.field == "port" and port is not None else p for p in SERVE_PARAMS)]

    def body(given: dict[str, Any]) -> None:
        start(given[site.name], build(ServeConfig, values_from(ServeConfig, SERVE_PARAMS, given), "serve options"))

    return make_command(params, guarded(body), doc, f"serve_{site.name}")


def _with_default(p: Param, default: Any) -> Param:
    info = copy.copy(p.parameter.default)
    info.default = default
    return Param(p.name, p.field, p.parameter.replace(default=info))


def run_settings(given: dict[str, Any], params: list[Param] = RUN_PARAMS) -> RunSettings:
    """The run options a derived command was given (`params`: the run options it takes)."""
    return build(RunSettings, values_from(RunSettings, params, given), "run options")
