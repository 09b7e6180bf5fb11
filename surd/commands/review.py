"""`surd review export|serve|import`: the manual-review step as a static review site, Label Studio or CSV."""

from __future__ import annotations

from pathlib import Path

import typer

review_app = typer.Typer(
    help="Manual review: export a dataset for reviewers, serve the review page, import the decisions.\n\n"
    "Example: surd review export runs/sample/04_safety --out review/ && surd review serve review/",
    no_args_is_help=True,
)


@review_app.command("export")
def export_cmd(
    dataset: Path = typer.Argument(..., help="Dataset directory to review (webdataset shards)."),
    out: Path = typer.Option(..., "--out", "-o", help="New (or empty) directory for the review site / files."),
    fmt: str = typer.Option("site", "--format", help="site (browser page), labelstudio (tasks + config) or csv."),
    split: int = typer.Option(1, help="Cut into N disjoint batches (by key order), one per reviewer: batch_XX/."),
    thumb_size: int = typer.Option(256, help="Thumbnail side in pixels (site format)."),
    image_url_prefix: str = typer.Option("", help="labelstudio: prefix for image paths, e.g. /data/local-files/?d=review/"),
) -> None:
    """Export a dataset for manual review.

    Example: surd review export runs/sample/04_safety --out review/ --split 2
    """
    from surd.cli import fail
    from surd.review.export import ExportConfig, export_review

    cfg = ExportConfig(format=fmt, split=split, thumb_size=thumb_size, image_url_prefix=image_url_prefix)
    try:
        res = export_review(dataset, out, cfg)
    except FileExistsError as exc:
        fail(str(exc))
    typer.echo(f"exported {res.n} samples to {len(res.batches)} {fmt} batch(es) in {res.seconds:.1f}s:")
    for b in res.batches:
        hint = f"open {b / 'index.html'} or run: surd review serve {b}" if fmt == "site" else str(b)
        typer.echo(f"  {hint}")


@review_app.command("serve")
def serve_cmd(
    review_dir: Path = typer.Argument(..., help="A review site written by `surd review export` (one batch)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; keep 127.0.0.1 unless you trust the network."),
    port: int = typer.Option(8765, help="Port (0 = any free port)."),
) -> None:
    """Serve a review site locally; decisions are saved to REVIEW_DIR/decisions.json as you make them.

    Example: surd review serve review/ --port 8765
    """
    from surd.review.server import serve

    serve(review_dir, host, port)


@review_app.command("import")
def import_cmd(
    dataset: Path = typer.Argument(..., help="The dataset directory that was exported for review."),
    decisions: list[Path] = typer.Argument(..., help="Decision files: decisions.json, Label Studio export, review CSV."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory (the reviewed dataset)."),
    undecided: str = typer.Option("drop", help="keep or drop (reason manual_undecided) samples with no decision."),
) -> None:
    """Apply review decisions: keep accepted samples, reject the rest with a reason (nothing if any file is bad).

    Example: surd review import runs/sample/04_safety review/decisions.json --out runs/sample/05_review
    """
    from surd.cli import fail, report
    from surd.review.decisions import DecisionError
    from surd.review.importer import import_review

    try:
        result = import_review(dataset, decisions, out, undecided=undecided)
    except DecisionError as exc:
        fail(str(exc))
    report(result)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add the `surd review` command group."""
    app.add_typer(review_app, name="review")
