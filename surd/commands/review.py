"""`surd review export|serve|status|rebuild|import`: the manual-review step, alone or as a team."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from surd import storage
from surd.commands.common import HOST, NO_AUTH, TOKEN, fail, run_and_report
from surd.review.agreement import CONFLICT_RULES, Agreement
from surd.review.exporter import ExportConfig, export_review
from surd.review.importer import ImportPlan, plan_import
from surd.review.journal import JournalError, rebuild_snapshot
from surd.review.progress import site_status, total_status
from surd.review.records import DecisionError
from surd.review.server import ServeConfig, serve
from surd.review.site import site_dirs

review_app = typer.Typer(
    help="Manual review: export a dataset for reviewers, serve the review page, follow progress, import decisions.\n\n"
    "Example: surd review export runs/sample/04_safety --out review/ && surd review serve review/",
    no_args_is_help=True,
)


@review_app.command("export")
def export_cmd(
    dataset: str = typer.Argument(..., help="Dataset directory to review (webdataset shards)."),
    out: str = typer.Option(..., "--out", "-o", help="New (or empty) directory (or URL) for the review site / files."),
    fmt: str = typer.Option("site", "--format", help="site (browser page), labelstudio (tasks + config) or csv."),
    split: int = typer.Option(1, help="Cut into N disjoint batches (by key order), one per reviewer: batch_XX/."),
    overlap: float = typer.Option(0.0, help="Also give this fraction of samples to a second batch (agreement), "
                                  "e.g. 0.1 with --split 2 or more."),
    thumb_size: int = typer.Option(256, help="Thumbnail side in pixels (site format)."),
    image_url_prefix: str = typer.Option("", help="labelstudio: prefix for image paths, e.g. /data/local-files/?d=review/"),
) -> None:
    """Export a dataset for manual review.

    Example: surd review export runs/sample/04_safety --out review/ --split 3 --overlap 0.1
    """
    cfg = ExportConfig(format=fmt, split=split, overlap=overlap, thumb_size=thumb_size,
                       image_url_prefix=image_url_prefix)
    try:
        res = export_review(dataset, out, cfg)
    except FileExistsError as exc:
        fail(str(exc))
    typer.echo(f"exported {res.n} samples to {len(res.batches)} {fmt} batch(es) in {res.seconds:.1f}s"
               + (f"; {res.shared} samples are in two batches (overlap {overlap:g})" if res.shared else "") + ":")
    for b in res.batches:
        hint = f"open {storage.join(b, 'index.html')} or run: surd review serve {b}" if fmt == "site" else str(b)
        typer.echo(f"  {hint}")


@review_app.command("serve")
def serve_cmd(
    review_dir: Path = typer.Argument(..., help="A review site written by `surd review export` (one batch)."),
    host: str = HOST,
    port: int = typer.Option(8765, help="Port (0 = any free port)."),
    token: str = TOKEN,
    no_auth: bool = NO_AUTH,
    rate: float = typer.Option(50.0, help="API requests per second per client address (bursts up to 10x)."),
) -> None:
    """Serve a review site to one reviewer or a team; every decision goes to REVIEW_DIR/decisions.jsonl first.

    Example: surd review serve review/batch_00 --host 0.0.0.0 --port 8765
    """
    cfg = ServeConfig(host=host, port=port, token=token, no_auth=no_auth, rate=rate, burst=max(1, int(rate * 10)))
    serve(review_dir, cfg)


def _rate(x: float | None) -> str:
    return f"{x:,.0f}/h" if x else "–/h"


def _print_status(st: dict[str, Any], title: str) -> None:
    eta = f" · about {st['eta_hours']:.1f} h to go" if st.get("eta_hours") is not None else ""
    typer.echo(f"{title}: {st['decided']} of {st['n']} decided ({st['accepted']} accepted, {st['rejected']} rejected), "
               f"{st['left']} left · {_rate(st['rate_per_hour'])}{eta}")
    for r in st.get("reviewers", []):
        typer.echo(f"  {r['name']:<16} {r['decided']:>6} decided ({r['accepted']} accepted, {r['rejected']} rejected)"
                   f" · {r['changes']} changes · {_rate(r['rate_per_hour'])} · last {r['last'] or '–'}")


@review_app.command("status")
def status_cmd(
    review_dir: Path = typer.Argument(..., help="A review site, or the root of a split export (all batches)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Progress of a review: per-reviewer counts, decisions per hour and what is left.

    Example: surd review status review/
    """
    try:
        sites = [site_status(d) for d in site_dirs(review_dir)]
    except JournalError as exc:
        fail(str(exc))
    total = total_status(sites) if len(sites) > 1 else None
    if as_json:
        typer.echo(json.dumps({"sites": sites, "total": total} if total else sites[0], indent=1))
        return
    for st in sites:
        _print_status(st, st["site"] + (" (adjudication)" if st["role"] == "adjudication" else ""))
    if total:
        _print_status(total, f"all {len(sites)} batches")


@review_app.command("rebuild")
def rebuild_cmd(review_dir: Path = typer.Argument(..., help="A served review site (holds decisions.jsonl).")) -> None:
    """Rebuild REVIEW_DIR/decisions.json from the journal decisions.jsonl (the server also does it on start).

    Example: surd review rebuild review/batch_00
    """
    try:
        n, seq = rebuild_snapshot(review_dir)
    except JournalError as exc:
        fail(str(exc))
    typer.echo(f"{review_dir}/decisions.json: {n} decisions, up to change {seq}")


def _fmt_kappa(k: float) -> str:
    return "n/a (one class only)" if math.isnan(k) else f"{k:.3f}"


def _print_agreement(a: Agreement) -> None:
    if not a.n:
        typer.echo("agreement: no sample was decided in two files (export with --overlap to measure it)")
        return
    typer.echo(f"agreement: {a.percent:.1f}% of {a.n} paired decisions ({a.agree} agree), "
               f"Cohen's kappa {_fmt_kappa(a.kappa)}")
    if len(a.pairs) > 1:
        for p in a.pairs:
            typer.echo(f"  {p.a} vs {p.b}: {p.percent:.1f}% of {p.n}, kappa {_fmt_kappa(p.kappa)}")


def _print_settled(plan: ImportPlan, conflict: str) -> None:
    m = plan.merged
    if not m.disagreements:
        return
    by = {how: sum(1 for h in m.settled.values() if h == how) for how in ("adjudicated", "accept", "reject")}
    typer.echo(f"{len(m.disagreements)} disagreement(s): {by['adjudicated']} adjudicated"
               + (f", {by[conflict]} settled by --conflict {conflict}" if conflict in ("accept", "reject") else "")
               + (f", {len(m.unsettled)} waiting for adjudication" if m.unsettled else ""))


@review_app.command("import")
def import_cmd(
    dataset: Path = typer.Argument(..., help="The dataset directory that was exported for review."),
    decisions: list[Path] = typer.Argument(..., help="Decision files: decisions.json(l), Label Studio export, CSV."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory (the reviewed dataset)."),
    undecided: str = typer.Option("drop", help="keep or drop (reason manual_undecided) samples with no decision."),
    conflict: str = typer.Option("error", help="Samples decided differently in two files: error (list them), reject "
                                 "(manual_disagreement), accept, or adjudicate (a site of only those, for a third "
                                 "person; exits 3 until its decisions are imported too)."),
    adjudication: Path = typer.Option(None, help="Where --conflict adjudicate writes its site [default: OUT_adjudication]."),
) -> None:
    """Apply review decisions: print the reviewers' agreement, settle disagreements, keep accepted samples.

    Example: surd review import runs/x/04_safety review/batch_*/decisions.jsonl --out runs/x/05_review --conflict adjudicate
    """
    if conflict not in CONFLICT_RULES:
        fail(f"--conflict must be one of {', '.join(CONFLICT_RULES)}, got {conflict!r}")
    adj = adjudication or out.with_name(out.name + "_adjudication")
    try:
        plan = plan_import(dataset, decisions, undecided=undecided, conflict=conflict, adjudication_dir=adj)
    except (DecisionError, FileExistsError) as exc:
        fail(str(exc))
    _print_agreement(plan.merged.agreement)
    _print_settled(plan, conflict)
    if plan.config is None:
        assert plan.adjudication is not None
        verb = "wrote an adjudication site" if plan.written else "still to decide"
        typer.echo(f"{verb} with {len(plan.pending)} disagreement(s): {plan.adjudication}\n"
                   f"  a third reviewer decides them (surd review serve {plan.adjudication}), then rerun this import "
                   f"adding {plan.adjudication / 'decisions.jsonl'}")
        raise typer.Exit(3)
    run_and_report("review", plan.config, out, dataset)


def register(app: typer.Typer) -> None:
    """Add the `surd review` command group."""
    app.add_typer(review_app, name="review")
