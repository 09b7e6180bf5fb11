"""The sample record every stage passes along: keys, rejections, and the per-stage json record."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# A sample is a plain dict, the webdataset way:
#   {"__key__": "3f9c0a1b2c3d4e5f", "json": {...metadata...}, "jpg": b"...", "llm.npy": b"..."}
# "json" is decoded to a dict while in memory; every other member is raw bytes.
Sample = dict[str, Any]

KEY_LENGTH = 16


def make_key(source: str, source_id: str) -> str:
    """Stable sample key: a hash of (source, source id), never a position.

    >>> make_key("civitai", "12345")
    '5e3b4b3f3c6c1a7e'  # doctest: +SKIP
    """
    digest = hashlib.sha1(f"{source}\x00{source_id}".encode()).hexdigest()
    return digest[:KEY_LENGTH]


@dataclass
class Rejected:
    """A sample a stage dropped, with the reason that goes into the stats and the sidecar.

    `reason` is a short snake_case label counted in `stats.json` (e.g. ``decode_error``);
    `detail` is free text for humans (the exception message, the score, ...);
    `meta` is whatever metadata is known, kept in the sidecar so rejects stay inspectable.
    """

    key: str
    reason: str
    detail: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.reason or not self.reason.replace("_", "").isalnum():
            raise ValueError(f"reject reason must be a snake_case label, got {self.reason!r}")


def reject(sample: Sample, reason: str, detail: str = "") -> Rejected:
    """Build a `Rejected` from a sample, keeping its json metadata for inspection."""
    meta = sample.get("json") if isinstance(sample.get("json"), dict) else {}
    return Rejected(key=sample["__key__"], reason=reason, detail=str(detail)[:2000], meta=dict(meta))


def record_stage(sample: Sample, stage: str, record: dict[str, Any]) -> None:
    """Store what `stage` did to this sample under json["stages"][stage] (model id, params, scores)."""
    sample["json"].setdefault("stages", {})[stage] = record


def dumps_json(obj: Any) -> bytes:
    """Deterministic json bytes: sorted keys, compact, UTF-8."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
