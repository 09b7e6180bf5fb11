"""bench/gpu_stages.py stays runnable although no GPU is here: it refuses to invent figures without CUDA, and its
whole code path (stage runs with random real-class models put in the stage caches) runs on the CPU with --smoke."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytest.importorskip("torch")
BENCH = REPO / "bench" / "gpu_stages.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def test_without_cuda_it_says_so_and_measures_nothing():
    out = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("no CUDA device") and "images/s" not in out.stdout


def test_smoke_run_measures_every_stage_on_cpu():
    out = subprocess.run([sys.executable, str(BENCH), "--device", "cpu", "--dtype", "fp32", "--smoke"],
                         capture_output=True, text=True, env=ENV, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert any(line.startswith("clip_filter") and "images/s" in line and "2,500" in line for line in lines)
    assert any(line.startswith("caption") and "images/s" in line for line in lines)
    assert any(line.startswith("embed") and "prompts/s" in line for line in lines)
    last = lines[-1].split()
    assert last[0] == "ratio" and {kv.split("=")[0] for kv in last[1:]} == {"clip_filter", "caption", "embed"}
    assert all(float(kv.split("=")[1]) > 0 for kv in last[1:])
