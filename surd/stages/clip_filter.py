"""clip_filter: samples with an image, simple_prompt and complex_prompt → kept iff CLIP prefers the simple prompt.

The paper's rule (CLIP ViT-B/32, OpenAI weights): classify the image between its simple and its complex prompt and
keep it if score(simple) >= score(complex); the softmax over the pair decides the same as cos(simple) >= cos(complex).
Prompts longer than CLIP's 77 tokens (with start/end tokens) are truncated, as open_clip's tokenizer does, and
``complex_truncated`` is recorded. json["stages"]["clip_filter"] holds both cosines, p(simple) and the decision.
With ``store_embedding`` (the default) each kept sample also gets ``clip.npy``: its L2-normalised CLIP image
embedding (float16, np.save bytes; the record's ``model``/``pretrained`` name the CLIP), which `surd safety` reuses
instead of running CLIP a second time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from surd.batching import BatchPlan, Done, decode_rgb, map_batched
from surd.models import DECODE_THREADS_HELP, DEVICE_HELP, DTYPE_HELP, DTYPES, TINY
from surd.models.clip import CONTEXT_LENGTH, DEFAULT_MODEL, DEFAULT_PRETRAINED, ClipModel, load_clip, token_count
from surd.models.clip import encode_text as clip_encode_text
from surd.options import config, option
from surd.sample import Rejected, Sample, record_stage, reject
from surd.stages.embed import npy_bytes

NAME = "clip_filter"
USES_GPU = True
RULE = "cos(image, simple) >= cos(image, complex)"
BELOW_COMPLEX = "clip_simple_below_complex"
BELOW_MIN = "clip_simple_below_min"
MISSING_SIMPLE = "missing_simple_prompt"
MISSING_COMPLEX = "missing_complex_prompt"
EMBEDDING_MEMBER = "clip.npy"


@config
class Config:
    """open_clip model + pretrained weights (tag or local file), an optional extra threshold, and batching."""

    model: str = option(DEFAULT_MODEL, help="open_clip architecture (ViT-B-32), a local open_clip folder, or tiny.")
    pretrained: str = option(DEFAULT_PRETRAINED, help="open_clip weights tag (openai) or a local checkpoint file; "
                             "'' for random weights.")
    min_simple_score: float | None = option(None, help="Also reject samples whose cos(image, simple) is below this.")
    batch_size: int = option(64, help="Images per batch (halved automatically on out-of-memory).", ge=1)
    decode_threads: int = option(2, help=DECODE_THREADS_HELP, ge=1)
    device: str = option("auto", help=DEVICE_HELP)
    dtype: str = option("auto", help=DTYPE_HELP, choices=DTYPES)
    store_embedding: bool = option(True, help="Store each kept sample's CLIP image embedding (clip.npy), which "
                                   "`surd safety` reuses instead of a second CLIP pass.")

    def __post_init__(self) -> None:
        if self.model == TINY and self.pretrained == DEFAULT_PRETRAINED:
            # tiny has no published weights: the default tag means its seeded random weights.
            object.__setattr__(self, "pretrained", "")
        if self.min_simple_score is not None and not -1.0 <= self.min_simple_score <= 1.0:
            raise ValueError(f"min_simple_score is a cosine in [-1, 1] (e.g. 0.2), got {self.min_simple_score}")


def versions() -> dict[str, str]:
    import open_clip  # optional extra: imported on use
    import torch  # optional extra: imported on use

    return {"torch": torch.__version__, "open_clip": open_clip.__version__}


def _text(sample: Sample, field: str) -> str:
    return str(sample["json"].get(field) or "").strip()


def _prepare(clip: ClipModel, sample: Sample) -> Any:
    simple, complex_ = _text(sample, "simple_prompt"), _text(sample, "complex_prompt")
    if not simple:
        return Done(reject(sample, MISSING_SIMPLE, "run `surd caption` first, or give the sample a simple_prompt"))
    if not complex_:
        return Done(reject(sample, MISSING_COMPLEX, "the sample has no complex prompt to compare against"))
    image = clip.preprocess(decode_rgb(sample))
    tokens = clip.tokenizer([simple, complex_])
    n_complex = token_count(clip.tokenizer, complex_)
    return image, tokens[0], tokens[1], n_complex


def score_and_embed_batch(clip: ClipModel, images: Any, simple_tokens: Any, complex_tokens: Any) -> tuple[Any, ...]:
    """cos(image, simple), cos(image, complex) and the normalised image embeddings (B, D) for a batch of
    preprocessed images and (B, 77) token tensors."""
    import torch  # optional extra: imported on use

    with torch.inference_mode():
        img = clip.model.encode_image(images.to(device=clip.device, dtype=clip.dtype), normalize=True)
        s = clip_encode_text(clip.model, simple_tokens.to(clip.device))
        c = clip_encode_text(clip.model, complex_tokens.to(clip.device))
        return (img * s).sum(-1).float().cpu(), (img * c).sum(-1).float().cpu(), img.float().cpu()


def score_batch(clip: ClipModel, images: Any, simple_tokens: Any, complex_tokens: Any) -> tuple[Any, Any]:
    """cos(image, simple) and cos(image, complex) for a batch of preprocessed images and (B, 77) token tensors."""
    return score_and_embed_batch(clip, images, simple_tokens, complex_tokens)[:2]


def _infer(clip: ClipModel, items: list[Any]) -> list[tuple[float, float, int, Any]]:
    import torch  # optional extra: imported on use

    images = torch.stack([it[0] for it in items])
    cs, cc, emb = score_and_embed_batch(clip, images, torch.stack([it[1] for it in items]),
                                        torch.stack([it[2] for it in items]))
    emb = emb.numpy()
    return [(float(a), float(b), it[3], emb[k]) for k, (a, b, it) in enumerate(zip(cs.tolist(), cc.tolist(), items))]


def _logit_scale(clip: ClipModel) -> float:
    return float(clip.model.logit_scale.exp()) if hasattr(clip.model, "logit_scale") else 100.0


def decide(cos_simple: float, cos_complex: float, min_simple_score: float | None) -> str | None:
    """None to keep, else the reject reason."""
    if cos_simple < cos_complex:
        return BELOW_COMPLEX
    if min_simple_score is not None and cos_simple < min_simple_score:
        return BELOW_MIN
    return None


def _finish(clip: ClipModel, cfg: Config, scale: float, sample: Sample, res: tuple[float, float, int, Any]) -> Any:
    cos_s, cos_c, n_complex, embedding = res
    reason = decide(cos_s, cos_c, cfg.min_simple_score)
    p_simple = 1.0 / (1.0 + math.exp(max(-60.0, min(60.0, scale * (cos_c - cos_s)))))
    record_stage(sample, NAME, {
        "model": clip.label, "pretrained": clip.pretrained, "rule": RULE, "min_simple_score": cfg.min_simple_score,
        "simple_score": cos_s, "complex_score": cos_c, "p_simple": p_simple, "complex_tokens": n_complex,
        "complex_truncated": n_complex > CONTEXT_LENGTH, "keep": reason is None,
        "embedding": EMBEDDING_MEMBER if cfg.store_embedding else None,
    })
    if reason is None:
        if cfg.store_embedding:
            sample[EMBEDDING_MEMBER] = npy_bytes(embedding)
        return sample
    limit = cos_c if reason == BELOW_COMPLEX else cfg.min_simple_score
    return reject(sample, reason, f"cos(simple)={cos_s:.4f} < {limit:.4f}")


def batch_plan(cfg: Config, clip: ClipModel) -> BatchPlan:
    """The batching plan of this stage; batches group prompts of similar length so less padding is encoded."""
    scale = _logit_scale(clip)
    return BatchPlan(
        prepare=lambda s: _prepare(clip, s),
        infer=lambda items: _infer(clip, items),
        finish=lambda s, r: _finish(clip, cfg, scale, s, r),
        batch_size=cfg.batch_size,
        threads=cfg.decode_threads,
        sort_key=lambda s: len(_text(s, "complex_prompt")),
    )


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Score and filter every sample; one output per input, in input order."""
    clip = load_clip(cfg.model, cfg.pretrained, device=cfg.device, dtype=cfg.dtype)
    yield from map_batched(samples, batch_plan(cfg, clip))
