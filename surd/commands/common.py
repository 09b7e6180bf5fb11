"""What every command shares: the run options (workers, retries, executor, address), errors and result reports."""

from __future__ import annotations

from typing import Any

import typer

from surd.runner import RunResult, run_stage

IN = typer.Argument(..., help="Input dataset directory (shards of the previous stage).")
OUT = typer.Option(..., "--out", "-o", help="Output dataset directory.")
WORKERS = typer.Option(None, "--workers", "-w", show_default=False,
                       help="Worker processes [default: 1 = run in this process; on Ray, as many as the cluster "
                       "holds].")
RETRIES = typer.Option(2, help="Retries of a failed shard before it is reported as failed.")
EXECUTOR = typer.Option(None, show_default=False, help="local (this machine, the default) or ray (a Ray cluster).")
ADDRESS = typer.Option(None, help="Ray cluster address for --executor ray, e.g. auto.")
DEVICE = typer.Option("auto", help="auto (cuda, then mps, then cpu), or a torch device such as cuda:1.")
DTYPE = typer.Option("auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), fp32, fp16 or bf16.")
DECODE_THREADS = typer.Option(2, "--decode-threads", help="Image decoding threads per worker, overlapped with the model.")
# The review server's address and access (`surd review serve`, `surd eval study serve`).
HOST = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs a token (made for you).")
TOKEN = typer.Option("", help="Token every user of the page must present (default: a random one beyond loopback).")
NO_AUTH = typer.Option(False, "--no-auth", help="Serve beyond loopback without a token (trusted networks).")


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


def run_and_report(stage: str, cfg: Any, out: str, input_dir: str | None, *, workers: int | None = None,
                   retries: int = 2, executor: str | None = None, address: str | None = None) -> None:
    """The body of every stage command: run the stage over all shards, then report."""
    report(run_stage(stage, cfg, out, input_dir, workers=workers, retries=retries, executor=executor or "local",
                     address=address))
