"""Stages used only by the runner tests (registered with monkeypatch)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from surd.sample import Rejected, Sample, reject

NAME = "testing"
USES_GPU = False


def versions() -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Config:
    mode: str = "ok"  # ok | flaky | broken | lossy | fatal
    counter_dir: str = ""
    fail_stem_key: str = ""  # the shard whose first key matches fails (broken) or flakes once (flaky)


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    if cfg.mode == "fatal":
        from surd.models import ModelLoadError

        calls = Path(cfg.counter_dir) / "calls"
        calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
        raise ModelLoadError("could not load 'org/model' from the model hub: pass --model /path")
    for i, s in enumerate(samples):
        if cfg.mode in ("flaky", "broken") and s["__key__"] == cfg.fail_stem_key:
            marker = Path(cfg.counter_dir) / s["__key__"]
            if cfg.mode == "broken" or not marker.exists():
                marker.touch()
                raise RuntimeError(f"simulated failure on {s['__key__']}")
        if cfg.mode == "lossy" and i == 0:
            continue  # drops a sample without a reason: the runner must refuse this
        if i % 2:
            yield reject(s, "odd_position", "every second sample")
        else:
            s["json"]["tested"] = True
            yield s
