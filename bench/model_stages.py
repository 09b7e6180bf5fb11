"""Overhead of the model stages over their models: stage wall time / pure model-forward time (target <= 1.15).

For caption (a mid-size random BLIP: ViT 384-wide x 6 layers at 224 px, BERT 384-wide x 4 layers; beam 3, 10-30
tokens) and clip_filter (open_clip ViT-B-32 with random weights), N samples of 512x512 JPEG go through the stage's
batching plan, i.e. what ``run()`` does once the model is loaded (decode, preprocess, sort, batch, model, write back
in input order). The baseline times the same model calls alone on the same pre-decoded tensors in the same batches
(for clip_filter, batches of length-sorted prompts, its best case). Both sides are warmed up, run interleaved, and
the best of ``--repeats`` runs is kept.

    python bench/model_stages.py            # N=256 CLIP, N=64 BLIP on CPU (1 decode thread, torch on the rest)
    python bench/model_stages.py --quick    # under ~2 minutes on 2 cores
    python bench/model_stages.py --device cuda --n-clip 2048 --clip-batch 256   # also prints images/s
    python bench/model_stages.py --fused-only  # only the fused vs unfused comparison below
    python bench/model_stages.py --fused-only --fused-images 192 --repeats 3   # on 192 photo-like 512² JPEGs

Fused vs unfused (issue 16): the sample pipeline's model stages (caption -> clip_filter -> safety -> embed, the
longest group `surd run` fuses) run on the output of its ingest + dedup, once stage after stage (`run_stage`, as
``surd run --no-fuse``) and once fused (`run_chain`, as ``surd run``), interleaved, in this process, one worker.
It prints image decodes per image (counted by `surd.batching.decode_rgb`), median wall and CPU seconds of each (decoding
runs in a thread beside the model, so on a machine with a spare core the decode saved shows in CPU more than wall), checks that
both wrote the same shard bytes, and ends with ``fused decodes/image unfused=<d> fused=<d> wall unfused/fused=<r>``.
The sample's models are `tiny` (random, small), so decoding is a larger share of the time than with the paper's.

Without --fused-only the last line is ``ratio caption=<r> clip_filter=<r> fused=<unfused/fused wall>``.
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surd.batching import Done, map_batched  # noqa: E402
from surd.models import resolve_device, resolve_dtype  # noqa: E402

WORDS = "masterpiece best quality portrait of a woman castle forest night city detailed art by greg rutkowski".split()


def make_samples(n: int, size: int = 512, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    y, x = np.mgrid[0:size, 0:size]
    for i in range(n):
        # Gradients + blocks + noise: photo-like JPEG sizes (~100-200 KB at quality 95), so decoding costs what it
        # costs on real 512x512 shards.
        blocks = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((size, size)))
        base = 0.5 * blocks + 0.25 * np.stack([x, y, (x + y) / 2], -1) * 255 / size
        img = Image.fromarray(np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=95)
        complex_ = ", ".join(rng.choice(WORDS, size=int(rng.integers(5, 60))))
        out.append({"__key__": f"{i:016x}", "jpg": buf.getvalue(),
                    "json": {"simple_prompt": " ".join(rng.choice(WORDS, size=6)), "complex_prompt": complex_}})
    return out


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def measure(plan: Any, samples: list[dict], repeats: int, sync) -> tuple[tuple[float, float], tuple[float, float]]:
    """((stage wall, stage CPU), (model-only wall, model-only CPU)) seconds over ``samples`` for a BatchPlan."""
    warm = samples[: plan.batch_size]
    list(map_batched(copy.deepcopy(warm), plan))
    items = [plan.prepare(s) for s in copy.deepcopy(samples)]
    assert not any(isinstance(it, Done) for it in items)
    order = sorted(range(len(samples)), key=lambda i: plan.sort_key(samples[i])) if plan.sort_key else None
    ordered = [items[i] for i in order] if order else items
    batches = [ordered[i : i + plan.batch_size] for i in range(0, len(ordered), plan.batch_size)]
    plan.infer(batches[0])

    def model_only() -> None:
        for b in batches:
            plan.infer(b)
        sync()

    def stage() -> None:
        out = list(map_batched(copy.deepcopy(samples), plan))
        assert len(out) == len(samples) and not any(getattr(o, "reason", "") == "decode_error" for o in out)
        sync()

    # Interleaved so that load from other processes hits both sides alike; the best run of each is kept.
    # CPU seconds are reported too: on a shared machine they move less with other processes' load than wall time.
    forward, wall = (float("inf"),) * 2, (float("inf"),) * 2
    for _ in range(repeats):
        forward = min(forward, timed(model_only))
        wall = min(wall, timed(stage))
    return wall, forward


def clip_plan(args: argparse.Namespace) -> Any:
    import open_clip
    import torch

    from surd.models.clip import ClipModel
    from surd.stages import clip_filter

    dev = resolve_device(args.device)
    dt = resolve_dtype(args.dtype, dev)
    torch.manual_seed(0)
    net = open_clip.create_model("ViT-B-32", pretrained=None).to(dev, dt).eval().requires_grad_(False)
    from open_clip.transform import PreprocessCfg, image_transform_v2

    pp = image_transform_v2(PreprocessCfg(**open_clip.get_model_preprocess_cfg(net)), is_train=False)
    clip = ClipModel(net, pp, open_clip.get_tokenizer("ViT-B-32"), dev, dt, "ViT-B-32", "")
    cfg = clip_filter.Config(model="ViT-B-32", pretrained="", batch_size=args.clip_batch, decode_threads=args.threads)
    return clip_filter.batch_plan(cfg, clip)


def blip_plan(args: argparse.Namespace) -> Any:
    import torch
    import transformers as tf

    from surd.models.blip import Captioner, tiny_processor
    from surd.stages import caption

    dev = resolve_device(args.device)
    dt = resolve_dtype(args.dtype, dev)
    proc = tiny_processor()
    proc.image_processor = tf.BlipImageProcessor(size={"height": 224, "width": 224})
    tok = proc.tokenizer
    vision = dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6,
                  image_size=224, patch_size=16)
    text = dict(vocab_size=len(tok), hidden_size=384, intermediate_size=1536, num_hidden_layers=4,
                num_attention_heads=6, encoder_hidden_size=384, pad_token_id=tok.pad_token_id,
                bos_token_id=tok.bos_token_id, sep_token_id=tok.sep_token_id, eos_token_id=tok.sep_token_id)
    torch.manual_seed(0)
    model = tf.BlipForConditionalGeneration(tf.BlipConfig(vision_config=vision, text_config=text))
    model = model.to(dev, dt).eval().requires_grad_(False)
    cap = Captioner(model, proc, dev, dt, "blip-mid-random", "random")
    cfg = caption.Config(model="blip-mid-random", batch_size=args.blip_batch, decode_threads=args.threads,
                         overwrite=True)
    return caption.batch_plan(cfg, cap)


def _assert_same_shards(a: Path, b: Path, dirnames: list[str]) -> None:
    """Every tar and sidecar of each stage folder is the same bytes in both runs (stats differ in ``seconds``)."""
    for name in dirnames:
        files = sorted(p.name for p in (a / name).iterdir() if p.name.endswith((".tar", ".parquet")))
        assert files and files == sorted(p.name for p in (b / name).iterdir() if p.name.endswith((".tar", ".parquet")))
        for f in files:
            assert (a / name / f).read_bytes() == (b / name / f).read_bytes(), f"{name}/{f} differs"


def fused_vs_unfused(pipeline: Path, repeats: int, n_images: int = 0) -> tuple[float, float, float]:
    """(decodes/image unfused, decodes/image fused, median wall unfused / median wall fused) for the pipeline's
    longest fused group, run on the output of the steps before it; with `n_images`, on that many generated 512²
    JPEGs (ingested from a manifest) instead, as the pipeline's own sample is small."""
    import json
    import statistics

    from surd.batching import decode_count
    from surd.pipeline import fused_groups, load_pipeline, run_pipeline
    from surd.runner import run_chain, run_stage, total_stats

    pipe = load_pipeline(pipeline)
    group = max(fused_groups(pipe), key=len)
    before = pipe.steps[pipe.steps.index(group[0]) - 1]
    with tempfile.TemporaryDirectory(prefix="surd-fused-") as tmp:
        root = Path(tmp)
        if n_images:
            rows = []
            for s in make_samples(n_images, seed=2):
                (root / f"{s['__key__']}.jpg").write_bytes(s["jpg"])
                rows.append(json.dumps({"image": f"{s['__key__']}.jpg", "complex_prompt": s["json"]["complex_prompt"]}))
            (root / "manifest.jsonl").write_text("\n".join(rows))
            input_dir, what = root / "ingested", f"{n_images} generated 512x512 JPEGs"
            run_stage("ingest", {"source": "manifest", "path": str(root / "manifest.jsonl"), "size": 512,
                                 "shard_size": 64}, input_dir, progress=False)
        else:
            run_pipeline(pipeline, root / "prefix", until=before.stage, progress=False, workers=1)
            input_dir, what = root / "prefix" / pipe.name / before.dirname, f"{pipeline.name} (after {before.stage})"
        n = total_stats(input_dir)["kept"]

        def unfused(out: Path) -> None:
            previous = input_dir
            for s in group:
                res = run_stage(s.stage, s.config, out / s.dirname, previous, workers=1, progress=False)
                assert res.ok, res.failed
                previous = out / s.dirname

        def fused(out: Path) -> None:
            results = run_chain([(s.stage, s.config, out / s.dirname) for s in group], input_dir, workers=1,
                                progress=False)
            assert all(r.ok for r in results), [r.failed for r in results]

        runs: dict[str, list[tuple[float, float, int]]] = {"unfused": [], "fused": []}
        for i in range(repeats + 1):  # the first round loads the models (cached per process): not counted
            for name, fn in (("unfused", unfused), ("fused", fused)):
                out = root / f"{name}{i}"
                d0, t0, c0 = decode_count(), time.perf_counter(), time.process_time()
                fn(out)
                wall, cpu, decodes = time.perf_counter() - t0, time.process_time() - c0, decode_count() - d0
                if i:
                    runs[name].append((wall, cpu, decodes))
                if i and name == "fused":
                    _assert_same_shards(root / f"unfused{i}", out, [s.dirname for s in group])
                    shutil.rmtree(root / f"unfused{i}")
                    shutil.rmtree(out)
    (uw, uc, ud), (fw, fc, fd) = ([statistics.median(r[k] for r in runs[name]) for k in range(3)]
                                  for name in ("unfused", "fused"))
    print(f"fused: {' -> '.join(s.stage for s in group)} on {n} images of {what}, median of {repeats}: unfused "
          f"{uw:.2f}s wall, {uc:.2f}s CPU, {ud / n:.2f} decodes/image; fused {fw:.2f}s wall, {fc:.2f}s CPU, "
          f"{fd / n:.2f} decodes/image; every shard and sidecar byte-identical; CPU unfused/fused {uc / fc:.3f}")
    return ud / n, fd / n, uw / fw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--n-clip", type=int, default=256)
    ap.add_argument("--n-blip", type=int, default=64)
    ap.add_argument("--clip-batch", type=int, default=32)
    ap.add_argument("--blip-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="decode threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch intra-op threads; 0 = the cores left after the decode threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--fused-only", action="store_true", help="only the fused vs unfused comparison")
    ap.add_argument("--fused-images", type=int, default=0,
                    help="fused vs unfused on this many generated 512x512 JPEGs instead of the pipeline's sample")
    ap.add_argument("--pipeline", type=Path, default=Path(__file__).resolve().parents[1] / "pipelines" / "sample.yaml",
                    help="pipeline file for the fused vs unfused comparison")
    args = ap.parse_args()
    if args.quick:
        args.n_clip, args.n_blip, args.repeats = 64, 24, 3
    import torch

    # Oversubscribed OpenMP threads (torch's + decoding + other processes) make CPU timings erratic: give torch the
    # cores that decoding does not use, as one would in production.
    torch.set_num_threads(args.torch_threads or max(1, (os.cpu_count() or 2) - args.threads))
    sync = torch.cuda.synchronize if resolve_device(args.device).type == "cuda" else (lambda: None)
    print(f"device={args.device} torch threads={torch.get_num_threads()} decode threads={args.threads}")
    if args.fused_only:
        ud, fd, r = fused_vs_unfused(args.pipeline, args.repeats, args.fused_images)
        print(f"fused decodes/image unfused={ud:.2f} fused={fd:.2f} wall unfused/fused={r:.3f}")
        return
    ratios = {}
    for name, make, n in (("clip_filter", clip_plan, args.n_clip), ("caption", blip_plan, args.n_blip)):
        samples = make_samples(n, seed=1)
        (wall, wall_cpu), (forward, forward_cpu) = measure(make(args), samples, args.repeats, sync)
        ratios[name] = wall / forward
        print(f"{name}: {n} samples, stage {wall:.2f}s ({n / wall:.1f} images/s), model only {forward:.2f}s "
              f"({n / forward:.1f} images/s); CPU seconds stage {wall_cpu:.2f} / model {forward_cpu:.2f} = "
              f"{wall_cpu / forward_cpu:.3f}; wall ratio {ratios[name]:.3f}")
    ud, fd, fused_ratio = fused_vs_unfused(args.pipeline, args.repeats, args.fused_images)
    print(f"ratio caption={ratios['caption']:.3f} clip_filter={ratios['clip_filter']:.3f} fused={fused_ratio:.3f}")


if __name__ == "__main__":
    main()
