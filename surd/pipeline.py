"""`surd run pipelines/<name>.yaml`: an ordered list of stages, each reading the previous one's output.

Besides ``name`` and ``stages``, a pipeline file may say where and how it runs, so a cluster run needs no flags:
``runs_dir`` (a path or URL such as ``s3://bucket/runs``), ``executor`` (local or ray), ``address`` (the Ray
cluster), ``workers``; a stage entry may add its own ``workers`` and ``resources`` (``num_cpus``, ``num_gpus`` per
worker on Ray). Command-line flags override the file's top-level settings; a stage's own ``workers`` wins over both.
``fuse`` (default true) runs consecutive per-shard stages over each shard in one pass (`fused_groups`): the same
output bytes as one stage after the other, each image decoded once, each model loaded once per worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from surd import storage
from surd.executors import EXECUTORS, check_resources
from surd.registry import Registry, canonical
from surd.runner import RunResult, fusable, run_chain, run_stage
from surd.stages import STAGES, build_config, get_stage

# Steps that are not shard → shard stages (training, evaluation): function(input_dir, output_dir, config) -> dict.
JOBS = Registry("job", {"train_adapter": "surd.adapter.train:run_job", "eval": "surd.eval.run:run_job",
                        "card": "surd.export.card:run_job"})


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


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]
    runs_dir: str | None = None
    executor: str | None = None
    address: str | None = None
    workers: int | None = None
    fuse: bool = True  # consecutive per-shard stages run fused (`fused_groups`)


def _workers(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: workers must be a whole number >= 1, got {value!r}")
    return value


def _cluster(doc: dict[str, Any], p: Path) -> dict[str, Any]:
    """The file's top-level run settings, validated."""
    executor = doc.get("executor")
    if executor is not None and canonical(str(executor)) not in EXECUTORS:
        raise ValueError(f"{p}: executor must be one of {', '.join(EXECUTORS.names())}, got {executor!r}")
    for key in ("address", "runs_dir"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise ValueError(f"{p}: {key} must be a string, got {doc[key]!r}")
    fuse = doc.get("fuse", True)
    if not isinstance(fuse, bool):
        raise ValueError(f"{p}: fuse must be true or false (run consecutive per-shard stages in one pass), got {fuse!r}")
    return {"runs_dir": doc.get("runs_dir"), "executor": executor and canonical(str(executor)),
            "address": doc.get("address"), "workers": _workers(doc.get("workers"), str(p)), "fuse": fuse}


def load_pipeline(path: str | Path) -> Pipeline:
    """Parse and validate a pipeline file; errors name the step and what to change."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"pipeline file {p} not found (see pipelines/ for examples)")
    doc = yaml.safe_load(p.read_text()) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list) or not doc["stages"]:
        raise ValueError(f"{p}: expected a mapping with a non-empty 'stages' list of {{stage, config}} entries")
    name = str(doc.get("name") or p.stem)
    steps = []
    for i, entry in enumerate(doc["stages"]):
        if not isinstance(entry, dict) or "stage" not in entry:
            raise ValueError(f"{p}: stages[{i}] needs a 'stage' key (one of {', '.join(sorted([*STAGES, *JOBS]))})")
        stage = canonical(str(entry["stage"]))
        if stage not in STAGES and stage not in JOBS:
            raise ValueError(f"{p}: stages[{i}]: unknown stage {entry['stage']!r}; "
                             f"valid: {', '.join(sorted([*STAGES, *JOBS]))}")
        extra = sorted(set(entry) - {"stage", "config", "workers", "resources"})
        if extra:
            raise ValueError(f"{p}: stages[{i}]: unknown key(s) {extra}; allowed: stage, config, workers, resources")
        try:
            resources = check_resources(entry.get("resources")) if entry.get("resources") is not None else None
        except (ValueError, AttributeError) as e:
            raise ValueError(f"{p}: stages[{i}]: {e}") from None
        workers = _workers(entry.get("workers"), f"{p}: stages[{i}]")
        steps.append(Step(i, stage, dict(entry.get("config") or {}), workers, resources))
    if steps[0].stage != "ingest":
        raise ValueError(f"{p}: the first stage must be ingest (the others read the previous stage's shards)")
    return Pipeline(name, tuple(steps), **_cluster(doc, p))


def run_pipeline(path: str | Path, runs_dir: str | Path | None = None, *, workers: int | None = None,
                 executor: str | None = None, address: str | None = None, retries: int = 2, progress: bool = True,
                 until: str | None = None, fuse: bool | None = None) -> list[tuple[Step, Any]]:
    """Run every step into <runs_dir>/<name>/<NN>_<stage>/; stops at the first step with failed shards, or after the
    step named `until` (e.g. stop before the manual review, review, then rerun: finished steps are skipped).

    Consecutive per-shard stages run fused (`fused_groups`, `surd.runner.run_chain`) unless `fuse` (or the file's
    ``fuse``) is false: the same output bytes, each image decoded once and each model loaded once per worker.
    ``runs_dir``, ``workers``, ``executor`` and ``address`` left at None come from the pipeline file, else the
    defaults (``runs``, the executor's own worker count, ``local``, none)."""
    pipe = load_pipeline(path)
    if until is not None and canonical(until) not in {s.stage for s in pipe.steps}:
        raise ValueError(f"--until {until!r} is not a stage of {path}: {', '.join(s.stage for s in pipe.steps)}")
    base = storage.join(runs_dir if runs_dir is not None else pipe.runs_dir or "runs", pipe.name)
    executor = canonical(executor) if executor else pipe.executor or "local"
    address = address or (pipe.address if executor == (pipe.executor or "local") else None)  # the file's cluster
    workers = workers or pipe.workers
    results: list[tuple[Step, Any]] = []
    input_dir: str | None = None
    for group in fused_groups(pipe, until, pipe.fuse if fuse is None else fuse):
        step, outs = group[0], [storage.join(base, s.dirname) for s in group]
        if step.stage in JOBS:
            results.append((step, JOBS.load(step.stage)(input_dir, outs[0], step.config)))
        elif len(group) == 1:
            results.append((step, run_stage(step.stage, step.config, outs[0], input_dir, workers=step.workers or workers,
                                            executor=executor, address=address, retries=retries, progress=progress,
                                            resources=step.resources)))
        else:
            done = run_chain([(s.stage, s.config, out) for s, out in zip(group, outs)], input_dir,
                             workers=step.workers or workers, executor=executor, address=address, retries=retries,
                             progress=progress, resources=step.resources)
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
