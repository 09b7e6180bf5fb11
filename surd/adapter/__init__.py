"""The SUR-adapter: config, model, save/load, data, training and inference (paper arXiv 2305.05189 §4.2).

    from surd.adapter import SURAdapter, encode_prompts
    adapter = SURAdapter.from_pretrained("runs/adapter", base_text_dim=pipe.text_encoder.config.hidden_size)
    pe, npe = encode_prompts(pipe, adapter, ["a cat"], [""])
    image = pipe(prompt_embeds=pe, negative_prompt_embeds=npe).images[0]
"""

from __future__ import annotations

from typing import Any

from surd.adapter import config, inference

__all__ = ["AdapterConfig", "TrainConfig", "SURAdapter", "encode_prompts", "generate_grid", "train_adapter",
           "import_official_checkpoint"]


def __getattr__(name: str) -> Any:
    # torch/diffusers are optional extras: import them only when an adapter object is asked for.
    if name in ("AdapterConfig", "TrainConfig"):
        return getattr(config, name)
    if name == "SURAdapter":
        from surd.adapter.model import SURAdapter  # optional extra: imported on use

        return SURAdapter
    if name == "import_official_checkpoint":
        from surd.adapter.model import import_official_checkpoint  # optional extra: imported on use

        return import_official_checkpoint
    if name in ("encode_prompts", "generate_grid"):
        return getattr(inference, name)
    if name == "train_adapter":
        from surd.adapter.train import train_adapter  # optional extra: imported on use

        return train_adapter
    raise AttributeError(f"module 'surd.adapter' has no attribute {name!r}")
