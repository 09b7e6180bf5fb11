"""Full training checkpoints: adapter (safetensors), optimizer/scheduler/scaler/RNG (torch.save of tensors, read back
with ``weights_only=True``), and the step and per-rank data position (json). Written to a temp folder, then renamed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from surd.adapter.data import DataPosition
from surd.deps import require
from surd.files import write_json_atomic

CKPT_DIR = "checkpoints"
PREFIX = "step-"


def checkpoint_dir(out: str | Path, step: int) -> Path:
    return Path(out) / CKPT_DIR / f"{PREFIX}{step:08d}"


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint (temp folders of a killed save start with '.' and are ignored)."""
    root = Path(out) / CKPT_DIR
    done = sorted(p for p in root.glob(f"{PREFIX}*") if (p / "trainer_state.json").exists()) if root.exists() else []
    return done[-1] if done else None


def rng_state(generator: Any) -> dict[str, Any]:
    torch = require("torch", "adapter")
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: Any) -> None:
    torch = require("torch", "adapter")
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(acc: Any, out: str | Path, step: int, adapter: Any, optimizer: Any, scheduler: Any,
                    generator: Any, position: DataPosition, config: dict[str, Any], keep: int = 3) -> Path:
    """Every rank writes its RNG and data position; the main process writes the rest and publishes the folder."""
    torch = require("torch", "adapter")
    final = checkpoint_dir(out, step)
    tmp = final.parent / f".tmp-{final.name}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    rank = acc.process_index
    torch.save(rng_state(generator), tmp / f"rng-{rank}.pt")
    write_json_atomic(tmp / f"position-{rank}.json", {"epoch": position.epoch, "index": position.index})
    acc.wait_for_everyone()
    if acc.is_main_process:
        acc.unwrap_model(adapter).save_pretrained(tmp)
        train = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        if acc.scaler is not None:
            train["scaler"] = acc.scaler.state_dict()
        torch.save(train, tmp / "training_state.pt")
        write_json_atomic(tmp / "trainer_state.json", {"step": step, "world": acc.num_processes, "config": config})
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(final.parent.glob(f"{PREFIX}*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def load_checkpoint(acc: Any, ckpt: Path, optimizer: Any, scheduler: Any, generator: Any) -> tuple[int, DataPosition]:
    """Restore optimizer, scheduler, scaler and this rank's RNG; returns (step, data position)."""
    torch = require("torch", "adapter")
    meta = json.loads((ckpt / "trainer_state.json").read_text())
    if int(meta["world"]) != acc.num_processes:
        raise ValueError(f"{ckpt} was written by {meta['world']} processes, this run has {acc.num_processes}: "
                         f"resume with the same `accelerate launch --num_processes`")
    train = torch.load(ckpt / "training_state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(train["optimizer"])
    scheduler.load_state_dict(train["scheduler"])
    if acc.scaler is not None and "scaler" in train:
        acc.scaler.load_state_dict(train["scaler"])
    rank = acc.process_index
    restore_rng(torch.load(ckpt / f"rng-{rank}.pt", map_location="cpu", weights_only=True), generator)
    pos = json.loads((ckpt / f"position-{rank}.json").read_text())
    return int(meta["step"]), DataPosition(int(pos["epoch"]), int(pos["index"]))
