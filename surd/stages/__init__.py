"""Stage registry: stage name → module. Each stage module is pure logic over one shard's samples.

A stage module defines:
  Config                      a frozen dataclass, validated in __post_init__
  run(samples, cfg)           Iterable[Sample] -> Iterator[Sample | Rejected]; one output per input, in order
and optionally:
  plan(cfg) -> list[list]     (source stages only) the input rows of each shard, instead of reading input shards
  prepare(tasks, cfg) -> cfg  a driver-side pass over the whole input before shards run (global dedup, ...)
  versions() -> dict          library/model versions recorded in each shard's stats
  USES_GPU = True             asks an executor for a GPU per worker
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

# name → module path. Modules are imported lazily so heavy deps load only when a stage is used.
STAGES: dict[str, str] = {
    "ingest": "surd.stages.ingest",
    "caption": "surd.stages.caption",
    "clip_filter": "surd.stages.clip_filter",
    "review": "surd.stages.review",
    "embed": "surd.stages.embed",
    "dedup": "surd.stages.dedup",
    "safety": "surd.stages.safety",
}


def list_stages() -> list[str]:
    return sorted(STAGES)


def canonical(name: str) -> str:
    """'clip-filter' and 'clip_filter' name the same stage."""
    return name.strip().replace("-", "_")


def get_stage(name: str) -> ModuleType:
    """Import and return the stage module for *name*; the error lists the valid names."""
    key = canonical(name)
    if key not in STAGES:
        raise KeyError(f"unknown stage {name!r}; valid stages: {', '.join(list_stages())}")
    return importlib.import_module(STAGES[key])


def build_config(stage: ModuleType, values: dict[str, Any] | None) -> Any:
    """Build a stage's Config from a plain dict (pipeline yaml or CLI); unknown keys are named in the error."""
    values = dict(values or {})
    fields = {f.name for f in dataclasses.fields(stage.Config)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for stage {stage.__name__.rsplit('.', 1)[-1]}; "
            f"valid keys: {', '.join(sorted(fields))}"
        )
    return stage.Config(**values)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a json-able dict (tuples → lists)."""
    return json_safe(dataclasses.asdict(cfg))


def json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
