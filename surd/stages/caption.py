"""caption: samples with an image (``jpg``/``png``/``webp``) → json["simple_prompt"] written by BLIP or any
transformers image-to-text model.

The paper's settings (LAVIS ``blip_caption`` ``base_coco``, the default): beam search 3, min 10 / max 30 tokens
(counted with the prompt, as LAVIS and transformers both do), the prompt "a picture of " and the prompt stripped from
the output. Other models (BLIP-2, Florence-2, Qwen2-VL, any ``AutoModelForImageTextToText``: `surd.models.vlm`) get
``instruction`` and count min/max length in new tokens. With ``candidates`` N > 1 each image gets N captions (beam
search's N best) and CLIP (``rank_clip_model``) keeps the one closest to the image, as LAION-COCO did; all N and
their cosines are stored. json["stages"]["caption"] records the model id, revision and generation parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from surd.batching import BatchPlan, Done, decode_rgb, map_batched
from surd.models import DECODE_THREADS_HELP, DEVICE_HELP, DTYPE_HELP, DTYPES, TINY, parse_spec
from surd.models.blip import DEFAULT_MODEL, Captioner, load_captioner
from surd.models.clip import DEFAULT_MODEL as CLIP_MODEL
from surd.models.clip import DEFAULT_PRETRAINED as CLIP_PRETRAINED
from surd.models.clip import ClipModel, encode_text, load_clip
from surd.models.vlm import VisionLanguageModel, load_vlm, model_type
from surd.models.vlm import generate as vlm_generate
from surd.options import config, option
from surd.sample import Rejected, Sample, record_stage, reject

NAME = "caption"
USES_GPU = True
PAPER_PROMPT = "a picture of "
EMPTY_CAPTION = "empty_caption"


@config
class Config:
    """The captioning model, generation settings (the paper's BLIP by default), CLIP ranking of candidates, batching."""

    model: str = option(DEFAULT_MODEL, help="Captioner: BLIP (the paper's; a hub id, a local folder, or tiny), or any "
                        "image-to-text model: BLIP-2, Florence-2, Qwen2-VL, ... (tiny-blip2, tiny-florence2, "
                        "tiny-qwen2-vl offline).")
    revision: str | None = option(None, help="Hub revision (branch, tag or commit) of --model.")
    lavis_checkpoint: str | None = option(None, help="LAVIS BLIP caption checkpoint (.pth or .safetensors), e.g. "
                                          "blip_coco_caption_base.pth (the paper's base_coco), loaded into --model's "
                                          "architecture.")
    prompt: str = option(PAPER_PROMPT, help="BLIP: the text the caption continues, stripped from the caption.")
    instruction: str = option("", help="Other models: the instruction or task token ('' = the family's, e.g. "
                              "<CAPTION>).")
    num_beams: int = option(3, help="Beam search width (the paper uses 3).", ge=1)
    min_length: int = option(10, help="Minimum tokens (BLIP: prompt included; other models: new tokens); the paper: "
                             "10.", ge=0)
    max_length: int = option(30, help="Maximum tokens (as --min-length); the paper: 30.", ge=0)
    repetition_penalty: float = option(1.0, help="Penalty on repeated tokens (1.0 = none).", gt=0)
    candidates: int = option(1, help="Captions per image; N > 1: CLIP keeps the best, all N are stored "
                             "(LAION-COCO's practice).", ge=1)
    rank_clip_model: str = option(CLIP_MODEL, help="The CLIP that ranks candidates (open_clip name, folder or tiny).")
    rank_clip_pretrained: str = option(CLIP_PRETRAINED, help="open_clip weights of --rank-clip-model.")
    batch_size: int = option(16, help="Images per batch (halved automatically on out-of-memory).", ge=1)
    decode_threads: int = option(2, help=DECODE_THREADS_HELP, ge=1)
    device: str = option("auto", help=DEVICE_HELP)
    dtype: str = option("auto", help=DTYPE_HELP, choices=DTYPES)
    overwrite: bool = option(False, help="Replace simple prompts the samples already have.")

    def __post_init__(self) -> None:
        if self.min_length > self.max_length:
            raise ValueError(f"need min_length <= max_length (the paper: 10 and 30), got "
                             f"{self.min_length} and {self.max_length}")
        if self.rank_clip_model == TINY and self.rank_clip_pretrained == CLIP_PRETRAINED:
            object.__setattr__(self, "rank_clip_pretrained", "")  # as clip_filter: tiny has only its random weights

    def is_blip(self) -> bool:
        """The paper's BLIP captioner (or a LAVIS checkpoint in it), rather than another image-to-text model."""
        return self.model == DEFAULT_MODEL or parse_spec(self.model).kind == TINY or bool(self.lavis_checkpoint) \
            or model_type(self.model, self.revision) == "blip"  # tiny and tiny:<name> are BLIP built in code

    def generation_params(self) -> dict[str, Any]:
        """The parameters recorded with every caption."""
        params = {"prompt": self.prompt, "num_beams": self.num_beams, "min_length": self.min_length,
                  "max_length": self.max_length, "repetition_penalty": self.repetition_penalty, "do_sample": False}
        if self.candidates > 1:  # named only when used, so configs and records of single captions stay as they were
            params.update(candidates=self.candidates, num_beams=max(self.num_beams, self.candidates))
        return params


def versions() -> dict[str, str]:
    import torch  # optional extra: imported on use
    import transformers  # optional extra: imported on use

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def strip_prompt(text: str, prompt: str) -> str:
    """Remove the generation prompt from a decoded caption (LAVIS slices it off by length)."""
    text = text.strip()
    for p in (prompt, prompt.strip()):
        if p and text.lower().startswith(p.lower()):
            return text[len(p) :].strip()
    return text


Model = Captioner | VisionLanguageModel


def _prepare(cap: Model, cfg: Config, clip: ClipModel | None, sample: Sample) -> Any:
    if not cfg.overwrite and str(sample["json"].get("simple_prompt") or "").strip():
        record_stage(sample, NAME, {"model": cap.label, "kept_existing": True})
        return Done(sample)
    image = decode_rgb(sample)  # once per sample, on the fused decode path
    pixels = (cap.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]
              if isinstance(cap, Captioner) else image)  # other models: the processor sees the whole batch
    return pixels, clip.preprocess(image) if clip is not None else None


def generate(cap: Captioner, cfg: Config, pixel_values: Any, candidates: int = 1) -> list[str]:
    """BLIP captions for a batch of preprocessed images (B, 3, H, W), prompt stripped; *candidates* per image
    (beam search's best first), image after image."""
    import torch  # optional extra: imported on use

    n = pixel_values.shape[0]
    prompt_ids = cap.processor.tokenizer([cfg.prompt] * n, return_tensors="pt").input_ids.to(cap.device)
    with torch.inference_mode():
        out = cap.model.generate(
            pixel_values=pixel_values.to(device=cap.device, dtype=cap.dtype), input_ids=prompt_ids,
            num_beams=max(cfg.num_beams, candidates), num_return_sequences=candidates, min_length=cfg.min_length,
            max_length=cfg.max_length, repetition_penalty=cfg.repetition_penalty, do_sample=False,
        )
    texts = cap.processor.tokenizer.batch_decode(out, skip_special_tokens=True)
    return [strip_prompt(t, cfg.prompt) for t in texts]


def rank(clip: ClipModel, images: Any, texts: list[list[str]]) -> list[list[float]]:
    """cos(image, caption) for every candidate of every image; images: (B, 3, H, W) CLIP-preprocessed."""
    import torch  # optional extra: imported on use

    flat = [t for group in texts for t in group]
    with torch.inference_mode():
        img = clip.model.encode_image(images.to(clip.device, clip.dtype), normalize=True).float()  # (B, D)
        txt = encode_text(clip.model, clip.tokenizer(flat).to(clip.device)).float()  # (B·N, D)
    n = len(texts[0]) if texts else 0
    cos = (txt.view(len(texts), n, -1) @ img.unsqueeze(-1)).squeeze(-1)  # (B, N)
    return cos.cpu().tolist()


def _infer(cap: Model, cfg: Config, clip: ClipModel | None, items: list[Any]) -> list[tuple[list[str], Any]]:
    import torch  # optional extra: imported on use

    n = cfg.candidates
    if isinstance(cap, Captioner):
        flat = generate(cap, cfg, torch.stack([it[0] for it in items]), n)
        groups = [flat[i * n : (i + 1) * n] for i in range(len(items))]
    else:
        groups = vlm_generate(cap, [it[0] for it in items], cfg.instruction, vars_of(cfg), n)
    scores = rank(clip, torch.stack([it[1] for it in items]), groups) if clip is not None else [None] * len(items)
    return list(zip(groups, scores))


def vars_of(cfg: Config) -> dict[str, Any]:
    return {"num_beams": cfg.num_beams, "min_length": cfg.min_length, "max_length": cfg.max_length,
            "repetition_penalty": cfg.repetition_penalty}


def _record(cap: Model, cfg: Config) -> dict[str, Any]:
    if isinstance(cap, Captioner):
        return {"model": cap.label, "revision": cap.revision, "backend": "transformers",
                "lavis_checkpoint": cfg.lavis_checkpoint, "params": cfg.generation_params()}
    params = {"instruction": cfg.instruction or cap.default_instruction(), "num_beams": max(cfg.num_beams,
              cfg.candidates), "min_new_tokens": cfg.min_length, "max_new_tokens": cfg.max_length,
              "repetition_penalty": cfg.repetition_penalty, "do_sample": False, "candidates": cfg.candidates}
    return {"model": cap.label, "revision": cap.revision, "backend": "transformers", "family": cap.family,
            "params": params}


def _finish(cap: Model, cfg: Config, clip: ClipModel | None, sample: Sample, result: tuple[list[str], Any]
            ) -> Sample | Rejected:
    texts, cosines = result
    usable = [i for i, t in enumerate(texts) if t]
    if not usable:
        return reject(sample, EMPTY_CAPTION, "the model produced only the prompt")
    best = max(usable, key=lambda i: cosines[i]) if cosines is not None else usable[0]  # ties: beam order
    sample["json"]["simple_prompt"] = texts[best]
    record = _record(cap, cfg)
    if cosines is not None:
        record.update(rank_clip={"model": clip.label, "pretrained": clip.pretrained}, chosen=best,
                      candidates=[{"text": t, "clip": float(c)} for t, c in zip(texts, cosines)])
    record_stage(sample, NAME, record)
    return sample


def batch_plan(cfg: Config, cap: Model, clip: ClipModel | None = None) -> BatchPlan:
    """The batching plan of this stage (also used by bench/model_stages.py); *clip* ranks candidates."""
    return BatchPlan(
        prepare=lambda s: _prepare(cap, cfg, clip, s),
        infer=lambda items: _infer(cap, cfg, clip, items),
        finish=lambda s, r: _finish(cap, cfg, clip, s, r),
        batch_size=cfg.batch_size,
        threads=cfg.decode_threads,
    )


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Caption every sample without a simple prompt (all of them with ``overwrite``); one output per input, in order."""
    if cfg.is_blip():
        cap: Model = load_captioner(cfg.model, revision=cfg.revision, lavis_checkpoint=cfg.lavis_checkpoint,
                                    device=cfg.device, dtype=cfg.dtype)
    else:
        cap = load_vlm(cfg.model, revision=cfg.revision, device=cfg.device, dtype=cfg.dtype)
    clip = (load_clip(cfg.rank_clip_model, cfg.rank_clip_pretrained, device=cfg.device, dtype=cfg.dtype)
            if cfg.candidates > 1 else None)
    yield from map_batched(samples, batch_plan(cfg, cap, clip))
