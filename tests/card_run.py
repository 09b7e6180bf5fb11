"""A small finished run for the card, release and publish tests, built in seconds: a real ingest (bundled sample
photos, two sources under different licences, one repeated image) and a real dedup, then a CLIP-filter stage written
from records the way clip_filter writes them (scores, simple prompts, rejects with their reason), so every figure
the card states has a known value."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from surd import shards
from surd.files import write_json_atomic
from surd.runner import run_stage
from surd.sample import Rejected
from tests.conftest import REPO

PHOTOS = ["astronaut", "castle", "coffee", "lighthouse", "sailboat", "volcano", "windmill_tulips", "snowman"]
SOURCES = {"alpha": "CC0-1.0", "beta": "Beta gallery terms"}


def manifest_rows() -> list[dict[str, str]]:
    rows = []
    for i, name in enumerate(PHOTOS):
        source = "alpha" if i % 2 == 0 else "beta"
        rows.append({"image": str(REPO / "manifests" / "sample" / "images" / f"{name}.jpg"), "source": source,
                     "source_id": name, "license": SOURCES[source], "creator": f"artist{i % 3}",
                     "complex_prompt": f"a {name.replace('_', ' ')}, masterpiece, best quality, ultra detailed, 8k"})
    rows.append({**rows[0], "source_id": "astronaut-again"})  # the same bytes twice → duplicate_image
    return rows


CLIP_REJECT = {"coffee", "volcano"}  # rejected by the written CLIP stage
NSFW_FLAGGED = "sailboat"  # kept, but its source flags it NSFW


def make_run(tmp: Path, name: str = "cardrun", ingest: dict | None = None) -> Path:
    """runs/<name>/{00_ingest, 01_dedup, 02_clip_filter}; returns the run folder."""
    run = tmp / name
    manifest = tmp / f"{name}.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in manifest_rows()))
    cfg = ingest or {"source": "manifest", "path": str(manifest), "shard_size": 4,  # images named outside its folder
                     "options": {"allowed_roots": [str(REPO / "manifests" / "sample" / "images")]}}
    run_stage("ingest", cfg, str(run / "00_ingest"), None, progress=False)
    run_stage("dedup", {"max_distance": 8}, str(run / "01_dedup"), str(run / "00_ingest"), progress=False)
    write_clip_stage(run / "01_dedup", run / "02_clip_filter")
    return run


def _npy(values: list[float]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(values, np.float16))
    return buf.getvalue()


def write_clip_stage(src: Path, out: Path) -> None:
    """A clip_filter output written from records: scores, a simple prompt, rejects with their reason."""
    cfg = {"model": "tiny", "pretrained": "", "batch_size": 16}
    for stem in shards.list_done(src):
        items = []
        for s in shards.read_shard(src / f"{stem}.tar"):
            sid = s["json"]["source_id"]
            s["json"]["simple_prompt"] = f"a photo of {sid.replace('_', ' ')}"
            if sid == NSFW_FLAGGED:
                s["json"]["nsfw"] = {"nsfw": True}
            s["clip.npy"] = _npy([float(len(sid)), 0.5, -1.0, 2.0])  # as clip_filter stores it: float16 .npy
            reject = sid in CLIP_REJECT
            simple, complex_ = (0.20, 0.30) if reject else (0.31, 0.25)
            s["json"].setdefault("stages", {})["clip_filter"] = {
                "model": "tiny", "simple_score": simple, "complex_score": complex_, "keep": not reject,
                "rule": "cos(image, simple) >= cos(image, complex)"}
            items.append(Rejected(s["__key__"], "clip_simple_below_complex", f"cos(simple)={simple} < {complex_}",
                                  s["json"]) if reject else s)
        shards.write_shard(out, stem, items, {"seconds": 0.01, "versions": {"surd": "0.1.0", "open_clip": "x"}})
    write_json_atomic(str(out / shards.CONFIG_NAME), {"stage": "clip_filter", "config": cfg, "input": str(src),
                                                      "surd_version": "0.1.0"})
