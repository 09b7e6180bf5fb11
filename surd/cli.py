"""The `surd` command: a thin typer app; each command builds a config and calls one library function."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import typer

from surd import __version__

app = typer.Typer(
    help="Build SURD-style text-to-image datasets and train the SUR-adapter on them.\n\n"
    "Example: surd run pipelines/sample.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Create a dataset from a source (local manifest, SURD folder, web APIs, URL lists).\n\n"
                         "Example: surd ingest manifest manifests/sample/manifest.jsonl --out runs/mine/00_ingest",
                         no_args_is_help=True)
export_app = typer.Typer(help="Export a dataset to other tools' formats.\n\n"
                         "Example: surd export prompt2vec runs/sample/04_embed --out prompt2vec.safetensors",
                         no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(export_app, name="export")
GROUPS = {"ingest": ingest_app, "export": export_app}

# Modules that add their commands with register(app, groups).
COMMAND_MODULES = ("surd.commands.ingest_web", "surd.commands.models", "surd.commands.review",
                   "surd.commands.embed", "surd.commands.adapter", "surd.commands.eval")

WORKERS = typer.Option(1, "--workers", "-w", help="Worker processes (1 = run in this process).")
RETRIES = typer.Option(2, help="Retries of a failed shard before it is reported as failed.")
EXECUTOR = typer.Option("local", help="local (this machine) or ray (a Ray cluster).")
ADDRESS = typer.Option(None, help="Ray cluster address for --executor ray, e.g. auto.")



def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def report(result: Any) -> None:
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


def run_ingest(source: str, path: str, out: Path, *, options: dict[str, Any] | None = None,
               download: dict[str, Any] | None = None, workers: int = 1, retries: int = 2,
               executor: str = "local", address: str | None = None, **image_and_shard: Any) -> None:
    """Shared body of every `surd ingest <source>` command."""
    from surd.runner import run_stage

    cfg = {"source": source, "path": path, "options": options or {}, "download": download or {}, **image_and_shard}
    report(run_stage("ingest", cfg, out, workers=workers, retries=retries, executor=executor, address=address))


@ingest_app.command("manifest")
def ingest_manifest(
    manifest: Path = typer.Argument(..., help="A .jsonl, .csv, .tsv or .parquet file, one row per sample."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory."),
    image_col: str = typer.Option("image", help="Column with the image path or file:// URL (relative to the manifest)."),
    prompt_col: str = typer.Option("complex_prompt", help="Column with the complex (keyword) prompt."),
    negative_col: str = typer.Option("negative_prompt", help="Column with the negative prompt (optional)."),
    simple_col: str = typer.Option("simple_prompt", help="Column with a simple prompt, if you already have one."),
    id_col: str = typer.Option("source_id", help="Column with a stable id (default: the image path)."),
    source_col: str = typer.Option("source", help="Column naming each row's source (optional)."),
    license_col: str = typer.Option("license", help="Column with each row's license (optional)."),
    source_name: str = typer.Option("local", help="Source name when there is no source column."),
    size: int = typer.Option(512, help="Output side in pixels."),
    resize_mode: str = typer.Option("center_crop", help="center_crop (the paper's), keep_ratio, pad, or none."),
    resample: str = typer.Option("lanczos", help="Downscaling filter: lanczos, bicubic, or area (faster, softer)."),
    quality: int = typer.Option(95, help="JPEG/WebP quality."),
    min_size: int = typer.Option(64, help="Reject images whose shorter side is below this."),
    max_pixels: int = typer.Option(89_478_485, help="Reject images with more pixels (decompression bombs)."),
    shard_size: int = typer.Option(1000, help="Samples per shard."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Ingest a local manifest of (complex prompt, image) rows.

    Example: surd ingest manifest manifests/sample/manifest.jsonl --out runs/mine/00_ingest --workers 2
    """
    opts = dict(image_col=image_col, prompt_col=prompt_col, negative_col=negative_col, simple_col=simple_col,
                id_col=id_col, source_col=source_col, license_col=license_col, source_name=source_name)
    run_ingest("manifest", str(manifest), out, options=opts, size=size, resize_mode=resize_mode, resample=resample,
               quality=quality,
               min_size=min_size, max_pixels=max_pixels, shard_size=shard_size, workers=workers, retries=retries,
               executor=executor, address=address)


@ingest_app.command("folder")
def ingest_folder(
    folder: Path = typer.Argument(..., help="Folder with images and metadata.jsonl (file_name, text, prompt)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory."),
    size: int = typer.Option(512, help="Output side in pixels."),
    resize_mode: str = typer.Option("center_crop", help="center_crop, keep_ratio, pad, or none."),
    quality: int = typer.Option(95, help="JPEG quality."),
    shard_size: int = typer.Option(1000, help="Samples per shard."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Import a dataset in the official SUR-adapter layout (the released SURD imports as is).

    Example: surd ingest folder SURD/ --out runs/surd/00_ingest
    """
    run_ingest("surd_folder", str(folder), out, size=size, resize_mode=resize_mode, quality=quality,
               shard_size=shard_size, workers=workers, retries=retries, executor=executor, address=address)


@app.command("run")
def run_cmd(
    pipeline: Path = typer.Argument(..., help="Pipeline file: an ordered list of {stage, config}."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where runs/<name>/<NN>_<stage>/ are written."),
    until: str = typer.Option(None, help="Stop after this stage (e.g. clip_filter, to review before going on)."),
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Run every stage of a pipeline file; rerunning skips finished shards.

    Example: surd run pipelines/sample.yaml --workers 2
    """
    from surd.pipeline import run_pipeline

    for step, res in run_pipeline(pipeline, runs_dir, workers=workers, executor=executor, address=address,
                                  retries=retries, until=until):
        typer.echo(f"[{step.dirname}]")
        if hasattr(res, "stats") and hasattr(res, "failed"):
            report(res)
        else:
            typer.echo(json.dumps(res, indent=2, default=str))


def _stage_dirs(path: Path) -> list[Path]:
    from surd import shards

    if (path / shards.CONFIG_NAME).exists() or list(path.glob("*.stats.json")):
        return [path]
    dirs = sorted(d for d in path.iterdir() if d.is_dir() and (d / shards.CONFIG_NAME).exists())
    if not dirs:
        fail(f"{path} is neither a stage output directory nor a run directory holding NN_<stage>/ folders")
    return dirs


@app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="A run directory (runs/<name>) or one stage's output directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Counts per stage and per reject reason (in = kept + Σ rejected).

    Example: surd stats runs/sample
    """
    from surd.runner import total_stats

    if not path.is_dir():
        fail(f"{path} does not exist")
    rows = {d.name: total_stats(d) for d in _stage_dirs(path)}
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'stage':<20} {'shards':>6} {'in':>8} {'kept':>8} {'rejected':>9}")
    for name, st in rows.items():
        typer.echo(f"{name:<20} {st['shards']:>6} {st['in']:>8} {st['kept']:>8} {sum(st['rejected'].values()):>9}")
        for reason, n in st["rejected"].items():
            typer.echo(f"{'':<20} {'':>6} {'':>8} {'':>8} {n:>9}  {reason}")


@app.command("inspect")
def inspect_cmd(
    path: Path = typer.Argument(..., help="A stage's output directory."),
    n: int = typer.Option(5, "--n", help="How many samples to print."),
    rejected: bool = typer.Option(False, help="Print rejected inputs (from the sidecars) instead of kept samples."),
    reason: str = typer.Option(None, help="With --rejected: only this reason."),
) -> None:
    """Print samples (or rejects) of a dataset.

    Example: surd inspect runs/sample/00_ingest --n 5
    """
    from surd import shards

    if not path.is_dir():
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


@app.command("version")
def version_cmd() -> None:
    """Print the surd version.

    Example: surd version
    """
    typer.echo(__version__)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app, GROUPS)


_register_commands()


def main() -> None:
    """Console entry point: bad arguments and missing inputs print one line and exit 2."""
    from surd.runner import ConfigMismatch

    try:
        app()
    except (ValueError, FileNotFoundError, KeyError, ConfigMismatch, ImportError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
        sys.exit(2)
