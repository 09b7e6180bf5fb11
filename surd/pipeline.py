"""`surd run pipelines/<name>.yaml`: an ordered list of stages, each reading the previous one's output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from surd.registry import Registry, canonical
from surd.runner import RunResult, run_stage
from surd.stages import STAGES

# Steps that are not shard → shard stages (training, evaluation): function(input_dir, output_dir, config) -> dict.
JOBS = Registry("job", {"train_adapter": "surd.adapter.train:run_job", "eval": "surd.eval.run:run_job"})


@dataclass(frozen=True)
class Step:
    index: int
    stage: str
    config: dict[str, Any]
    workers: int | None = None

    @property
    def dirname(self) -> str:
        return f"{self.index:02d}_{self.stage}"


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]


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
        extra = sorted(set(entry) - {"stage", "config", "workers"})
        if extra:
            raise ValueError(f"{p}: stages[{i}]: unknown key(s) {extra}; allowed: stage, config, workers")
        steps.append(Step(i, stage, dict(entry.get("config") or {}), entry.get("workers")))
    if steps[0].stage != "ingest":
        raise ValueError(f"{p}: the first stage must be ingest (the others read the previous stage's shards)")
    return Pipeline(name, tuple(steps))


def run_pipeline(path: str | Path, runs_dir: str | Path = "runs", *, workers: int = 1, executor: str = "local",
                 address: str | None = None, retries: int = 2, progress: bool = True,
                 until: str | None = None) -> list[tuple[Step, Any]]:
    """Run every step into runs/<name>/<NN>_<stage>/; stops at the first step with failed shards, or after the
    step named `until` (e.g. stop before the manual review, review, then rerun: finished steps are skipped)."""
    pipe = load_pipeline(path)
    if until is not None and canonical(until) not in {s.stage for s in pipe.steps}:
        raise ValueError(f"--until {until!r} is not a stage of {path}: {', '.join(s.stage for s in pipe.steps)}")
    base = Path(runs_dir) / pipe.name
    results: list[tuple[Step, Any]] = []
    input_dir: Path | None = None
    for step in pipe.steps:
        out = base / step.dirname
        if step.stage in JOBS:
            results.append((step, JOBS.load(step.stage)(input_dir, out, step.config)))
            if until is not None and step.stage == canonical(until):
                break
            input_dir = out
            continue
        res: RunResult = run_stage(step.stage, step.config, out, input_dir, workers=step.workers or workers,
                                   executor=executor, address=address, retries=retries, progress=progress)
        results.append((step, res))
        if not res.ok or (until is not None and step.stage == canonical(until)):
            break
        input_dir = out
    return results
