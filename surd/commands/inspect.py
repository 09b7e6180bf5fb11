"""`surd stats` and `surd inspect`: what a dataset holds, what each stage kept and rejected, and why."""

from __future__ import annotations

import json
from typing import Any

import typer

from surd import shards, storage
from surd.commands.common import fail
from surd.runner import total_stats


def _stage_dirs(path: str) -> list[str]:
    names = storage.listdir(path)
    if shards.CONFIG_NAME in names or any(n.endswith(shards.STATS_SUFFIX) for n in names):
        return [path]
    dirs = [storage.join(path, n) for n in names if storage.isfile(storage.join(path, n, shards.CONFIG_NAME))]
    if not dirs:
        fail(f"{path} is neither a stage output directory nor a run directory holding NN_<stage>/ folders")
    return dirs


def stats_cmd(
    path: str = typer.Argument(..., help="A run directory (runs/<name>) or one stage's output directory (or URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Counts per stage and per reject reason (in = kept + Σ rejected).

    Example: surd stats runs/sample
    """
    if not storage.isdir(path):
        fail(f"{path} does not exist")
    rows = {storage.basename(d): total_stats(d) for d in _stage_dirs(path)}
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'stage':<20} {'shards':>6} {'in':>8} {'kept':>8} {'rejected':>9}")
    for name, st in rows.items():
        typer.echo(f"{name:<20} {st['shards']:>6} {st['in']:>8} {st['kept']:>8} {sum(st['rejected'].values()):>9}")
        for reason, n in st["rejected"].items():
            typer.echo(f"{'':<20} {'':>6} {'':>8} {'':>8} {n:>9}  {reason}")


def inspect_cmd(
    path: str = typer.Argument(..., help="A stage's output directory (or URL)."),
    n: int = typer.Option(5, "--n", help="How many samples to print."),
    rejected: bool = typer.Option(False, help="Print rejected inputs (from the sidecars) instead of kept samples."),
    reason: str = typer.Option(None, help="With --rejected: only this reason."),
) -> None:
    """Print samples (or rejects) of a dataset.

    Example: surd inspect runs/sample/00_ingest --n 5
    """
    if not storage.isdir(path):
        fail(f"{path} does not exist")
    shown = 0
    if rejected:
        for stem in shards.list_done(path):
            for row in shards.read_sidecar(path, stem):
                if row["status"] != "rejected" or (reason and row["reason"] != reason) or shown >= n:
                    continue
                typer.echo(f"{row['key']}  {row['reason']}  {row['detail']}")
                shown += 1
        return
    for sample in shards.iter_dataset(path):
        if shown >= n:
            break
        _print_sample(sample)
        shown += 1


def _print_sample(sample: dict[str, Any]) -> None:
    meta = sample.get("json", {})
    members = ", ".join(f"{k} ({len(v)} B)" for k, v in sorted(sample.items()) if k not in ("__key__", "json"))
    typer.secho(f"── {sample['__key__']}  [{meta.get('source')}:{meta.get('source_id')}]", bold=True)
    typer.echo(f"  complex: {_clip(meta.get('complex_prompt'))}")
    typer.echo(f"  simple:  {_clip(meta.get('simple_prompt'))}")
    typer.echo(f"  original {meta.get('width')}x{meta.get('height')}, sha256 {str(meta.get('sha256'))[:12]}…, "
               f"license {meta.get('license') or '?'}")
    typer.echo(f"  members: {members}")
    for stage, rec in (meta.get("stages") or {}).items():
        typer.echo(f"  {stage}: {json.dumps(rec, sort_keys=True)[:200]}")


def _clip(text: Any, n: int = 160) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def register(app: typer.Typer) -> None:
    """Add `surd stats` and `surd inspect`."""
    app.command("stats")(stats_cmd)
    app.command("inspect")(inspect_cmd)
