"""Runs one stage over every shard of its input: skip done shards, retry failures, save config and stats."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

import surd
from surd import shards
from surd.executors import get_executor
from surd.files import clean_temp_files, write_json_atomic
from surd.sample import Rejected, Sample
from surd.stages import build_config, canonical, config_to_dict, get_stage
from surd.stages.contract import FinalizingStage, SourceStage
from surd.task import ShardTask


@dataclass
class RunResult:
    output_dir: Path
    stats: dict[str, Any] = field(default_factory=dict)  # totals: in, kept, rejected{reason: n}
    done: list[str] = field(default_factory=list)  # shards written by this run
    skipped: list[str] = field(default_factory=list)  # shards already done before
    failed: dict[str, str] = field(default_factory=dict)  # stem → last error

    @property
    def ok(self) -> bool:
        return not self.failed


class ConfigMismatch(ValueError):
    """The output directory was written by a run with a different config."""


def _check_config(output_dir: Path, record: dict[str, Any]) -> None:
    old = shards.read_config(output_dir)
    if old is None:
        write_json_atomic(output_dir / shards.CONFIG_NAME, record)
        return
    for k in ("stage", "config", "input"):
        if old.get(k) != record.get(k):
            raise ConfigMismatch(
                f"{output_dir} was written by a run with a different {k} ({json.dumps(old.get(k))[:300]}); "
                "pass a new output directory, or delete this one to start over"
            )


def plan_tasks(module: Any, cfg: Any, output_dir: Path, input_dir: str | Path | None) -> list[ShardTask]:
    """Source stages plan their own shards; other stages get one task per done input shard."""
    if isinstance(module, SourceStage):
        return [ShardTask(shards.shard_name(i), rows, len(rows))
                for i, rows in enumerate(module.plan(cfg, output_dir / "_state"))]
    if input_dir is None:
        raise ValueError(f"stage {module.NAME} needs an input dataset directory")
    done = set(shards.list_done(input_dir))
    paths = [p for p in shards.list_shards(input_dir) if p.stem in done]
    if not paths:
        raise FileNotFoundError(f"no finished shards in {input_dir}: run the previous stage first")
    return [ShardTask(p.stem, str(p), shards.count_samples(p)) for p in paths]


def run_stage(stage: str, cfg: Any, output_dir: str | Path, input_dir: str | Path | None = None, *,
              workers: int = 1, executor: str = "local", retries: int = 2, progress: bool = True,
              address: str | None = None) -> RunResult:
    """Run `stage` over all shards into `output_dir`; done shards are skipped, failed ones retried `retries` times.

    Example:
        run_stage("ingest", {"source": "manifest", "path": "manifests/sample/manifest.jsonl"}, "runs/x/00_ingest")
    """
    module = get_stage(stage)
    if isinstance(cfg, dict):
        cfg = build_config(module, cfg)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean_temp_files(out)
    _check_config(out, {"stage": canonical(stage), "config": config_to_dict(cfg),
                        "input": str(Path(input_dir).resolve()) if input_dir else None, "surd_version": surd.__version__})
    tasks = plan_tasks(module, cfg, out, input_dir)
    result = RunResult(output_dir=out)
    pending = []
    for t in tasks:
        if shards.is_done(out, t.stem):
            result.skipped.append(t.stem)
        else:
            pending.append(t)
    runner = get_executor(executor, workers=workers, address=address, uses_gpu=module.USES_GPU)
    bar = _progress_bar(sum(t.n_in for t in pending), canonical(stage), progress)
    for task, _stats, error in runner.run(canonical(stage), cfg, str(out), pending, retries, bar.update):
        if error is None:
            result.done.append(task.stem)
        else:
            result.failed[task.stem] = error
        bar.set_postfix(shards=f"{len(result.done)}/{len(pending)}", failed=len(result.failed), refresh=False)
    bar.close()
    if not result.failed and isinstance(module, FinalizingStage):
        module.finalize(out, cfg)
    _write_failures(out, result.failed)
    result.stats = total_stats(out)
    return result


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    return tqdm(total=total, desc=desc, unit="sample", dynamic_ncols=True, disable=not enabled, smoothing=0.1)


def _write_failures(out: Path, failed: dict[str, str]) -> None:
    path = out / "_failed.json"
    if failed:
        write_json_atomic(path, failed)
    elif path.exists():
        path.unlink()


def total_stats(dataset_dir: str | Path) -> dict[str, Any]:
    """Sum of the done shards' stats: {"shards", "in", "kept", "rejected": {reason: n}, "seconds"}."""
    totals: dict[str, Any] = {"shards": 0, "in": 0, "kept": 0, "rejected": Counter(), "seconds": 0.0}
    for st in shards.read_stats(dataset_dir).values():
        totals["shards"] += 1
        totals["in"] += st["in"]
        totals["kept"] += st["kept"]
        totals["rejected"].update(st["rejected"])
        totals["seconds"] += st.get("seconds", 0.0)
    totals["rejected"] = dict(sorted(totals["rejected"].items()))
    totals["seconds"] = round(totals["seconds"], 3)
    return totals


def run_samples(stage: str, samples: Iterable[Sample], cfg: Any) -> list[Sample | Rejected]:
    """Run a stage on an in-memory list (notebooks, tests): no shards, no processes."""
    module = get_stage(stage)
    if isinstance(cfg, dict):
        cfg = build_config(module, cfg)
    return list(module.run(samples, cfg))
