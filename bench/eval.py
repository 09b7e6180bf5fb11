"""What `surd eval`'s metrics cost on top of generating the images (target: < 20% on CPU with tiny models).

The same evaluation — tiny SD, one untrained non-zero adapter, the bundled prompt set, `--steps` denoising steps,
every metric on tiny stand-ins (CLIP, BLIP VQA, BRISQUE, MUSIQ, CLIP-IQA) — is timed two ways, interleaved
``--repeats`` times into fresh folders: generation alone (``generate_images``), and the whole evaluation
(``run_eval``: generation, scoring, results, CSV, charts, report). Scoring models are loaded once before timing
(their one-off load is printed separately, it does not grow with the number of images).

    python bench/eval.py              # 45 prompts x 1 image x 2 models, 20 steps
    python bench/eval.py --quick      # 15 prompts, 10 steps (under ~2 minutes on 2 cores)

The last line is ``ratio eval/generation=<r>`` (1.20 = metrics and report add 20%).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from surd.adapter.config import AdapterConfig  # noqa: E402
from surd.adapter.model import SURAdapter  # noqa: E402
from surd.eval.config import EvalConfig, MetricModels  # noqa: E402
from surd.eval.evaluate import run_eval  # noqa: E402
from surd.eval.generate import generate_images  # noqa: E402
from surd.eval.prompts import load_prompt_set  # noqa: E402
from surd.eval.score import Scorer  # noqa: E402


def prompt_file(tmp: Path, n: int) -> Path:
    """The first n bundled prompts, spread over the three types."""
    import yaml

    doc = yaml.safe_load(Path(load_prompt_set("paper").path).read_text())
    by_type: dict[str, list] = {}
    for p in doc["prompts"]:
        by_type.setdefault(p["type"], []).append(p)
    per = max(1, n // len(by_type))
    doc["prompts"] = [p for ps in by_type.values() for p in ps[:per]]
    path = tmp / "prompts.json"
    path.write_text(json.dumps(doc))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=45)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--images-per-prompt", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.steps = 15, 10
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tmp = Path(tempfile.mkdtemp(prefix="surd-bench-eval-"))
    try:
        torch.manual_seed(0)
        adapter = SURAdapter(AdapterConfig(text_dim=32, llm_dim=16, ff_dim=64, eta=0.5))
        with torch.no_grad():
            adapter.g.weight.normal_(0, 0.5)
        adapter.save_pretrained(tmp / "adapter")
        prompts_path = prompt_file(tmp, args.prompts)
        prompts = load_prompt_set(str(prompts_path))

        def cfg(out: str) -> EvalConfig:
            return EvalConfig(base="tiny", adapters=(str(tmp / "adapter"),), out=str(tmp / out),
                              prompts=str(prompts_path), images_per_prompt=args.images_per_prompt,
                              steps=args.steps, models=MetricModels.tiny(), device="cpu", progress=False)

        t0 = time.perf_counter()
        scorer = Scorer(cfg("warm"))
        scorer.clip(), scorer.vqa(), [scorer.quality(m) for m in ("brisque", "musiq", "clip_iqa")]
        load_s = time.perf_counter() - t0
        n_images = 2 * len(prompts.prompts) * args.images_per_prompt
        generate_images(cfg("warmup"), prompts)  # imports, first-call kernels
        gen_times, runs = [], []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            generate_images(cfg(f"gen{r}"), prompts)
            gen_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            timing = run_eval(cfg(f"eval{r}"))["timing"]
            runs.append((time.perf_counter() - t0, timing))
        gen = min(gen_times)
        full, timing = min(runs, key=lambda x: x[0])
        ms = lambda s: f"{1000 * s / n_images:.1f} ms/image"  # noqa: E731
        print(f"{n_images} images ({len(prompts.prompts)} prompts x {args.images_per_prompt} x 2 models), "
              f"{args.steps} steps, tiny SD + tiny metric models on CPU, best of {args.repeats}")
        print(f"scoring models loaded once in {load_s:.1f}s (not counted below)")
        print(f"generation alone: {ms(gen)}")
        rest = full - timing["seconds"] - timing["score_seconds"]
        print(f"whole eval:       {ms(full)} = generation {ms(timing['seconds'])} + scoring "
              f"{ms(timing['score_seconds'])} + results/report {ms(rest)}; within this run the metrics and report "
              f"add {100 * (full / timing['seconds'] - 1):.1f}% to generation")
        print(f"ratio eval/generation={full / gen:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
