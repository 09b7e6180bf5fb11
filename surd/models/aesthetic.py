"""LAION's aesthetic predictors on L2-normalised CLIP image embeddings, in torch, from their own weight files.

Two layouts, told apart by their tensor names:
- ``mlp``: christophschuhmann/improved-aesthetic-predictor's ``MLP`` (``sac+logos+ava1-l14-linearMSE.pth``, on
  CLIP ViT-L/14, 768-d): ``layers`` = Linear(d, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2),
  Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1), no activation (their ReLUs are commented out);
  tensors ``layers.{0,2,4,6,7}.{weight,bias}``.
- ``linear``: LAION-AI/aesthetic-predictor's ``sa_0_4_vit_b_32_linear.pth`` (ViT-B/32, 512-d; ``vit_l_14``: 768-d):
  one ``nn.Linear(d, 1)``; tensors ``weight``, ``bias``.
Both predict a 1–10 rating. ``.pth`` files are read with ``torch.load(weights_only=True)``, never unpickled.

A spec is ``tiny`` (a seeded random MLP), ``tiny:linear`` (a seeded random linear head), a local
``.safetensors``/``.pth`` file, or a hub id ``owner/repo:file``.
"""

from __future__ import annotations

from typing import Any

from surd.deps import require
from surd.models import TINY, ModelCache, ModelLoadError, offline_hint, parse_spec
from surd.models.nsfw import read_state_dict

MLP_DIMS = (1024, 128, 64, 16, 1)  # hidden sizes of the improved predictor after the embedding
MLP_LAYERS = (0, 2, 4, 6, 7)  # indices of its Linear layers in `layers` (Dropout between the first four)
DROPOUT = {1: 0.2, 3: 0.2, 5: 0.1}
_HEADS = ModelCache()


def _torch() -> Any:
    return require("torch", "safety")


def build(kind: str, in_dim: int) -> Any:
    """An untrained head of *kind* (``mlp`` or ``linear``) reading *in_dim*-d embeddings; ``head(x)`` is (B,)."""
    nn = _torch().nn

    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dims, mods = (in_dim, *MLP_DIMS), []
            for k in range(len(MLP_LAYERS)):
                mods.append(nn.Linear(dims[k], dims[k + 1]))
                if len(mods) in DROPOUT:  # layers.1, .3, .5 are Dropout (identity in eval)
                    mods.append(nn.Dropout(DROPOUT[len(mods)]))
            self.layers = nn.Sequential(*mods)

        def forward(self, x: Any) -> Any:  # (B, in_dim) → (B,)
            return self.layers(x).squeeze(-1)

    class AestheticLinear(nn.Linear):
        def __init__(self) -> None:
            super().__init__(in_dim, 1)

        def forward(self, x: Any) -> Any:  # (B, in_dim) → (B,)
            return super().forward(x).squeeze(-1)

    if kind not in ("mlp", "linear"):
        raise ValueError(f"aesthetic head kind must be mlp or linear, got {kind!r}")
    head = AestheticMLP() if kind == "mlp" else AestheticLinear()
    head.kind, head.in_dim = kind, in_dim
    return head


def kind_of(sd: dict[str, Any]) -> tuple[str, int]:
    """(kind, embedding size) from a state dict's tensor names; the message says what a foreign file lacks."""
    if set(sd) == {"weight", "bias"} and sd["weight"].shape[0] == 1:
        return "linear", int(sd["weight"].shape[1])
    if set(sd) == {f"layers.{i}.{p}" for i in MLP_LAYERS for p in ("weight", "bias")}:
        return "mlp", int(sd["layers.0.weight"].shape[1])
    raise ValueError("not a LAION aesthetic predictor: expected layers.{0,2,4,6,7}.weight/bias (improved-aesthetic-"
                     f"predictor's MLP) or weight + bias of one Linear(d, 1) (aesthetic-predictor); got {sorted(sd)[:8]}")


def from_state_dict(sd: dict[str, Any]) -> Any:
    """A head loaded strictly (every tensor used, none missing) from LAION's tensors."""
    kind, in_dim = kind_of(sd)
    head = build(kind, in_dim)
    head.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return head.eval().requires_grad_(False)


def tiny_head(kind: str, in_dim: int, seed: int = 0) -> Any:
    """A random head of the real layout, identical for a given seed."""
    torch = _torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = build(kind, in_dim)
    return head.eval().requires_grad_(False)


def _hub_file(hub_id: str) -> str:
    repo, _, filename = hub_id.partition(":")
    if not filename:
        raise ValueError(f"aesthetic head {hub_id!r} is neither a local file nor a hub id with its file, "
                         "owner/repo:file (e.g. camenduru/improved-aesthetic-predictor:sac+logos+ava1-l14-linearMSE.pth)")
    try:
        return require("huggingface_hub", "safety").hf_hub_download(repo, filename)
    except Exception as e:  # noqa: BLE001 - offline, no such repo or file: all one message
        raise ModelLoadError(offline_hint(repo, "aesthetic_head:") + f" ({type(e).__name__}: {e})") from e


def load_head(spec: str, in_dim: int) -> tuple[Any, str]:
    """(head on the CPU, label) for a spec; *in_dim* sizes a tiny head and is checked against a real one."""

    def make() -> tuple[Any, str]:
        parsed = parse_spec(spec)
        if parsed.kind == TINY:
            kind = parsed.value.partition(":")[2] or "mlp"
            return tiny_head(kind, in_dim), parsed.value
        path = parsed.value if parsed.kind == "local" else _hub_file(parsed.value)
        try:
            return from_state_dict(read_state_dict(path)), parsed.label
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelLoadError(f"cannot load an aesthetic head from {path}: {e}") from e

    head, label = _HEADS.get((spec, in_dim), make)
    if head.in_dim != in_dim:
        raise ModelLoadError(f"aesthetic head {spec!r} reads {head.in_dim}-d CLIP embeddings but clip_model gives "
                             f"{in_dim}-d: the MLP is for ViT-L/14 (768), the linear heads for B/32 (512) or L/14")
    return head, label
