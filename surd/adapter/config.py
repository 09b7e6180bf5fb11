"""Frozen configs of the SUR-adapter (architecture) and of its training run (official defaults from run.sh)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
CACHE_MODES = ("off", "eager", "lazy")
LOGGERS = ("csv", "tensorboard")


@dataclass(frozen=True)
class AdapterConfig:
    """Architecture of one adapter; saved as ``adapter_config.json`` beside its weights.

    text_dim: width d of the base text encoder (768 for SD 1.x, 1024 for SD 2.x, read from the base model).
    llm_dim: width of the LLM knowledge vectors (``llm.npy``): 4096 / 5120 / 6656 for LLaMA 7B / 13B / 33B.
    eta: output mix c' = eta·g(result) + (1−eta)·x (the official ``--adapter_weight``, 0.1 in run.sh).
    w0_seed: the seed of the frozen Kaiming projection W0 (llm_dim → text_dim); W0 itself is saved too.
    encoder_attention: ``tokens`` — the encoder attends over the T tokens of each sample (the paper's intent);
        ``per_token`` — each token passes the encoder alone, which is what the official code computed at its
        training batch size of 1 (its [1, 77, d] input read as sequence length 1). Imported official checkpoints
        use ``per_token`` so they reproduce the official outputs; both are batch invariant.
    """

    text_dim: int
    llm_dim: int
    n_heads: int = 8
    ff_dim: int = 2048
    n_layers: int = 2
    eta: float = 0.1
    dropout: float = 0.1
    w0_seed: int = 0
    encoder_attention: str = "tokens"
    base_model: str = ""

    def __post_init__(self) -> None:
        for name in ("text_dim", "llm_dim", "n_heads", "ff_dim", "n_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"AdapterConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.text_dim % self.n_heads:
            raise ValueError(f"text_dim {self.text_dim} is not divisible by n_heads {self.n_heads}: pick n_heads "
                             f"that divides the text encoder width (8 for 768/1024)")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1] (the adapter's share of the output), got {self.eta}")
        if self.encoder_attention not in ("tokens", "per_token"):
            raise ValueError(f"encoder_attention must be 'tokens' or 'per_token', got {self.encoder_attention!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AdapterConfig:
        """Build from a saved dict; unknown keys (written by a newer surd) are an error that names them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown adapter config keys {unknown}: this adapter was saved by a newer surd; "
                             f"upgrade surd")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """One ``surd train-adapter`` run. Defaults are the official run's (run.sh), except where noted.

    resolution: None → the base model's native size (unet.sample_size × VAE factor: 512 for SD 1.x, 64 for tiny).
    mixed_precision: ``auto`` → fp16 on GPU, ``no`` on CPU.
    cache_features: ``off``; ``eager`` — precompute VAE latent distributions (image and its flip) and text
        features of every sample once, before training; ``lazy`` — store them the first time each sample is used.
        Both models are frozen and recomputing them is most of a step in the official loop; the latent is still
        *sampled* every step. ``True``/``False`` mean ``eager``/``off``.
    checkpoint_every: optimizer steps between full checkpoints (adapter, optimizer, scheduler, RNG, data position).
    """

    data: str
    base: str
    out: str
    lr: float = 1e-5
    max_steps: int = 5000
    batch_size: int = 1
    grad_accum: int = 4
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = True
    resolution: int | None = None
    center_crop: bool = True
    random_flip: bool = True
    lambda_llm: float = 1e-5
    lambda_cp: float = 1e-5
    tau: float = 1.0
    min_snr_gamma: float | None = None
    checkpoint_every: int = 100
    seed: int = 0
    cache_features: str | bool = "off"
    cache_dir: str | None = None
    log: tuple[str, ...] = ("csv", "tensorboard")
    max_grad_norm: float = 1.0
    weight_decay: float = 1e-2
    shuffle_buffer: int = 256
    resume: bool = False
    progress: bool = True
    adapter: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)}, "
                             f"got {self.mixed_precision!r}")
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            raise ValueError(f"--resolution must be a multiple of 8 (e.g. 512), got {self.resolution}")
        if self.tau <= 0:
            raise ValueError(f"--tau (distillation temperature) must be > 0, got {self.tau}")
        if self.min_snr_gamma is not None and self.min_snr_gamma <= 0:
            raise ValueError(f"--min-snr-gamma must be > 0 (5.0 is the usual value) or unset, got {self.min_snr_gamma}")
        if self.shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1 (1 = stream order), got {self.shuffle_buffer}")
        if isinstance(self.cache_features, bool):
            object.__setattr__(self, "cache_features", "eager" if self.cache_features else "off")
        if self.cache_features not in CACHE_MODES:
            raise ValueError(f"--cache-features must be one of {', '.join(CACHE_MODES)}, got {self.cache_features!r}")
        if self.cache_features != "off" and not self.center_crop:
            raise ValueError("--cache-features needs center crop (cached latents cover the image and its flip, not "
                             "random crops): drop --no-center-crop or --cache-features")
        bad = [x for x in self.log if x not in LOGGERS]
        if bad:
            raise ValueError(f"unknown logger(s) {bad}: use {', '.join(LOGGERS)}")
        allowed = {f.name for f in dataclasses.fields(AdapterConfig)} - {"text_dim", "llm_dim", "base_model"}
        extra = sorted(set(self.adapter) - allowed)
        if extra:
            raise ValueError(f"adapter options {extra} are not adapter settings; allowed: {sorted(allowed)}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["log"] = list(self.log)
        return d
