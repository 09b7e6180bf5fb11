"""`surd eval`: the paper's evaluation (baseline vs SUR-adapter images, CLIP scores, semantic accuracy by VQA and a
detector, image quality with the paper's t-test and Welch's, the paper's figures beside the run's) as one command;
`surd eval study …` for the blind preference study; `surd eval judge …` for people as the reference judge;
`surd eval compare`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from surd.commands.common import DEVICE, DTYPE, _param, fail, serve_command
from surd.eval.compare import compare_runs, format_text
from surd.eval.config import METRICS, EvalConfig, MetricModels
from surd.eval.evaluate import load_config, run_eval, write_outputs
from surd.eval.judge import JudgeConfig, JudgeState, export_judge, import_labels
from surd.eval.prompts import load_prompt_set
from surd.eval.study import StudyConfig, StudyState, export_study, import_answers
from surd.review.records import DecisionError
from surd.review.server import serve

eval_app = typer.Typer(
    help="Evaluate adapters against their base model: images with identical seeds, CLIP scores, semantic accuracy per "
    "prompt type (VQA and a detector; people via `surd eval judge`), BRISQUE / CLIP-IQA / MUSIQ with the paper's t-test "
    "and Welch's, the paper's figures beside the run's, and a report.\n\n"
    "Example: surd eval --base runwayml/stable-diffusion-v1-5 --adapter runs/paper/05_train_adapter "
    "--prompts paper --images-per-prompt 10 --seed 0 --out eval/",
    invoke_without_command=True,
)
study_app = typer.Typer(help="The blind A/B preference study: export the page, serve it, import the answers.\n\n"
                        "Example: surd eval study export eval/ --out eval-study/ && surd eval study serve eval-study/",
                        no_args_is_help=True)
eval_app.add_typer(study_app, name="study")
judge_app = typer.Typer(help="People as the reference judge of semantic accuracy: export the yes/no page, serve it, "
                        "import the answers (human accuracy, each automated judge's accuracy and kappa against people)."
                        "\n\nExample: surd eval judge export eval/ --out eval-judge/ && surd eval judge serve eval-judge/",
                        no_args_is_help=True)
eval_app.add_typer(judge_app, name="judge")


@eval_app.callback()
def eval_cmd(
    ctx: typer.Context,
    base: str = typer.Option(None, "--base", help="Base SD model: hub id, local diffusers folder, or tiny."),
    adapter: list[str] = typer.Option(None, "--adapter", help="Adapter folder, or NAME=DIR (repeat for several)."),
    out: Path = typer.Option(Path("eval"), "--out", "-o", help="Output folder (rerun the same command to resume)."),
    prompts: str = typer.Option("paper", help="Prompt set: paper (45: the paper's 18 + surd's), paper-table1 (the "
                                "nine of Tables 1/7), or a YAML/JSON file in their format."),
    images_per_prompt: int = typer.Option(10, help="Images per prompt and model (seeds seed … seed+n-1)."),
    seed: int = typer.Option(0, help="First seed; the same seeds are used for every model and prompt."),
    steps: int = typer.Option(50, help="Denoising steps."),
    guidance: float = typer.Option(7.5, help="Classifier-free guidance scale."),
    size: int = typer.Option(None, help="Image side in pixels (default: the base model's native size)."),
    negative_prompt: str = typer.Option("", help="Negative prompt for every image."),
    pipeline: str = typer.Option("sd", help="Diffusers pipeline: sd, sag or panorama."),
    batch_size: int = typer.Option(8, help="Images per scoring batch (each image is generated alone: same bytes "
                                   "whatever the batch size)."),
    metrics: str = typer.Option(",".join(METRICS), help="Comma-separated metrics to compute."),
    clip_model: str = typer.Option("ViT-B-32", help="CLIP for the CLIP scores: open_clip name, local folder, tiny."),
    clip_pretrained: str = typer.Option("openai", help="open_clip weights tag or a local checkpoint file."),
    vqa_model: str = typer.Option("Salesforce/blip-vqa-base", help="BLIP VQA: hub id, local folder, or tiny."),
    detector: str = typer.Option(MetricModels.detector, help="Zero-shot object detector (OWLv2, OWL-ViT, Grounding "
                                 "DINO) for the second judge: hub id, local folder, or tiny."),
    detect_threshold: float = typer.Option(MetricModels.detect_threshold, help="Detector confidence an object needs "
                                           "to count."),
    paper_setting: str = typer.Option("", help="The paper's row to compare with, 'MODEL / METHOD' (e.g. 'DM (1.5) / "
                                      "MultiDiffusion'); default: the one matching --base and --pipeline."),
    brisque: str = typer.Option("brisque", help="BRISQUE SVM: pyiqa name, local tensor file, or tiny."),
    musiq: str = typer.Option("musiq", help="MUSIQ: pyiqa name (musiq = KonIQ), local weight file, or tiny."),
    clip_iqa: str = typer.Option("clip_iqa", help="CLIP-IQA: clip_iqa (RN50), a transformers CLIP id/folder, tiny."),
    tiny_metrics: bool = typer.Option(False, "--tiny-metrics", help="Every scoring model tiny (offline smoke run)."),
    device: str = DEVICE,
    dtype: str = DTYPE,
) -> None:
    """Generate baseline and adapter images with identical seeds, score them, and write OUT/report.html.

    Example: surd eval --base tiny --adapter runs/sample/05_train_adapter --tiny-metrics --images-per-prompt 2 --out eval/
    """
    if ctx.invoked_subcommand is not None:
        return
    if not base or not adapter:
        fail("pass --base MODEL and at least one --adapter DIR (see `surd eval --help`)")
    models = MetricModels.tiny() if tiny_metrics else MetricModels(
        clip=clip_model, clip_pretrained=clip_pretrained, vqa=vqa_model, detector=detector,
        detect_threshold=detect_threshold, brisque=brisque, musiq=musiq, clip_iqa=clip_iqa)
    cfg = EvalConfig(base=base, adapters=tuple(adapter), out=str(out), prompts=prompts,
                     images_per_prompt=images_per_prompt, seed=seed, steps=steps, guidance=guidance, size=size,
                     negative_prompt=negative_prompt, pipeline=pipeline, batch_size=batch_size,
                     paper_setting=paper_setting,
                     metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()), models=models, device=device,
                     dtype=dtype)
    results = run_eval(cfg)
    t = results.get("timing") or {}
    typer.echo(f"{out / 'report.html'}: {', '.join(results['models'])}; generated {t.get('generated', 0)} images "
               f"({t.get('seconds', 0):.1f}s), scored {t.get('scored', 0)} ({t.get('score_seconds', 0):.1f}s)")


@eval_app.command("report")
def report_cmd(run: Path = typer.Argument(..., help="A folder written by `surd eval`.")) -> None:
    """Rewrite results.json, results.csv and report.html from what the folder holds (no generation, no scoring).

    Example: surd eval report eval/
    """
    cfg = load_config(run)
    write_outputs(cfg, load_prompt_set(cfg.prompts))
    typer.echo(f"wrote {run / 'report.html'}")


@eval_app.command("compare")
def compare_cmd(
    run_a: Path = typer.Argument(..., help="First `surd eval` folder (e.g. the layer-40 adapter's)."),
    run_b: Path = typer.Argument(..., help="Second `surd eval` folder (e.g. the layer-60 adapter's)."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write compare.html and compare.json here."),
) -> None:
    """Two evaluations side by side (e.g. LLaMA layer 40 vs 60, the paper's Table 4).

    Example: surd eval compare eval-layer40/ eval-layer60/ --out eval-compare/
    """
    typer.echo(format_text(compare_runs(run_a, run_b, out)))
    if out is not None:
        typer.echo(f"wrote {out / 'compare.html'}")


@study_app.command("export")
def study_export_cmd(
    run: Path = typer.Argument(..., help="A folder written by `surd eval`."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the study page (share it, or serve it)."),
    pairs: int = typer.Option(None, help="Use a random sample of N pairs (default: every prompt × seed)."),
    seed: int = typer.Option(0, help="Seed of the pair sample, order and left/right sides."),
    adapter: list[str] = typer.Option(None, "--adapter", help="Only these adapters (default: all)."),
) -> None:
    """Write the blind A/B page: raters pick the better image of each pair with ← / →.

    Example: surd eval study export eval/ --out eval-study/ --pairs 60
    """
    res = export_study(run, out, StudyConfig(pairs=pairs, seed=seed, adapters=tuple(adapter or ())))
    typer.echo(f"{res['pairs']} pairs in {out}: open {out / 'index.html'} or run: surd eval study serve {out}\n"
               f"the side key is in {res['key']} (keep it out of the raters' hands)")


STUDY_SERVE_DOC = """Serve the study page (the review server: same access checks); each rater's answers go to SITE/answers/.

Example: surd eval study serve eval-study/ --host 0.0.0.0 --port 8766
"""
STUDY_SITE = _param("site", typer.Argument(..., help="A study page written by `surd eval study export`."), Path)
study_app.command("serve")(serve_command(
    STUDY_SITE, STUDY_SERVE_DOC, lambda site, cfg: serve(site, cfg, state_class=StudyState, verb="running the study in"),
    port=8766))


def import_command(importer: Callable[[Path, list[Path]], Any], run_help: str, answers_help: str, doc: str,
                   report: Callable[[Path, Any], None]) -> Callable[..., None]:
    """A rating page's `import` command: RUN (the evaluation the page was exported from) and ANSWERS (answer files
    and served page folders); `importer(run, answers)` checks and records them (a DecisionError lists what is
    wrong, exit 2), `report(run, result)` prints the outcome."""

    def command(run: Path = typer.Argument(..., help=run_help),
                answers: list[Path] = typer.Argument(..., help=answers_help)) -> None:
        try:
            result = importer(run, list(answers))
        except DecisionError as exc:
            fail(str(exc))
        report(run, result)

    command.__doc__ = doc
    return command


def _study_report(run: Path, res: dict[str, Any]) -> None:
    for a, p in res["adapters"].items():
        typer.echo(f"{a}: preferred in {100 * p['rate']:.1f}% of {p['n']} votes over the baseline (binomial p = "
                   f"{p['p']:.4g})")
    typer.echo(f"{res['raters']} rater(s); report updated: {run / 'report.html'}")


study_app.command("import")(import_command(
    import_answers, "The `surd eval` folder the study was exported from.",
    "Answer files (the page's Export) and/or served study folders.",
    """Turn the answers into preference percentages with a binomial test and refresh the report.

    Example: surd eval study import eval/ answers-*.json eval-study/
    """, _study_report))


@judge_app.command("export")
def judge_export_cmd(
    run: Path = typer.Argument(..., help="A folder written by `surd eval`."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the judging page (share it, or serve it)."),
    images: int = typer.Option(None, help="Use a random sample of N images (default: every image of every model)."),
    seed: int = typer.Option(0, help="Seed of the sample and the order."),
    model: list[str] = typer.Option(None, "--model", help="Only these models (baseline or an adapter's name)."),
    type_: list[str] = typer.Option(None, "--type", help="Only these prompt types (action, color, counting)."),
) -> None:
    """Write the judging page: each image with its prompt and what to check; raters answer Y / N / S.

    Example: surd eval judge export eval/ --out eval-judge/ --images 200
    """
    res = export_judge(run, out, JudgeConfig(images=images, seed=seed, models=tuple(model or ()),
                                             types=tuple(type_ or ())))
    typer.echo(f"{res['images']} images in {out}: open {out / 'index.html'} or run: surd eval judge serve {out}\n"
               f"which image is which is in {res['key']}")


JUDGE_SERVE_DOC = """Serve the judging page (the review server: same access checks); every answer is journaled in SITE.

Example: surd eval judge serve eval-judge/ --host 0.0.0.0 --port 8767
"""
JUDGE_SITE = _param("site", typer.Argument(..., help="A judging page written by `surd eval judge export`."), Path)
judge_app.command("serve")(serve_command(
    JUDGE_SITE, JUDGE_SERVE_DOC, lambda site, cfg: serve(site, cfg, state_class=JudgeState, verb="judging in"),
    port=8767))


def _judge_report(run: Path, human: dict[str, Any]) -> None:
    for j, e in human["judges"].items():
        acc = "–" if e["accuracy"] is None else f"{100 * e['accuracy']:.1f}%"
        kappa = "–" if e["kappa"] is None else f"{e['kappa']:.2f}"
        typer.echo(f"{j}: agrees with people on {acc} of {e['n']} images (Cohen's kappa {kappa})")
    typer.echo(f"{len(human['raters'])} rater(s), {human['images']} image(s) labelled; report updated: "
               f"{run / 'report.html'}")


judge_app.command("import")(import_command(
    import_labels, "The `surd eval` folder the page was exported from.",
    "Answer files (the page's Export) and/or served judging folders.",
    """Turn people's answers into the human accuracy and each judge's accuracy and kappa against people.

    Example: surd eval judge import eval/ eval-judge/ answers-*.json
    """, _judge_report))


def register(app: typer.Typer) -> None:
    """Add the `surd eval` command group."""
    app.add_typer(eval_app, name="eval")
