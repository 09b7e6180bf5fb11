"""GPU throughput of the model stages with random weights of the real sizes (nothing downloaded).

    python bench/gpu_stages.py                          # on a CUDA device: fp16, batch sizes swept
    python bench/gpu_stages.py --llm 33b --layer 60     # the paper's embed setting (~65 GB of fp16 weights)
    python bench/gpu_stages.py --device cpu --smoke     # small models on the CPU: checks the code path only

Each stage runs its real ``run()`` (decode threads, batching, the model, writing results back in order) over
synthetic 512x512 JPEG samples, with the model put in the stage's model cache instead of loaded from the hub:

- clip_filter: open_clip ViT-B/32 (random weights), images/s; anchor: clip-retrieval's ~2,500 images/s on one A100.
- caption: BLIP base (ViT-B/16 at 384 px + BERT-base decoder, transformers' BlipConfig defaults), beam 3,
  10-30 tokens, images/s.
- embed: LLaMA blocks of the 7B/13B/33B shapes cut after --layer, prompts/s.

Beside each stage figure the same model alone on pre-processed inputs (the ceiling) is timed in the same run; the
last line is ``ratio <stage>=<stage time / model-only time> ...``. Without a CUDA device (and without --device cpu)
it prints "no CUDA device" and exits 0: no figure is made up.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surd.deps import require  # noqa: E402

CLIP_ANCHOR = "clip-retrieval: ~2,500 images/s on one A100 (ViT-B/32 inference)"
LLAMA_SHAPES = {  # hidden, intermediate, blocks, heads (LLaMA-1)
    "7b": (4096, 11008, 32, 32),
    "13b": (5120, 13824, 40, 40),
    "33b": (6656, 17920, 60, 52),
}
WORDS = ("a woman with long hair standing in front of a castle at night painting of a dragon over the forest "
         "two dogs playing on green grass a red car parked in the snow close up of a cat with blue eyes").split()


def make_samples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Photo-like 512x512 JPEG samples with simple and complex prompts."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:512, 0:512]
    out = []
    for i in range(n):
        blocks = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((512, 512)))
        base = 0.5 * blocks + 0.25 * np.stack([x, y, (x + y) / 2], -1) * 255 / 512
        buf = io.BytesIO()
        Image.fromarray(np.clip(base + rng.normal(0, 12, (512, 512, 3)), 0, 255).astype(np.uint8)).save(
            buf, "JPEG", quality=95)
        simple = " ".join(rng.choice(WORDS, size=int(rng.integers(6, 16))))
        out.append({"__key__": f"{i:016x}", "jpg": buf.getvalue(),
                    "json": {"simple_prompt": simple, "complex_prompt": ", ".join(rng.choice(WORDS, size=40))}})
    return out


def fresh(samples: list[dict[str, Any]], drop_simple: bool = False) -> list[dict[str, Any]]:
    out = []
    for s in samples:
        meta = dict(s["json"])
        if drop_simple:
            meta.pop("simple_prompt")
        out.append({"__key__": s["__key__"], "jpg": s["jpg"], "json": meta})
    return out


def sync(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Any, torch: Any, device: str) -> float:
    sync(torch, device)
    t0 = time.perf_counter()
    fn()
    sync(torch, device)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- clip_filter


def bench_clip(args: argparse.Namespace, torch: Any, samples: list[dict[str, Any]]) -> float:
    from surd.models.clip import load_clip
    from surd.stages import clip_filter

    arch = "ViT-B-32" if not args.smoke else "tiny"
    clip = load_clip(arch, "", device=args.device, dtype=args.dtype)  # "" = random weights, no download
    pixels = torch.stack([clip.preprocess(Image.open(io.BytesIO(s["jpg"])).convert("RGB")) for s in samples])
    tokens = clip.tokenizer([s["json"]["simple_prompt"] for s in samples])
    ratios = []
    for bs in args.clip_batches:
        cfg = clip_filter.Config(model=arch, pretrained="", batch_size=bs, decode_threads=args.decode_threads,
                                 device=args.device, dtype=args.dtype)
        list(clip_filter.run(fresh(samples[:bs]), cfg))  # warm-up

        def model_only(bs: int = bs) -> None:
            with torch.inference_mode():
                for i in range(0, len(samples), bs):
                    clip.model.encode_image(pixels[i:i + bs].to(clip.device, clip.dtype))
                    clip.model.encode_text(tokens[i:i + bs].to(clip.device))
                    clip.model.encode_text(tokens[i:i + bs].to(clip.device))

        stage_s = timed(lambda cfg=cfg: list(clip_filter.run(fresh(samples), cfg)), torch, args.device)
        model_s = timed(model_only, torch, args.device)
        ratios.append(stage_s / model_s)
        print(f"clip_filter  batch {bs:4d}: {len(samples) / stage_s:8.1f} images/s "
              f"(model alone {len(samples) / model_s:8.1f})   anchor {CLIP_ANCHOR}", flush=True)
    return min(ratios)


# ---------------------------------------------------------------------------------------------- caption


def blip_base(torch: Any, device: str, dtype: Any, smoke: bool) -> Any:
    """A random BlipForConditionalGeneration of the base size with a BERT-sized WordPiece tokenizer."""
    tf = require("transformers", "caption")
    from surd.models.blip import Captioner, tiny_vocab

    vocab = tiny_vocab()
    size = 30524 if not smoke else len(vocab)
    vocab += [f"[unused{i}]" for i in range(size - len(vocab))]
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "vocab.txt").write_text("\n".join(vocab) + "\n")
        tok = tf.BertTokenizer(str(Path(d) / "vocab.txt"), do_lower_case=True, bos_token="[DEC]", model_max_length=512)
        tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    side = 384 if not smoke else 32
    processor = tf.BlipProcessor(image_processor=tf.BlipImageProcessor(size={"height": side, "width": side}),
                                 tokenizer=tok)
    text = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                sep_token_id=tok.sep_token_id, eos_token_id=tok.sep_token_id)
    vision: dict[str, Any] = {}
    if smoke:
        small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        vision = dict(small, image_size=32, patch_size=8)
        text.update(small, encoder_hidden_size=32, max_position_embeddings=64)
    model = tf.BlipForConditionalGeneration(tf.BlipConfig(vision_config=vision, text_config=text))
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return Captioner(model, processor, torch.device(device), dtype, "random:blip-base", "random")


def bench_caption(args: argparse.Namespace, torch: Any, samples: list[dict[str, Any]]) -> float:
    from surd.models import blip, resolve_dtype
    from surd.stages import caption

    spec = "tiny:blip-base"  # a BLIP built in code (random weights at the real size), held in the model cache
    dtype = resolve_dtype(args.dtype, torch.device(args.device))
    cap = blip._MODELS.get((spec, None, None, args.device, args.dtype),
                           lambda: blip_base(torch, args.device, dtype, args.smoke))
    n = min(len(samples), args.caption_n)
    pixels = torch.stack([cap.processor.image_processor(images=Image.open(io.BytesIO(s["jpg"])).convert("RGB"),
                                                        return_tensors="pt")["pixel_values"][0] for s in samples[:n]])
    ratios = []
    for bs in args.caption_batches:
        cfg = caption.Config(model=spec, batch_size=bs, decode_threads=args.decode_threads, device=args.device,
                             dtype=args.dtype)
        list(caption.run(fresh(samples[:bs], drop_simple=True), cfg))  # warm-up

        def model_only(bs: int = bs, cfg: Any = cfg) -> None:
            for i in range(0, n, bs):
                caption.generate(cap, cfg, pixels[i:i + bs])

        stage_s = timed(lambda cfg=cfg: list(caption.run(fresh(samples[:n], drop_simple=True), cfg)), torch,
                        args.device)
        model_s = timed(model_only, torch, args.device)
        ratios.append(stage_s / model_s)
        print(f"caption      batch {bs:4d}: {n / stage_s:8.1f} images/s (model alone {n / model_s:8.1f}), "
              f"BLIP base, beam 3, 10-30 tokens", flush=True)
    return min(ratios)


# ---------------------------------------------------------------------------------------------- embed


def llama_blocks(torch: Any, size: str, layer: int, device: str, dtype: Any, smoke: bool) -> Any:
    """LLaMA base model of the given size cut after `layer` blocks, random N(0, 0.02) weights made on the device."""
    tf = require("transformers", "llm")
    from surd.models.llm import tiny_tokenizer, wrap_model

    hidden, inter, blocks, heads = LLAMA_SHAPES[size] if not smoke else (64, 128, 4, 4)
    layer = blocks if layer == -1 else layer
    cfg = tf.LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layer,
                         num_attention_heads=heads, vocab_size=32000, max_position_embeddings=2048)
    with torch.device("meta"):
        model = tf.LlamaModel(cfg)
    model = model.to_empty(device=device).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02) if p.dim() >= 2 else p.fill_(1.0)  # norms at 1, like a fresh LLaMA
    model.eval().requires_grad_(False)
    return wrap_model(model, tiny_tokenizer(), label=f"random:llama-{size}", layer=layer, revision="random",
                      n_layers=blocks)


def bench_embed(args: argparse.Namespace, torch: Any, samples: list[dict[str, Any]]) -> float:
    from surd.models import resolve_dtype
    from surd.stages import embed

    spec, dtype = f"random:llama-{args.llm}", resolve_dtype(args.dtype, torch.device(args.device))
    key = (spec, args.layer, args.device, args.dtype, None, None)
    llm = embed._MODELS.get(key, lambda: llama_blocks(torch, args.llm, args.layer, args.device, dtype, args.smoke))
    prompts = [s["json"]["simple_prompt"] for s in samples]
    ratios = []
    for bs in args.embed_batches:
        cfg = embed.Config(llm=spec, layer=args.layer, batch_size=bs, device=args.device, dtype=args.dtype)
        list(embed.run(fresh(samples[:bs]), cfg))  # warm-up

        def model_only(bs: int = bs) -> None:
            with torch.inference_mode():
                for i in range(0, len(prompts), bs):
                    enc = llm.tokenizer(prompts[i:i + bs], return_tensors="pt", padding=True).to(llm.input_device)
                    out = llm.model(**enc).last_hidden_state
                    (out * enc.attention_mask[..., None]).sum(1)

        stage_s = timed(lambda cfg=cfg: list(embed.run(fresh(samples), cfg)), torch, args.device)
        model_s = timed(model_only, torch, args.device)
        ratios.append(stage_s / model_s)
        print(f"embed        batch {bs:4d}: {len(prompts) / stage_s:8.1f} prompts/s (model alone "
              f"{len(prompts) / model_s:8.1f}), LLaMA-{args.llm} shape, layer {llm.layer}, {llm.dim}-d", flush=True)
    return min(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--n", type=int, default=2048, help="samples for clip_filter and embed")
    ap.add_argument("--caption-n", type=int, default=256)
    ap.add_argument("--clip-batches", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--caption-batches", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--embed-batches", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--llm", choices=sorted(LLAMA_SHAPES), default="7b")
    ap.add_argument("--layer", type=int, default=-1, help="1-based block (-1 = last)")
    ap.add_argument("--decode-threads", type=int, default=max(2, (os.cpu_count() or 4) - 2))
    ap.add_argument("--stages", nargs="+", default=["clip_filter", "caption", "embed"])
    ap.add_argument("--smoke", action="store_true", help="small models and few samples (a code-path check)")
    args = ap.parse_args()
    torch = require("torch", "caption")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing measured (run this on a machine with an NVIDIA GPU, or pass --device cpu "
              "--smoke to check the code path)")
        return
    if args.smoke:
        args.n, args.caption_n = min(args.n, 16), min(args.caption_n, 8)
        args.clip_batches, args.caption_batches, args.embed_batches = [8], [4], [8]
    samples = make_samples(args.n)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    print(f"device {name}, {args.dtype}, {args.n} samples, {args.decode_threads} decode threads")
    runs = {"clip_filter": bench_clip, "caption": bench_caption, "embed": bench_embed}
    ratios = {stage: runs[stage](args, torch, samples) for stage in args.stages}
    print("ratio " + " ".join(f"{k}={v:.3f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
