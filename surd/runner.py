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
from surd import shards, storage
from surd.audit import input_shards
from surd.executors import get_executor
from surd.files import clean_temp_files, write_json_atomic
from surd.options import config, option
from surd.sample import Rejected, Sample
from surd.stages import build_config, canonical, config_to_dict, get_stage
from surd.stages.contract import FinalizingStage, SourceStage
from surd.task import Chain, Link, ShardTask, failed_stage

FINALIZED = "_finalized.json"  # the finalize pass ran after the last shard was written


@config
class RunSettings:
    """Where and how a stage's shards run: the same options for every stage command and a pipeline file."""

    workers: int | None = option(None, short="-w", ge=1, help="Worker processes (default: 1 = run in this process; "
                                 "on Ray, as many as the cluster holds).")
    retries: int = option(2, ge=0, help="Retries of a failed shard before it is reported as failed.")
    executor: str | None = option(None, choices=("local", "ray"),
                                  help="local (this machine, the default) or ray (a Ray cluster).")
    address: str | None = option(None, help="Ray cluster address for --executor ray, e.g. auto.")
    finished_only: bool = option(False, help="Read only the input's finished shards when some are unfinished or "
                                 "missing (refused otherwise, naming them); recorded in the stage's _config.json.")
    append: bool = option(False, help="Extend a finished run with what its source holds now: a grown URL list or "
                          "manifest plans only its new rows, a web listing goes on past its saved end; new shards "
                          "are numbered after the existing ones and later stages process only those.")


@dataclass
class RunResult:
    output_dir: str | Path
    stats: dict[str, Any] = field(default_factory=dict)  # totals: in, kept, rejected{reason: n}
    done: list[str] = field(default_factory=list)  # shards written by this run
    skipped: list[str] = field(default_factory=list)  # shards already done before
    failed: dict[str, str] = field(default_factory=dict)  # stem → last error

    @property
    def ok(self) -> bool:
        return not self.failed


class ConfigMismatch(ValueError):
    """The output directory was written by a run with a different config."""


def _check_config(output_dir: str, record: dict[str, Any]) -> None:
    old = shards.read_config(output_dir)
    if old is None:
        write_json_atomic(storage.join(output_dir, shards.CONFIG_NAME), record)
        return
    for k in ("stage", "config", "input"):
        if old.get(k) != record.get(k):
            raise ConfigMismatch(
                f"{output_dir} was written by a run with a different {k} ({json.dumps(old.get(k))[:300]}); "
                "pass a new output directory, or delete this one to start over"
            )


def plan_tasks(module: Any, cfg: Any, output_dir: str | Path, input_dir: str | Path | None, *,
               finished_only: bool = False, append: bool = False) -> list[ShardTask]:
    """Source stages plan their own shards (row files under ``_state/``; with `append`, what the source holds
    beyond the finished plan as new shards); other stages get one task per input shard, sized from its stats
    marker. An input with unfinished or missing shards is refused, naming them (`surd.audit.input_shards`), unless
    `finished_only`."""
    if isinstance(module, SourceStage):
        planned = module.plan(cfg, storage.join(output_dir, "_state"), append=append)
        return [ShardTask(p.stem, p.rows, p.n) for p in planned]
    if input_dir is None:
        raise ValueError(f"stage {module.NAME} needs an input dataset directory")
    return [ShardTask(s.stem, s.path, s.n) for s in input_shards(input_dir, finished_only=finished_only)]


def run_stage(stage: str, cfg: Any, output_dir: str | Path, input_dir: str | Path | None = None, *,
              workers: int | None = 1, executor: str = "local", retries: int = 2, progress: bool = True,
              address: str | None = None, resources: dict[str, float] | None = None,
              finished_only: bool = False, append: bool = False) -> RunResult:
    """Run `stage` over all shards into `output_dir` (a path or a URL such as ``s3://bucket/runs/x/00_ingest``);
    done shards are skipped, failed ones retried `retries` times. `resources` (``num_cpus``, ``num_gpus``) size
    each worker on a Ray cluster. A chain of one stage (`run_chain`).

    Example:
        run_stage("ingest", {"source": "manifest", "path": "manifests/sample/manifest.jsonl"}, "runs/x/00_ingest")
    """
    return run_chain([(stage, cfg, output_dir)], input_dir, workers=workers, executor=executor, retries=retries,
                     progress=progress, address=address, resources=resources, finished_only=finished_only,
                     append=append)[0]


def _open_output(stage: str, cfg: Any, output_dir: str | Path, input_dir: str | Path | None,
                 finished_only: bool = False) -> str:
    """The stage's output directory, created, cleaned of temp files, and holding this run's `_config.json`."""
    out = storage.normalize(output_dir)
    try:
        storage.makedirs(out)
    except (NotADirectoryError, FileExistsError, PermissionError) as e:
        raise ValueError(f"cannot create the output directory {out}: {e.strerror or e} (a file is in the way, or "
                         "you may not write there); pass --out a folder you can write to") from None
    clean_temp_files(out)
    record = {"finished_only": True} if finished_only and input_dir else {}  # only named when asked for
    _check_config(out, {**record, "stage": canonical(stage), "config": config_to_dict(cfg),
                        "input": storage.resolve(input_dir) if input_dir else None, "surd_version": surd.__version__})
    return out


def _shown(out: str) -> str | Path:
    return out if storage.is_remote(out) else Path(out)


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    return tqdm(total=total, desc=desc, unit="sample", dynamic_ncols=True, disable=not enabled, smoothing=0.1)


def _finalize(module: Any, cfg: Any, out: str, written: bool) -> None:
    """The stage's global pass; skipped when no shard was written since it last completed (it is idempotent, and
    rereading every shard of a finished run on each rerun would cost minutes at 10M samples)."""
    marker = storage.join(out, FINALIZED)
    if not written and storage.exists(marker):
        return
    storage.remove(marker)
    module.finalize(out, cfg)
    write_json_atomic(marker, {"shards": len(shards.list_done(out))})


def _write_failures(out: str, failed: dict[str, str]) -> None:
    path = storage.join(out, "_failed.json")
    if failed:
        write_json_atomic(path, failed)
    else:
        storage.remove(path)


def fusable(stages: list[str]) -> str | None:
    """Why these consecutive stages cannot run fused, or None when they can: every one reads the previous one's
    shards (no source stage), and only the last may have a global pass (its `finalize` runs after the chain)."""
    modules = [get_stage(s) for s in stages]
    for name, module in zip(stages, modules):
        if isinstance(module, SourceStage):
            return f"{name} lists its own rows (a source stage): it runs on its own"
    for name, module in zip(stages[:-1], modules[:-1]):
        if isinstance(module, FinalizingStage):
            return f"{name} has a global pass over all its shards (finalize) that must run before the next stage reads"
    return None


def run_chain(steps: list[tuple[str, Any, str | Path]], input_dir: str | Path | None, *, workers: int | None = 1,
              executor: str = "local", retries: int = 2, progress: bool = True, address: str | None = None,
              resources: dict[str, float] | None = None, finished_only: bool = False,
              append: bool = False) -> list[RunResult]:
    """The one run path. Run consecutive stages fused: each shard goes through all of them in one pass
    (`surd.task.process`; a single stage is a chain of one),
    each image decoded once and each model loaded once per worker, while every stage still writes its own output
    directory, byte for byte what `run_stage` one stage after the other writes (stats but their ``seconds``).

    `steps` are (stage, config, output directory); stage i+1 reads stage i's output, the first reads `input_dir`.
    Shards some stages already finished are skipped for those stages (a resumed run goes on where it stopped); a
    shard that fails is committed by none of the stages of its pass. With `append` a source stage first plans
    what its source holds beyond its finished plan (`plan_tasks`), so only the new shards run. Returns one
    `RunResult` per step.

    Example:
        run_chain([("caption", {"model": "tiny"}, "runs/x/02_caption"),
                   ("clip_filter", {"model": "tiny"}, "runs/x/03_clip_filter")], "runs/x/01_dedup")
    """
    why = fusable([s for s, _, _ in steps]) if len(steps) > 1 else None
    if why is not None:
        raise ValueError(f"cannot fuse {' + '.join(s for s, _, _ in steps)}: {why}")
    modules = [get_stage(s) for s, _, _ in steps]
    links, previous = [], input_dir
    for (stage, cfg, out_dir), module in zip(steps, modules):
        cfg = build_config(module, cfg) if isinstance(cfg, dict) else cfg
        first = not links  # only the first stage reads `input_dir`; the others read a stage of this pass
        links.append(Link(canonical(stage), cfg, _open_output(stage, cfg, out_dir, previous, finished_only and first)))
        previous = links[-1].output_dir
    tasks = plan_tasks(modules[0], links[0].cfg, links[0].output_dir, input_dir, finished_only=finished_only,
                       append=append)
    done_before = [set(shards.list_done(link.output_dir)) for link in links]
    results = [RunResult(output_dir=_shown(link.output_dir)) for link in links]
    passes: dict[tuple[int, int], list[ShardTask]] = {}  # (first, last) stage of a pass → its shards
    for task in tasks:
        done = [task.stem in d for d in done_before]
        for i, is_done in enumerate(done):
            if is_done:
                results[i].skipped.append(task.stem)
        for a, b in _undone_runs(done):
            passes.setdefault((a, b), []).append(task if a == 0 else _read_task(links[a - 1].output_dir, task.stem))
    failures: dict[str, tuple[int, int, str]] = {}
    for (a, b), pending in sorted(passes.items()):
        chain = Chain(tuple(links[a : b + 1]))
        runner = get_executor(executor, workers=workers, address=address, resources=resources,
                              uses_gpu=any(m.USES_GPU for m in modules[a : b + 1]))
        bar = _progress_bar(sum(t.n_in for t in pending), chain.name, progress)
        for task, _stats, error in runner.run(chain, pending, retries, bar.update):
            if error is not None:
                failures[task.stem] = (a, b, error)
            bar.set_postfix(failed=len(failures), refresh=False)
        bar.close()
    for link, before, result in zip(links, done_before, results):
        result.done = sorted(set(shards.list_done(link.output_dir)) - before)
    for stem, (a, b, error) in failures.items():
        at = next((i for i in range(a, b + 1) if links[i].stage == failed_stage(error)), a)
        for i in range(a, at):
            results[i].failed[stem] = f"not committed: {links[at].stage} failed on this shard in the same fused pass"
        results[at].failed[stem] = error
    if not failures and isinstance(modules[-1], FinalizingStage):
        _finalize(modules[-1], links[-1].cfg, links[-1].output_dir, written=bool(results[-1].done))
    for link, result in zip(links, results):
        _write_failures(link.output_dir, result.failed)
        result.stats = total_stats(link.output_dir)
    return results


def _undone_runs(done: list[bool]) -> list[tuple[int, int]]:
    """The (first, last) index of each run of consecutive False in `done`."""
    runs, start = [], None
    for i, d in enumerate([*done, True]):
        if not d and start is None:
            start = i
        elif d and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def _read_task(dataset_dir: str, stem: str) -> ShardTask:
    """A task reading a finished shard of `dataset_dir` (a pass that starts after the stages already done)."""
    stats = json.loads(storage.read_bytes(storage.join(dataset_dir, stem + shards.STATS_SUFFIX)))
    return ShardTask(stem, storage.join(dataset_dir, f"{stem}.tar"), int(stats["kept"]))


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
