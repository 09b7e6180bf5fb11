"""The SUR-adapter in one file: text features x [B, T, d] → adapted features c' [B, T, d] (paper §4.2, Eq. 4–7).

    Q        = TransformerEncoder(x)                     2 layers, 8 heads, ff 2048, attention over TOKENS per sample
    att      = softmax(W_q Q · (W_k x)ᵀ / √d)            [B, T, T]
    weighted = att · x + x                               V = x
    result   = MLP(weighted) + weighted
    c'       = η · g(result) + (1 − η) · x               g zero-initialised → a fresh adapter returns (1 − η)·x
    W0       : frozen Kaiming projection llm_dim → d from a recorded seed, saved with the adapter (ℓ_LLM target).

The official code builds its encoder without ``batch_first=True`` and feeds [B, 77, d], so its attention runs across
the batch; here it runs over tokens, and one sample's output does not depend on the rest of its batch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from surd.adapter.config import AdapterConfig
from surd.adapter.io import (
    WEIGHTS_NAME,
    check_base_width,
    read_adapter_config,
    read_adapter_tensors,
    read_official_checkpoint,
    save_adapter_files,
)
from surd.deps import require

torch = require("torch", "adapter")
nn = torch.nn


def make_w0(llm_dim: int, text_dim: int, seed: int) -> tuple[Any, Any]:
    """W0 (weight [d, llm_dim], bias [d]) exactly as nn.Linear initialises itself, but from its own generator."""
    gen = torch.Generator().manual_seed(int(seed))
    weight = torch.empty(text_dim, llm_dim)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=gen)  # nn.Linear's default Kaiming init
    bound = 1.0 / math.sqrt(llm_dim)
    bias = torch.empty(text_dim).uniform_(-bound, bound, generator=gen)
    return weight, bias


class TokenAttention(nn.Module):
    """Attention of the encoder output (queries) over the raw text features (keys; values = x itself)."""

    def __init__(self, d: int):
        super().__init__()
        self.d = d
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))

    def forward(self, q: Any, x: Any) -> Any:
        # q, x: [B, T, d]
        scores = self.query(q) @ self.key(x).transpose(-2, -1) / math.sqrt(self.d)  # [B, T, T]
        weighted = scores.softmax(dim=-1) @ x + x  # [B, T, d]
        return self.mlp(weighted) + weighted  # [B, T, d]


class SURAdapter(nn.Module):
    """The adapter. ``forward(x)`` → c'; ``forward(x, return_q=True)`` → (c', Q) for the ℓ_LLM loss."""

    def __init__(self, config: AdapterConfig):
        super().__init__()
        self.config = config
        d = config.text_dim
        layer = nn.TransformerEncoderLayer(d, config.n_heads, dim_feedforward=config.ff_dim, dropout=config.dropout,
                                           batch_first=True)
        # enable_nested_tensor only matters with padding masks, which the adapter never uses.
        self.encoder = nn.TransformerEncoder(layer, num_layers=config.n_layers, enable_nested_tensor=False)
        self.attention = TokenAttention(d)
        self.g = nn.Linear(d, d)
        nn.init.zeros_(self.g.weight)
        nn.init.zeros_(self.g.bias)  # the official code leaves g's bias random; zero it so a fresh adapter is a no-op
        w0_weight, w0_bias = make_w0(config.llm_dim, d, config.w0_seed)
        # Buffers, not parameters: W0 is frozen by construction, yet travels in state_dict and safetensors.
        self.register_buffer("w0_weight", w0_weight)
        self.register_buffer("w0_bias", w0_bias)

    def forward(self, x: Any, return_q: bool = False) -> Any:
        assert x.dim() == 3 and x.shape[-1] == self.config.text_dim, \
            f"expected text features [B, T, {self.config.text_dim}], got {tuple(x.shape)}"
        if self.config.encoder_attention == "per_token":
            b, t, d = x.shape
            q = self.encoder(x.reshape(b * t, 1, d)).reshape(b, t, d)  # [B·T, 1, d] → [B, T, d]
        else:
            q = self.encoder(x)  # [B, T, d]
        result = self.attention(q, x)  # [B, T, d]
        out = self.config.eta * self.g(result) + (1.0 - self.config.eta) * x  # [B, T, d]
        return (out, q) if return_q else out

    def project_llm(self, v: Any) -> Any:
        """LLM vectors [B, llm_dim] → W0·v [B, 1, d], broadcast against the T tokens of Q in ℓ_LLM."""
        assert v.dim() == 2 and v.shape[-1] == self.config.llm_dim, \
            f"expected LLM vectors [B, {self.config.llm_dim}], got {tuple(v.shape)}"
        w = self.w0_weight.to(v.dtype)
        return nn.functional.linear(v, w, self.w0_bias.to(v.dtype)).unsqueeze(1)  # [B, d] → [B, 1, d]

    def trainable_parameters(self) -> list[Any]:
        return [p for p in self.parameters() if p.requires_grad]

    # peft-style persistence: the model builds itself; surd.adapter.io only moves configs and state dicts.
    def save_pretrained(self, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        """Write ``adapter_config.json`` + ``adapter_model.safetensors`` (adapter and W0) to ``directory``."""
        save_adapter_files(directory, self.config, self.state_dict(), extra)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, base_text_dim: int | None = None,
                        device: Any = "cpu") -> SURAdapter:
        """Load a saved adapter; refuses one trained for another text width than ``base_text_dim`` (checked
        before any tensor is read)."""
        cfg = read_adapter_config(directory)
        check_base_width(cfg, base_text_dim, str(directory))
        adapter = cls(cfg)
        missing, unexpected = adapter.load_state_dict(read_adapter_tensors(directory), strict=False)
        if missing or unexpected:
            raise ValueError(f"{Path(directory) / WEIGHTS_NAME} does not match its config: missing {missing}, "
                             f"unexpected {unexpected}; the files were mixed from different adapters")
        return adapter.to(device).eval()

    @classmethod
    def from_official_checkpoint(cls, path: str | os.PathLike, llm_dim: int, eta: float = 0.1, w0_seed: int = 0,
                                 base_text_dim: int | None = None, base_model: str = "") -> SURAdapter:
        """An official ``adapter_checkpoint*.pt`` as a `SURAdapter` (see `io.read_official_checkpoint`)."""
        cfg, mapped = read_official_checkpoint(path, llm_dim, eta=eta, w0_seed=w0_seed, base_model=base_model)
        check_base_width(cfg, base_text_dim, str(path))
        adapter = cls(cfg)
        missing, unexpected = adapter.load_state_dict(mapped, strict=False)
        missing = [k for k in missing if not k.startswith("w0_")]  # the official code never saved W0
        if missing or unexpected:
            raise ValueError(f"{path}: tensors missing {missing}, unexpected {unexpected} after the key mapping")
        return adapter.eval()


def import_official_checkpoint(path: str | os.PathLike, llm_dim: int, eta: float = 0.1, w0_seed: int = 0,
                               base_text_dim: int | None = None, base_model: str = "") -> SURAdapter:
    """Load an official SUR-adapter checkpoint (tensors only, ``weights_only=True``) into a `SURAdapter`."""
    return SURAdapter.from_official_checkpoint(path, llm_dim, eta=eta, w0_seed=w0_seed, base_text_dim=base_text_dim,
                                               base_model=base_model)


def distillation_loss(student_logits: Any, teacher_logits: Any, tau: float = 1.0) -> Any:
    """The official ``distillation_loss(x, y)``: F.kl_div(log_softmax(x/τ), softmax(y/τ), 'batchmean')·τ².

    That is KL(softmax(y/τ) ‖ softmax(x/τ)) summed over tokens and channels, averaged over the batch. Broadcasts
    x [B, 1, d] against y [B, T, d] as the official ℓ_LLM does (W0·v against every token of Q).
    """
    x, y = torch.broadcast_tensors(student_logits.float(), teacher_logits.float())  # [B, T, d] both
    log_p = nn.functional.log_softmax(x / tau, dim=-1)
    q = nn.functional.softmax(y / tau, dim=-1)
    return nn.functional.kl_div(log_p, q, reduction="batchmean") * tau * tau
