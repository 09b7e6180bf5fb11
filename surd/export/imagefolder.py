"""A stage's kept samples → a Hugging Face imagefolder the official SUR-adapter trainer loads as it is.

Layout (``--test-fraction`` 0: one folder; otherwise ``train/`` + ``test/``, each with its own metadata)::

    DIR/[train/]<key>.jpg            the stored image bytes, not re-encoded
    DIR/[train/]metadata.jsonl       file_name, text (simple prompt), prompt (complex prompt), negative_prompt,
                                     key, source, source_id, license, provenance (text, or JSON text for a record)
    DIR/prompt2vec/<LLM>/<layer>.pt  with --prompt2vec: torch.save({simple prompt: tensor}), where the official
                                     SUR_adapter_train.py looks for it (relative to the folder it runs in)

Every column is a string ("" when unknown) so every metadata file has the same features, which `datasets` requires.
The export is built in a hidden folder beside DIR and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from surd import shards
from surd.embed.prompt2vec import export_prompt2vec

IMAGE_MEMBERS = ("jpg", "png", "webp")
COLUMNS = ("file_name", "text", "prompt", "negative_prompt", "key", "source", "source_id", "license", "provenance")
# The official trainer's --llm names and their hidden sizes (it calls LLaMA-1 33B "30B").
OFFICIAL_LLMS = {"7B": 4096, "13B": 5120, "30B": 6656}
_PROMPT2VEC = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)/(\d+)$")


@dataclass(frozen=True)
class ExportConfig:
    """How to export: the test split's share of samples, and which prompt2vec file to write (``"13B/39"``)."""

    test_fraction: float = 0.0
    prompt2vec: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")
        if self.prompt2vec and not _PROMPT2VEC.match(self.prompt2vec):
            raise ValueError(f"--prompt2vec takes LLM/LAYER as the official trainer names its file, e.g. 13B/39 "
                             f"(prompt2vec/13B/39.pt); got {self.prompt2vec!r}")


def split_test_keys(stage_dir: Path, fraction: float) -> set[str]:
    """The kept keys that go to the test split: the first round(fraction·n) in key order (keys are hashes)."""
    if fraction <= 0:
        return set()
    keys = sorted(r["key"] for stem in shards.list_done(stage_dir) for r in shards.read_sidecar(stage_dir, stem)
                  if r["status"] == "kept")
    n_test = min(max(1, round(fraction * len(keys))), len(keys) - 1) if len(keys) > 1 else 0
    return set(keys[:n_test])


def metadata_row(sample: dict[str, Any], file_name: str) -> dict[str, str]:
    """One metadata.jsonl line: the official columns first, then surd's."""
    m = sample["json"]
    prov = m.get("provenance")
    values = {
        "file_name": file_name, "text": m.get("simple_prompt") or "", "prompt": m.get("complex_prompt") or "",
        "negative_prompt": m.get("negative_prompt") or "", "key": sample["__key__"], "source": m.get("source") or "",
        "source_id": m.get("source_id") or "", "license": m.get("license") or "",
        "provenance": prov if isinstance(prov, str) else "" if prov is None else json.dumps(prov, sort_keys=True,
                                                                                           ensure_ascii=False),
    }  # fmt: skip
    return {c: values[c] for c in COLUMNS}


def check_prompt2vec(stage_dir: Path, spec: str) -> tuple[str, str]:
    """(LLM, layer) of a ``LLM/LAYER`` request, checked against the stage's embed record before anything is written."""
    llm, layer = _PROMPT2VEC.match(spec).groups()  # type: ignore[union-attr]
    first = next(shards.iter_dataset(stage_dir), None)
    record = (first or {}).get("json", {}).get("stages", {}).get("embed")
    if first is None or record is None or "llm.npy" not in first:
        raise ValueError(f"{stage_dir} holds no LLM vectors: pass the output of `surd embed`, or drop --prompt2vec")
    official = int(record["layer"]) - 1
    if int(layer) != official:
        raise ValueError(f"{stage_dir} was embedded at layer {record['layer']} (1-based), which the official trainer "
                         f"calls {official}: pass --prompt2vec {llm}/{official}")
    if llm in OFFICIAL_LLMS and int(record["dim"]) != OFFICIAL_LLMS[llm]:
        raise ValueError(f"the official trainer's {llm} means {OFFICIAL_LLMS[llm]}-d vectors; {stage_dir} has "
                         f"{record['dim']}-d ones ({record['model']}): name the LLM by its size (7B, 13B, 30B)")
    return llm, layer


def _image_member(sample: dict[str, Any]) -> str:
    for ext in IMAGE_MEMBERS:
        if ext in sample:
            return ext
    raise ValueError(f"sample {sample['__key__']} has no image member ({', '.join(IMAGE_MEMBERS)})")


def _samples(stage_dir: Path, progress: bool) -> Iterator[dict[str, Any]]:
    return tqdm(shards.iter_dataset(stage_dir), desc="imagefolder", unit="sample", disable=not progress)


def _staging(out: Path) -> Path:
    """A fresh hidden folder beside *out* (stale ones from a killed export are removed first)."""
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir(parents=True)
    return tmp


def export_imagefolder(stage_dir: str | os.PathLike, out: str | os.PathLike, cfg: ExportConfig = ExportConfig(),
                       *, progress: bool = True) -> dict[str, Any]:
    """Write *stage_dir*'s kept samples to *out* as an imagefolder; returns counts per split and what was written."""
    stage_dir, out = Path(stage_dir), Path(out)
    shards.list_shards(stage_dir)  # names the fix when the stage has not run
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty: pass a new folder (an export is written whole)")
    llm_layer = check_prompt2vec(stage_dir, cfg.prompt2vec) if cfg.prompt2vec else None
    test = split_test_keys(stage_dir, cfg.test_fraction)
    tmp = _staging(out)
    try:
        counts = _write(stage_dir, tmp, test, split=cfg.test_fraction > 0, progress=progress)
        if len(counts) == 1:
            raise ValueError(f"{stage_dir} has no kept samples: nothing to export")
        summary: dict[str, Any] = {"out": str(out), "splits": counts, "prompt2vec": None,
                                   "without_simple_prompt": counts.pop("_no_text")}
        if llm_layer:
            rel = Path("prompt2vec", llm_layer[0], f"{llm_layer[1]}.pt")
            meta = export_prompt2vec(stage_dir, tmp / rel, fmt="pt", progress=progress)
            summary["prompt2vec"] = {"path": str(out / rel), "prompts": int(meta["count"]), "dim": int(meta["dim"])}
        if out.exists():
            out.rmdir()  # empty (checked above): the rename below needs the name free
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _write(stage_dir: Path, tmp: Path, test: set[str], *, split: bool, progress: bool) -> dict[str, int]:
    files: dict[str, Any] = {}
    counts = {"_no_text": 0}
    try:
        for s in _samples(stage_dir, progress):
            name = ("test" if s["__key__"] in test else "train") if split else ""
            folder = tmp / name if name else tmp
            if name not in files:
                folder.mkdir(exist_ok=True)
                files[name] = open(folder / "metadata.jsonl", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
            ext = _image_member(s)
            (folder / f"{s['__key__']}.{ext}").write_bytes(s[ext])
            row = metadata_row(s, f"{s['__key__']}.{ext}")
            files[name].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[name or "train"] = counts.get(name or "train", 0) + 1
            counts["_no_text"] += not row["text"]
    finally:
        for f in files.values():
            f.close()
    return counts
