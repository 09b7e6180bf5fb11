"""`surd run pipelines/<name>.yaml`: an ordered list of stages, each reading the previous one's output.

Besides ``name`` and ``stages``, a pipeline file may say where and how it runs, so a cluster run needs no flags:
``runs_dir`` (a path or URL such as ``s3://bucket/runs``), ``executor`` (local or ray), ``address`` (the Ray
cluster), ``workers``; a stage entry may add its own ``workers`` and ``resources`` (``num_cpus``, ``num_gpus`` per
worker on Ray). Command-line flags override the file's top-level settings; a stage's own ``workers`` wins over both.
``fuse`` (default true) runs consecutive per-shard stages over each shard in one pass (`fused_groups`): the same
output bytes as one stage after the other, each image decoded once, each model loaded once per worker.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from surd import storage
from surd.executors import check_resources
from surd.options import config, option, problems
from surd.registry import Registry, canonical
from surd.runner import RunResult, RunSettings, fusable, run_chain
from surd.stages import STAGES, build_config, get_stage
from surd.trust import is_safe_name

# Steps that are not shard → shard stages (training, evaluation): function(input_dir, output_dir, config) -> dict.
JOBS = Registry("job", {"train_adapter": "surd.adapter.train:run_job", "eval": "surd.eval.evaluate:run_job",
                        "card": "surd.export.card:run_job"})
# Each job's config class, checked for unknown keys before anything runs; the keys a job sets itself are left out.
JOB_CONFIGS = Registry("job config", {"train_adapter": "surd.adapter.config:TrainConfig",
                                      "eval": "surd.eval.config:EvalConfig", "card": "surd.export.card:CardConfig"})
JOB_SETS = {"train_adapter": ("data", "out"), "eval": ("out",), "card": ()}


@dataclass(frozen=True)
class Step:
    index: int
    stage: str
    config: dict[str, Any]
    workers: int | None = None
    resources: dict[str, float] | None = None

    @property
    def dirname(self) -> str:
        return f"{self.index:02d}_{self.stage}"


@config
class PipelineSettings(RunSettings):
    """A pipeline file's top-level run settings (besides ``name`` and ``stages``); `surd run`'s flags override them."""

    runs_dir: str | None = option(None, help="Where <name>/<NN>_<stage>/ are written: a path or URL "
                                  "(s3://bucket/runs); default: runs.")
    fuse: bool = option(True, help="Run consecutive per-shard stages (caption, clip_filter, safety, ...) over each "
                        "shard in one pass: the same outputs, each image decoded once.")


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]
    settings: PipelineSettings = PipelineSettings()


STEP_KEYS = ("stage", "config", "workers", "resources")


class PipelineError(ValueError):
    """A pipeline file with problems; the message lists every one (nothing has run)."""


def _read_yaml(p: Path) -> Any:
    try:
        return yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PipelineError(f"{p}: not valid YAML{where}: {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PipelineError(f"{p}: cannot read the pipeline file: {e}") from None


def _step(i: int, entry: Any, found: list[str], build: bool) -> Step | None:
    """One checked step; its problems are added to `found`. Without `build` its config is checked for keys, types
    and values but not built (a review step after --until: its decision files may not exist yet)."""
    at = f"stages[{i}]"
    valid = ", ".join(sorted([*STAGES, *JOBS]))
    if not isinstance(entry, dict) or "stage" not in entry:
        found.append(f"{at} needs a 'stage' key (one of {valid})")
        return None
    stage = canonical(str(entry["stage"]))
    if stage not in STAGES and stage not in JOBS:
        found.append(f"{at}: unknown stage {entry['stage']!r}; valid: {valid}")
        return None
    at = f"stages[{i}] ({stage})"
    extra = sorted(set(entry) - set(STEP_KEYS))
    if extra:
        found.append(f"{at}: unknown key(s) {', '.join(map(str, extra))}; allowed: {', '.join(STEP_KEYS)}")
    config = entry.get("config") or {}
    resources = None
    try:
        resources = check_resources(entry.get("resources")) if entry.get("resources") is not None else None
    except (ValueError, AttributeError) as e:
        found.append(f"{at}: {e}")
    workers = entry.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        found.append(f"{at}: workers must be a whole number >= 1, got {workers!r}")
    if stage in STAGES:
        found.extend(f"{at}: {p}" for p in problems(get_stage(stage).Config, config, construct=build))
    elif not isinstance(config, dict):
        found.append(f"{at}: config must be a mapping, got {config!r}")
    else:
        allowed = {f.name for f in dataclasses.fields(JOB_CONFIGS.load(stage))} - set(JOB_SETS[stage])
        unknown = sorted(set(map(str, config)) - allowed)
        if unknown:
            found.append(f"{at}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(allowed))}")
    return Step(i, stage, dict(config) if isinstance(config, dict) else {}, workers, resources)


def load_pipeline(path: str | Path, until: str | None = None, build: bool = False) -> Pipeline:
    """Parse and check a whole pipeline file: YAML syntax (line and column), unknown keys at every level, the run
    settings, the run's name, and every stage's config (types, allowed values, bounds). With `build` (as
    `run_pipeline` does before anything runs) every stage config up to `until` is also built, so its own checks
    (files that must exist, options that go together) run too. One `PipelineError` lists every problem."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"pipeline file {p} not found (see pipelines/ for examples)")
    doc = _read_yaml(p)
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list) or not doc["stages"]:
        raise PipelineError(f"{p}: expected a mapping with a non-empty 'stages' list of {{stage, config}} entries")
    found: list[str] = []
    settings_keys = {f.name for f in dataclasses.fields(PipelineSettings)}
    unknown = sorted(set(map(str, doc)) - {"name", "stages"} - settings_keys)
    if unknown:
        found.append(f"unknown top-level key(s) {', '.join(unknown)}; allowed: name, stages, "
                     f"{', '.join(sorted(settings_keys))}")
    values = {k: v for k, v in doc.items() if k in settings_keys}
    found.extend(problems(PipelineSettings, values))
    name = doc.get("name", p.stem)
    if not isinstance(name, str) or not is_safe_name(name):  # a run's folder under runs_dir: never a path
        found.append(f"name must be a plain folder name (letters, digits, '.', '_', '-'; no '/' or '..'), got {name!r}")
    steps: list[Step] = []
    for i, entry in enumerate(doc["stages"]):
        past_until = until is not None and any(s.stage == canonical(until) for s in steps)
        step = _step(i, entry, found, build=build and not past_until)
        if step is not None:
            steps.append(step)
    if steps and steps[0].stage != "ingest":
        found.append("the first stage must be ingest (the others read the previous stage's shards)")
    if until is not None and canonical(until) not in {s.stage for s in steps}:
        found.append(f"--until {until!r} is not a stage of this file: {', '.join(s.stage for s in steps)}")
    if found:
        raise PipelineError(f"{p}: {len(found)} problem(s), nothing was run:\n  " + "\n  ".join(found))
    return Pipeline(name, tuple(steps), PipelineSettings(**values))


def run_pipeline(path: str | Path, runs_dir: str | Path | None = None, *, workers: int | None = None,
                 executor: str | None = None, address: str | None = None, retries: int | None = None, progress: bool = True,
                 until: str | None = None, fuse: bool | None = None, finished_only: bool | None = None,
                 append: bool | None = None) -> list[tuple[Step, Any]]:
    """Run every step into <runs_dir>/<name>/<NN>_<stage>/; stops at the first step with failed shards, or after the
    step named `until` (e.g. stop before the manual review, review, then rerun: finished steps are skipped).
    With `append` (or the file's ``append``) the ingest step adds what its source holds now as new shards, and every
    later per-shard stage processes only those; global passes (dedup) decide the new samples against the kept
    ones, and the card step describes the whole run again.

    Consecutive per-shard stages run fused (`fused_groups`, `surd.runner.run_chain`) unless `fuse` (or the file's
    ``fuse``) is false: the same output bytes, each image decoded once and each model loaded once per worker.
    ``runs_dir``, ``workers``, ``executor`` and ``address`` left at None come from the pipeline file, else the
    defaults (``runs``, the executor's own worker count, ``local``, none)."""
    pipe = load_pipeline(path, until, build=True)
    file = pipe.settings
    base = storage.join(runs_dir if runs_dir is not None else file.runs_dir or "runs", pipe.name)
    executor = canonical(executor) if executor else file.executor or "local"
    address = address or (file.address if executor == (file.executor or "local") else None)  # the file's cluster
    workers = workers or file.workers
    retries = file.retries if retries is None else retries
    finished_only = file.finished_only if finished_only is None else finished_only
    append = file.append if append is None else append
    results: list[tuple[Step, Any]] = []
    input_dir: str | None = None
    for group in fused_groups(pipe, until, file.fuse if fuse is None else fuse):
        step, outs = group[0], [storage.join(base, s.dirname) for s in group]
        if step.stage in JOBS:
            results.append((step, JOBS.load(step.stage)(input_dir, outs[0], step.config)))
        else:  # one stage or several fused: the one run path (a single stage is a chain of one)
            done = run_chain([(s.stage, s.config, out) for s, out in zip(group, outs)], input_dir,
                             workers=step.workers or workers, executor=executor, address=address, retries=retries,
                             progress=progress, resources=step.resources, finished_only=finished_only,
                             append=append and group[0] is pipe.steps[0])
            results.extend(zip(group, done))
        if any(isinstance(r, RunResult) and not r.ok for _, r in results[-len(group):]):
            break
        input_dir = outs[-1]
    return results


def fused_groups(pipe: Pipeline, until: str | None = None, fuse: bool = True) -> list[list[Step]]:
    """The steps to run, in order (up to `until`), in groups that run fused: each group with more than one step is
    a maximal run of consecutive per-shard stages (`surd.runner.fusable`: no source stage, a stage with a global
    pass only last) with the same ``workers`` and ``resources``. Jobs (training, evaluation) run on their own."""
    groups: list[list[Step]] = []
    for step in pipe.steps:
        last = groups[-1] if groups else None
        if fuse and last and _joins(last, step):
            last.append(step)
        else:
            groups.append([step])
        if until is not None and step.stage == canonical(until):
            break
    return groups


def _joins(group: list[Step], step: Step) -> bool:
    if step.stage in JOBS or group[-1].stage in JOBS:
        return False
    if (step.workers, step.resources) != (group[0].workers, group[0].resources):
        return False
    try:  # a config not valid yet (review before its decisions exist) fails when its step runs alone, as unfused
        build_config(get_stage(step.stage), step.config)
    except (ValueError, FileNotFoundError, TypeError):
        return False
    return fusable([*(s.stage for s in group), step.stage]) is None
