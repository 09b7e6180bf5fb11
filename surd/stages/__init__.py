"""Stage registry: stage name → module. Each stage module is pure logic over one shard's samples.

What a stage module defines is spelled out (and checked) by the protocols in `surd.stages.contract`.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

from surd.options import build, problems
from surd.registry import Registry, canonical
from surd.stages.contract import missing_members

# Modules are imported on first use, so a stage's heavy dependencies load only when it runs.
STAGES = Registry("stage", {
    "ingest": "surd.stages.ingest",
    "caption": "surd.stages.caption",
    "clip_filter": "surd.stages.clip_filter",
    "review": "surd.stages.review",
    "embed": "surd.stages.embed",
    "dedup": "surd.stages.dedup",
    "safety": "surd.stages.safety",
    "quality": "surd.stages.quality",
})

__all__ = ["STAGES", "build_config", "canonical", "config_problems", "config_to_dict", "get_stage", "json_safe", "list_stages"]


def list_stages() -> list[str]:
    """The registered stage names."""
    return STAGES.names()


def get_stage(name: str) -> ModuleType:
    """Import and return the stage module for *name*; the error lists the valid names."""
    module = STAGES.load(name)
    missing = missing_members(module)
    if missing:
        raise TypeError(f"stage module {module.__name__} lacks {', '.join(missing)}: a stage defines what "
                        "surd.stages.contract.Stage lists")
    return module


def build_config(stage: ModuleType, values: dict[str, Any] | None) -> Any:
    """Build a stage's Config from a plain dict (pipeline yaml or CLI); the error lists every problem (unknown keys,
    types, allowed values, bounds: `surd.options.problems`)."""
    return build(stage.Config, dict(values or {}), f"stage {stage.NAME} config")


def config_problems(stage: ModuleType, values: Any) -> list[str]:
    """Every problem with a stage's config mapping, without raising (a pipeline file is checked whole)."""
    return problems(stage.Config, values if values is not None else {}, f"stage {stage.NAME} config")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a json-able dict (tuples → lists)."""
    return json_safe(dataclasses.asdict(cfg))


def json_safe(obj: Any) -> Any:
    """Dicts, lists and scalars as they are; tuples as lists; anything else as its str()."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
