"""What a stage module is: exactly the names the runner, the shard task and the pipeline use.

Every stage module (``surd/stages/<name>.py``) satisfies `Stage`; a stage that lists its own input rows instead
of reading the previous stage's shards (ingest) also satisfies `SourceStage`; a stage with a pass over the whole
output after every shard is done (global dedup) also satisfies `FinalizingStage`. `tests/stages/test_contract.py`
checks every registered stage against these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, Protocol, runtime_checkable

from surd.sample import Rejected, Sample
from surd.shards import PlannedShard


@runtime_checkable
class Stage(Protocol):
    """A stage module: pure logic over one shard's samples."""

    NAME: str  # the registry name: the output folder is NN_<NAME>, the per-sample json record is stages[NAME]
    USES_GPU: bool  # an executor gives each worker a GPU when the cluster has one
    Config: type  # a frozen dataclass, validated in __post_init__; built from a dict by `build_config`

    def run(self, samples: Iterable[Sample], cfg: Any) -> Iterator[Sample | Rejected]:
        """One kept sample or one `Rejected` (with a reason) per input, in input order."""
        ...

    def versions(self) -> dict[str, str]:
        """Library and model versions recorded in each shard's stats."""
        ...


@runtime_checkable
class SourceStage(Stage, Protocol):
    """A stage whose shards come from a source's rows, not from an input dataset."""

    def plan(self, cfg: Any, state_dir: str, append: bool = False) -> list[PlannedShard]:
        """Each output shard's row file (written under `state_dir`, a path or URL that persists across reruns,
        with cursors and listed pages) and row count; the runner knows the shard count before any shard runs.
        With `append`, what the source holds beyond the finished plan goes into new shards after its last one."""
        ...


@runtime_checkable
class FinalizingStage(Stage, Protocol):
    """A stage with a global pass over its whole output once every shard is done."""

    def finalize(self, output_dir: str, cfg: Any) -> Any:
        """Runs after all shards succeed; must be deterministic and idempotent (a rerun changes nothing)."""
        ...


def missing_members(module: Any, protocol: type = Stage) -> list[str]:
    """The names *protocol* asks for that *module* lacks (empty when it conforms)."""
    wanted: dict[str, None] = {}
    for cls in reversed(protocol.__mro__):
        if cls in (Protocol, object, Generic):
            continue
        wanted.update(dict.fromkeys(getattr(cls, "__annotations__", {})))
        wanted.update(dict.fromkeys(n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")))
    return [n for n in wanted if not hasattr(module, n)]
