"""Model specs shared by every family: device and dtype resolution on this machine."""

from __future__ import annotations

import copy

import torch

from surd.models import clip


def test_device_and_dtype_auto_on_this_machine() -> None:
    m = clip.load_clip("tiny", "", device="cpu", dtype="auto")
    assert m.device.type == "cpu" and m.dtype == torch.float32
    assert next(m.model.parameters()).dtype == torch.float32
    half = clip.load_clip("tiny", "", device="cpu", dtype="bf16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert copy.copy(half.label) == "tiny"
