"""No-reference image quality models of the paper's Table 3: BRISQUE and MUSIQ (pyiqa), CLIP-IQA (torchmetrics).

Each is chosen by a spec: the library's own name (downloaded by the library's hub code: ``brisque``, ``musiq``,
``musiq-ava``…, ``clip_iqa``, or a transformers CLIP hub id for CLIP-IQA), a local path (BRISQUE: an SVM file of
(sv_coef, sv) tensors; MUSIQ: a pyiqa state-dict file; CLIP-IQA: a transformers CLIP folder), or ``tiny`` (a small
random stand-in of the same class, for tests and offline smoke runs). Local weight files are opened with
``torch.load(weights_only=True)`` first, so a file holding anything but tensors is refused before the library
(which unpickles) sees it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.deps import require
from surd.models import TINY, ModelLoadError
from surd.models.tokenizers import CLIP_VOCAB_SIZE, clip_tokenizer

PYIQA_HINT = ("pyiqa is needed for BRISQUE and MUSIQ: pip install 'surd[eval]' && pip install --no-deps pyiqa==0.1.16 "
              "(pyiqa's own requirements pull in training tools surd does not need)")
BRISQUE_NAMES = ("brisque", "brisque_matlab")
MUSIQ_NAMES = ("musiq", "musiq-ava", "musiq-koniq", "musiq-paq2piq", "musiq-spaq")
# A MUSIQ small enough for CPU tests; the multi-scale input (one resized scale + the original) is kept.
TINY_MUSIQ = dict(pretrained=False, hidden_size=32, mlp_dim=64, num_heads=2, num_layers=2, longer_side_lengths=[64],
                  num_scales=2)
TINY_CLIP_IQA_SIZE = 32


@dataclass
class QualityModel:
    """A loaded quality metric: ``score(x)`` takes a float batch [N, 3, H, W] in [0, 1] and returns N floats."""

    name: str
    spec: str
    lower_better: bool
    net: Any

    def score(self, x: Any) -> list[float]:
        torch = require("torch", "eval")
        with torch.inference_mode():
            if self.name == "clip_iqa":
                self.net.reset()
                self.net.update(x * 255.0)
                out = self.net.compute()
            else:
                out = self.net(x)
        return [float(v) for v in out.reshape(-1).cpu()]


def _pyiqa() -> Any:
    try:
        import pyiqa  # heavy optional dependency (metric zoo), only for the quality metrics
    except ImportError as e:
        raise ImportError(PYIQA_HINT) from e
    return pyiqa


def check_tensor_file(path: str) -> str:
    """Refuse a weight file that holds more than tensors (it would run pickled code in the library's loader)."""
    torch = require("torch", "eval")
    p = os.path.expanduser(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"metric weight file {p} does not exist")
    try:
        torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(f"{p} holds more than tensors, so it is not loaded (weights_only=True): re-save its "
                             f"tensors with torch.save in a session you trust ({e})") from e
    return p


def _offline(name: str, err: Exception) -> ModelLoadError:
    return ModelLoadError(f"could not load the {name!r} metric weights (offline, or no such model): {err}. Run once "
                          f"on a machine with access so the library caches them (torch hub cache), copy that cache "
                          f"here, or pass a local weight file / folder; or pass tiny for a smoke run")


def _named_or_file(metric: str, spec: str, names: tuple[str, ...], device: str) -> Any:
    """A pyiqa metric by library name (its weights cached by the library) or from a local tensor file."""
    torch = require("torch", "eval")
    pyiqa = _pyiqa()
    if spec in names:
        try:
            return pyiqa.create_metric(spec, device=torch.device(device))
        except (OSError, RuntimeError, ValueError) as e:
            raise _offline(spec, e) from e
    return pyiqa.create_metric(metric, pretrained_model_path=check_tensor_file(spec), device=torch.device(device))


def load_brisque(spec: str = "brisque", device: str = "cpu", seed: int = 0) -> QualityModel:
    """BRISQUE (lower is better): pyiqa's SVM by name, a local (sv_coef, sv) tensor file, or a random tiny SVM."""
    torch = require("torch", "eval")
    pyiqa = _pyiqa()
    if spec == TINY:
        gen = torch.Generator().manual_seed(seed)
        svm = (torch.randn(16, generator=gen), torch.rand(16, 36, generator=gen) * 2 - 1)  # 36 NSS features
        with tempfile.TemporaryDirectory() as d:  # pyiqa reads the SVM from a file in its constructor
            path = str(Path(d) / "tiny_brisque_svm.pt")
            torch.save(svm, path)
            net = pyiqa.create_metric("brisque", pretrained_model_path=path, device=torch.device(device))
    else:
        net = _named_or_file("brisque", spec, BRISQUE_NAMES, device)
    return QualityModel("brisque", spec, True, net)


def load_musiq(spec: str = "musiq", device: str = "cpu", seed: int = 0) -> QualityModel:
    """MUSIQ (higher is better): a pyiqa name (``musiq`` = KonIQ-10k), a local state-dict file, or a random tiny one."""
    torch = require("torch", "eval")
    pyiqa = _pyiqa()
    if spec == TINY:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = pyiqa.create_metric("musiq", device=torch.device(device), **TINY_MUSIQ)
    else:
        net = _named_or_file("musiq", spec, MUSIQ_NAMES, device)
    return QualityModel("musiq", spec, False, net)


def tiny_clip_iqa_model(seed: int = 0) -> tuple[Any, Any]:
    """A random transformers CLIPModel with the real CLIP tokenizer and a 32-pixel image processor."""
    torch = require("torch", "eval")
    tf = require("transformers", "eval")
    cfg = tf.CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         vocab_size=CLIP_VOCAB_SIZE, max_position_embeddings=77, bos_token_id=49406,
                         eos_token_id=49407, pad_token_id=49407),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=TINY_CLIP_IQA_SIZE, patch_size=8),
        projection_dim=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.CLIPModel(cfg).eval()
    size = TINY_CLIP_IQA_SIZE
    images = tf.CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return model, tf.CLIPProcessor(image_processor=images, tokenizer=clip_tokenizer())


def for_torchmetrics(model: Any, processor: Any) -> tuple[Any, Any]:
    """Make a transformers CLIP fit torchmetrics' CLIP-IQA: it divides images by ``data_range`` itself (so the
    processor must not rescale them again), and it expects tensors from ``get_*_features``, which transformers ≥ 5
    returns as a ModelOutput whose ``pooler_output`` holds the projected features."""
    torch = require("torch", "eval")
    processor.image_processor.do_rescale = False
    for name in ("get_text_features", "get_image_features"):
        def features(*args: Any, _orig: Any = getattr(model, name), **kwargs: Any) -> Any:
            out = _orig(*args, **kwargs)
            return out if torch.is_tensor(out) else out.pooler_output
        setattr(model, name, features)
    return model, processor


def _transformers_clip(path: str) -> Any:
    def load() -> tuple[Any, Any]:
        tf = require("transformers", "eval")
        try:
            return for_torchmetrics(tf.CLIPModel.from_pretrained(path).eval(), tf.CLIPProcessor.from_pretrained(path))
        except OSError as e:
            raise ModelLoadError(f"could not load a transformers CLIP from {path!r} (a hub id, or a folder written "
                                 f"by save_pretrained): {e}") from e
    return load


def load_clip_iqa(spec: str = "clip_iqa", device: str = "cpu", seed: int = 0) -> QualityModel:
    """CLIP-IQA (higher is better) through torchmetrics: ``clip_iqa`` (the paper's RN50 weights, via piq), a
    transformers CLIP hub id or local folder, or a random tiny CLIP."""
    require("torch", "eval")
    try:
        from torchmetrics.multimodal import CLIPImageQualityAssessment  # optional heavy dependency
    except ImportError as e:
        raise ImportError("torchmetrics is needed for CLIP-IQA: pip install 'surd[eval]'") from e
    if spec == TINY:
        model_arg: Any = lambda: for_torchmetrics(*tiny_clip_iqa_model(seed))  # noqa: E731 - torchmetrics takes a factory
    elif spec == "clip_iqa":
        model_arg = spec  # the CLIP-IQA paper's RN50, loaded by torchmetrics through piq
    else:
        model_arg = _transformers_clip(os.path.expanduser(spec))  # a hub id or a local folder
    try:
        net = CLIPImageQualityAssessment(model_name_or_path=model_arg, data_range=255.0, prompts=("quality",))
    except (OSError, RuntimeError) as e:
        raise _offline(spec, e) from e
    return QualityModel("clip_iqa", spec, False, net.to(device))


LOADERS = {"brisque": load_brisque, "clip_iqa": load_clip_iqa, "musiq": load_musiq}
_CACHE: dict[tuple[str, str, str], QualityModel] = {}


def load_quality(name: str, spec: str, device: str = "cpu") -> QualityModel:
    """Load (once per process, like the other model loaders) the quality metric *name* from *spec*."""
    key = (name, spec, device)
    if key not in _CACHE:
        _CACHE[key] = LOADERS[name](spec, device=device)
    return _CACHE[key]
