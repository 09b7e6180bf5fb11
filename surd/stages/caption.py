"""caption: samples with an image (``jpg``/``png``/``webp``) → json["simple_prompt"] written by BLIP.

The paper's settings (LAVIS ``blip_caption`` ``base_coco``): beam search 3, min 10 / max 30 tokens (counted with the
prompt, as LAVIS and transformers both do), the prompt "a picture of " and the prompt stripped from the output.
json["stages"]["caption"] records the model id, revision and generation parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from surd.batching import BatchPlan, Done, decode_rgb, map_batched
from surd.models import DECODE_THREADS_HELP, DEVICE_HELP, DTYPE_HELP, DTYPES
from surd.models.blip import DEFAULT_MODEL, Captioner, load_captioner
from surd.options import config, option
from surd.sample import Rejected, Sample, record_stage, reject

NAME = "caption"
USES_GPU = True
PAPER_PROMPT = "a picture of "
EMPTY_CAPTION = "empty_caption"


@config
class Config:
    """BLIP model, generation settings (the paper's by default) and batching."""

    model: str = option(DEFAULT_MODEL, help="BLIP captioner: a hub id, a local folder, or tiny.")
    revision: str | None = option(None, help="Hub revision (branch, tag or commit) of --model.")
    lavis_checkpoint: str | None = option(None, help="LAVIS BLIP caption checkpoint (.pth or .safetensors), e.g. "
                                          "blip_coco_caption_base.pth (the paper's base_coco), loaded into --model's "
                                          "architecture.")
    prompt: str = option(PAPER_PROMPT, help="Generation prompt, stripped from the caption.")
    num_beams: int = option(3, help="Beam search width (the paper uses 3).", ge=1)
    min_length: int = option(10, help="Minimum tokens, prompt included (the paper: 10).", ge=0)
    max_length: int = option(30, help="Maximum tokens, prompt included (the paper: 30).", ge=0)
    repetition_penalty: float = option(1.0, help="Penalty on repeated tokens (1.0 = none).", gt=0)
    batch_size: int = option(16, help="Images per batch (halved automatically on out-of-memory).", ge=1)
    decode_threads: int = option(2, help=DECODE_THREADS_HELP, ge=1)
    device: str = option("auto", help=DEVICE_HELP)
    dtype: str = option("auto", help=DTYPE_HELP, choices=DTYPES)
    overwrite: bool = option(False, help="Replace simple prompts the samples already have.")

    def __post_init__(self) -> None:
        if self.min_length > self.max_length:
            raise ValueError(f"need min_length <= max_length (the paper: 10 and 30), got "
                             f"{self.min_length} and {self.max_length}")

    def generation_params(self) -> dict[str, Any]:
        """The parameters recorded with every caption."""
        return {"prompt": self.prompt, "num_beams": self.num_beams, "min_length": self.min_length,
                "max_length": self.max_length, "repetition_penalty": self.repetition_penalty, "do_sample": False}


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


def _prepare(cap: Captioner, cfg: Config, sample: Sample) -> Any:
    if not cfg.overwrite and str(sample["json"].get("simple_prompt") or "").strip():
        record_stage(sample, NAME, {"model": cap.label, "kept_existing": True})
        return Done(sample)
    image = decode_rgb(sample)
    return cap.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]


def generate(cap: Captioner, cfg: Config, pixel_values: Any) -> list[str]:
    """Captions for a batch of preprocessed images (B, 3, H, W), prompt stripped."""
    import torch  # optional extra: imported on use

    n = pixel_values.shape[0]
    prompt_ids = cap.processor.tokenizer([cfg.prompt] * n, return_tensors="pt").input_ids.to(cap.device)
    with torch.inference_mode():
        out = cap.model.generate(
            pixel_values=pixel_values.to(device=cap.device, dtype=cap.dtype), input_ids=prompt_ids,
            num_beams=cfg.num_beams, min_length=cfg.min_length, max_length=cfg.max_length,
            repetition_penalty=cfg.repetition_penalty, do_sample=False,
        )
    texts = cap.processor.tokenizer.batch_decode(out, skip_special_tokens=True)
    return [strip_prompt(t, cfg.prompt) for t in texts]


def _infer(cap: Captioner, cfg: Config, items: list[Any]) -> list[str]:
    import torch  # optional extra: imported on use

    return generate(cap, cfg, torch.stack(items))


def _finish(cap: Captioner, cfg: Config, sample: Sample, caption: str) -> Sample | Rejected:
    if not caption:
        return reject(sample, EMPTY_CAPTION, "the model produced only the prompt")
    sample["json"]["simple_prompt"] = caption
    record_stage(sample, NAME, {"model": cap.label, "revision": cap.revision, "backend": "transformers",
                                "lavis_checkpoint": cfg.lavis_checkpoint, "params": cfg.generation_params()})
    return sample


def batch_plan(cfg: Config, cap: Captioner) -> BatchPlan:
    """The batching plan of this stage (also used by bench/model_stages.py)."""
    return BatchPlan(
        prepare=lambda s: _prepare(cap, cfg, s),
        infer=lambda items: _infer(cap, cfg, items),
        finish=lambda s, c: _finish(cap, cfg, s, c),
        batch_size=cfg.batch_size,
        threads=cfg.decode_threads,
    )


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Caption every sample without a simple prompt (all of them with ``overwrite``); one output per input, in order."""
    cap = load_captioner(cfg.model, revision=cfg.revision, lavis_checkpoint=cfg.lavis_checkpoint,
                         device=cfg.device, dtype=cfg.dtype)
    yield from map_batched(samples, batch_plan(cfg, cap))
