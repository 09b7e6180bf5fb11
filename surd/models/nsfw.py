"""LAION's CLIP-based NSFW detector head (github.com/LAION-AI/CLIP-based-NSFW-Detector), in torch, from safetensors.

The head reads an L2-normalised CLIP image embedding and returns p(NSFW) in [0, 1]. Its layout is LAION's
``src/models.py`` (ported from their AutoKeras models): a Normalization layer (x - mean) / (sqrt(variance) + 1e-10),
then Linear layers with ReLU between them and a sigmoid at the end:
``NSFWModel_B32`` (CLIP ViT-B/32, 512-d): 512 → 32 → 32 → 1;  ``NSFWModel_L14`` (ViT-L/14, 768-d): 768 → 64 → 512 →
256 → 1. Tensor names are LAION's (``norm.mean``, ``norm.variance``, ``linear_1.weight``, ...), so their
``clip_<model>_openai_binary_nsfw_head.pth`` files convert (`convert_laion_head`) or load directly; ``.pth`` files
are read with ``torch.load(weights_only=True)``, never unpickled.

A spec is ``tiny`` (a seeded random head, for tests and offline smoke runs), a local ``.safetensors``/``.pth`` file,
or a hub id ``owner/repo`` (file ``model.safetensors``) or ``owner/repo:file``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from surd.deps import require
from surd.models import TINY, ModelCache, ModelLoadError, offline_hint, parse_spec

FORMAT = "surd-laion-nsfw-head"
HUB_FILE = "model.safetensors"
TINY_HIDDEN = 32
EPS = 1e-10  # LAION's port adds this to sqrt(variance)
_MODELS = ModelCache()  # heads loaded once per process


def _torch() -> Any:
    return require("torch", "safety")


def head_class() -> type:
    """The torch module class (built lazily so importing this file needs no torch)."""
    torch = _torch()

    class Normalization(torch.nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.register_buffer("mean", torch.zeros(dim))
            self.register_buffer("variance", torch.ones(dim))

        def forward(self, x: Any) -> Any:
            return (x - self.mean) / (self.variance.sqrt() + EPS)

    class LaionNsfwHead(torch.nn.Module):
        """dims = (embedding, hidden..., 1); ReLU after every Linear but the last, then a sigmoid."""

        def __init__(self, dims: tuple[int, ...]):
            super().__init__()
            if len(dims) < 2 or dims[-1] != 1:
                raise ValueError(f"head dims must run from the embedding size to 1, got {dims}")
            self.dims = tuple(int(d) for d in dims)
            self.norm = Normalization(self.dims[0])
            for k, (a, b) in enumerate(zip(self.dims, self.dims[1:]), start=1):
                self.add_module(f"linear_{k}", torch.nn.Linear(a, b))

        def forward(self, x: Any) -> Any:  # (B, dims[0]) normalised CLIP embeddings → (B,) p(NSFW)
            x = self.norm(x)
            n = len(self.dims) - 1
            for k in range(1, n + 1):
                x = getattr(self, f"linear_{k}")(x)
                x = torch.relu(x) if k < n else torch.sigmoid(x)
            return x.squeeze(-1)

    return LaionNsfwHead


def dims_from_state_dict(sd: dict[str, Any]) -> tuple[int, ...]:
    """(embedding, hidden..., 1) read from LAION-named tensors; the message says what a bad file lacks."""
    if "norm.mean" not in sd or "linear_1.weight" not in sd:
        raise ValueError(f"not a LAION NSFW head: expected norm.mean, norm.variance, linear_1.weight, ... "
                         f"(src/models.py of LAION-AI/CLIP-based-NSFW-Detector); got {sorted(sd)[:8]}")
    dims = [int(sd["norm.mean"].shape[0])]
    k = 1
    while f"linear_{k}.weight" in sd:
        out_dim, in_dim = sd[f"linear_{k}.weight"].shape
        if in_dim != dims[-1]:
            raise ValueError(f"linear_{k}.weight takes {in_dim} inputs, the layer before gives {dims[-1]}")
        dims.append(int(out_dim))
        k += 1
    return tuple(dims)


def build_head(sd: dict[str, Any]) -> Any:
    """A head from a LAION-named state dict (strict: every tensor used, none missing)."""
    head = head_class()(dims_from_state_dict(sd))
    head.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return head.eval().requires_grad_(False)


def tiny_head(in_dim: int, seed: int = 0) -> Any:
    """A random head (in_dim → 32 → 32 → 1), identical for a given seed; its bias leans safe so most samples pass."""
    torch = _torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = head_class()((in_dim, TINY_HIDDEN, TINY_HIDDEN, 1))
    with torch.no_grad():
        head.linear_3.bias.fill_(-1.0)
    return head.eval().requires_grad_(False)


def read_state_dict(path: str) -> dict[str, Any]:
    """Tensors of a .safetensors file, or of a torch .pth/.pt/.bin file loaded with weights_only=True."""
    torch = _torch()
    if path.endswith(".safetensors"):
        return dict(require("safetensors.torch", "safety").load_file(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, not a state dict of tensors")
    return dict(sd)


def convert_laion_head(src: str, dst: str, clip_model: str = "", clip_pretrained: str = "") -> tuple[int, ...]:
    """LAION's ``.pth`` head → a ``.safetensors`` file with the same tensor names and its layout in the metadata."""
    sd = read_state_dict(os.path.expanduser(src))
    dims = dims_from_state_dict(sd)
    build_head(sd)  # fails here, not at load time, on a file that does not fit the layout
    meta = {"format": FORMAT, "dims": json.dumps(dims), "clip_model": clip_model, "clip_pretrained": clip_pretrained,
            "source": os.path.basename(src)}
    tensors = {k: v.detach().float().contiguous() for k, v in sd.items()}
    require("safetensors.torch", "safety").save_file(tensors, os.path.expanduser(dst), metadata=meta)
    return dims


def _hub_file(hub_id: str) -> str:
    repo, _, filename = hub_id.partition(":")
    hub = require("huggingface_hub", "safety")
    try:
        return hub.hf_hub_download(repo, filename or HUB_FILE)
    except Exception as e:  # noqa: BLE001 - offline, no such repo or file: all one message
        raise ModelLoadError(offline_hint(repo, "head:") + f" ({type(e).__name__}: {e})") from e


def load_head(spec: str, in_dim: int, device: str | Any = "cpu") -> tuple[Any, str]:
    """(head on `device`, label) for a spec; `in_dim` sizes a tiny head and is checked against a real one."""

    def build() -> tuple[Any, str]:
        parsed = parse_spec(spec)
        if parsed.kind == TINY:
            head, label = tiny_head(in_dim), TINY
        else:
            path = parsed.value if parsed.kind == "local" else _hub_file(parsed.value)
            try:
                head = build_head(read_state_dict(path))
            except (ValueError, RuntimeError, OSError) as e:
                raise ModelLoadError(f"cannot load an NSFW head from {path}: {e}") from e
            label = parsed.label
        if head.dims[0] != in_dim:
            raise ModelLoadError(f"NSFW head {spec!r} reads {head.dims[0]}-d CLIP embeddings but clip_model gives "
                                 f"{in_dim}-d: use the head made for that CLIP (B/32: 512, L/14: 768)")
        return head.to(device), label

    return _MODELS.get((spec, in_dim, str(device)), build)
