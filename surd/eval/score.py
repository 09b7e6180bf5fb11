"""Score every evaluation image once: CLIP cosine to its prompt, BLIP VQA answers to the prompt's questions, the
detector judge's verdict on counting and colour prompts (`detect`), and BRISQUE / MUSIQ / CLIP-IQA. Rows are appended to ``OUT/scores/<model>.<metrics key>.jsonl`` batch by batch, so an
interrupted run resumes, and changing a scoring model (a new key) rescores instead of mixing models."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from surd.deps import require
from surd.eval.answers import is_correct, normalise
from surd.eval.config import EvalConfig
from surd.eval.detect import ColourClassifier, DetectSettings, judge
from surd.eval.generate import Job, _batches, all_jobs, file_digest, image_path
from surd.eval.iqa import load_quality
from surd.eval.prompts import EvalPrompt, PromptSet
from surd.eval.stats import clipscore
from surd.models import resolve_device
from surd.models.clip import encode_text, load_clip
from surd.models.detector import load_detector
from surd.models.vqa import load_vqa


def scores_path(out: str | Path, model: str, key: str) -> Path:
    return Path(out) / "scores" / f"{model}.{key}.jsonl"


def read_scores(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """(prompt id, seed) → row; a line cut short by a killed run is skipped (that image is scored again)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            rows[(row["prompt_id"], int(row["seed"]))] = row
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return rows


class Scorer:
    """The scoring models of one evaluation, loaded on first use."""

    def __init__(self, cfg: EvalConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self._clip: Any = None
        self._vqa: Any = None
        self._detector: Any = None
        self._colours: ColourClassifier | None = None
        self._quality: dict[str, Any] = {}

    def clip(self) -> Any:
        if self._clip is None:
            m = self.cfg.models
            self._clip = load_clip(m.clip, m.clip_pretrained, device=str(self.device), dtype="fp32")
        return self._clip

    def vqa(self) -> Any:
        if self._vqa is None:
            self._vqa = load_vqa(self.cfg.models.vqa, device=str(self.device), dtype="fp32")
        return self._vqa

    def detector(self) -> tuple[Any, ColourClassifier]:
        if self._detector is None:
            self._detector = load_detector(self.cfg.models.detector, device=str(self.device))
            self._colours = ColourClassifier(self.clip())
        assert self._colours is not None
        return self._detector, self._colours

    def detect_rows(self, images: list[Any], prompts: list[EvalPrompt]) -> list[dict[str, Any] | None]:
        """The detector judge's verdict per image (None for prompts it does not judge)."""
        settings = DetectSettings(threshold=self.cfg.models.detect_threshold)
        detector, colours = self.detector()
        return [judge(im, p, detector, colours, settings) for im, p in zip(images, prompts)]

    def quality(self, name: str) -> Any:
        if name not in self._quality:
            self._quality[name] = load_quality(name, getattr(self.cfg.models, name), str(self.device))
        return self._quality[name]

    def clip_cosines(self, images: list[Any], texts: list[str]) -> tuple[list[float], float]:
        """cos(image_i, text_i) for each pair, and CLIP's logit scale (for the paired softmax)."""
        torch = require("torch", "eval")
        c = self.clip()
        x = torch.stack([c.preprocess(im) for im in images]).to(c.device, c.dtype)
        with torch.inference_mode():
            img = c.model.encode_image(x, normalize=True).float()  # [N, e]
            txt = encode_text(c.model, c.tokenizer(texts).to(c.device)).float()  # [N, e]
            scale = float(c.model.logit_scale.exp())
        return [float(v) for v in (img * txt).sum(-1).cpu()], scale

    def vqa_rows(self, images: list[Any], prompts: list[EvalPrompt]) -> list[list[dict[str, Any]]]:
        pairs = [(i, q) for i, p in enumerate(prompts) for q in p.questions]
        answers = self.vqa().answer([images[i] for i, _ in pairs], [q.question for _, q in pairs])
        out: list[list[dict[str, Any]]] = [[] for _ in prompts]
        for (i, q), a in zip(pairs, answers):
            out[i].append({"question": q.question, "expected": q.answer, "answer": a,
                           "normalised": normalise(a, q.answer), "correct": is_correct(a, q.answer)})
        return out

    def __call__(self, images: list[Any], prompts: list[EvalPrompt]) -> list[dict[str, Any]]:
        """One row of scores per image (PIL) of the given prompts."""
        torch = require("torch", "eval")
        rows: list[dict[str, Any]] = [{} for _ in images]
        metrics = self.cfg.metrics
        if "clip" in metrics:
            cos, scale = self.clip_cosines(images, [p.text for p in prompts])
            for r, c in zip(rows, cos):
                r.update(clip_cos=c, clipscore=clipscore(c), logit_scale=scale)
        if "vqa" in metrics:
            for r, qa in zip(rows, self.vqa_rows(images, prompts)):
                r.update(vqa=qa, correct=all(q["correct"] for q in qa))
        if "detect" in metrics:
            for r, d in zip(rows, self.detect_rows(images, prompts)):
                if d is not None:
                    r["detect"] = d
        quality = [m for m in ("brisque", "musiq", "clip_iqa") if m in metrics]
        if quality:
            arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])  # [N, H, W, 3]
            x = torch.from_numpy(arr).permute(0, 3, 1, 2).to(self.device)  # [N, 3, H, W] in [0, 1]
            for name in quality:
                for r, v in zip(rows, self.quality(name).score(x)):
                    r[name] = v
        return rows


def _stale(row: dict[str, Any] | None, out: str, job: Job) -> bool:
    """No row yet, or one computed from other bytes (the image was generated again since)."""
    return row is None or row.get("image") != file_digest(image_path(out, job.model, job.prompt.id, job.seed))


def score_images(cfg: EvalConfig, prompts: PromptSet, scorer: Scorer | None = None) -> dict[str, Any]:
    """Score every image that has no row under the current metrics key; returns {"scored": n, "seconds": s}."""
    key = cfg.metrics_key()
    jobs = all_jobs(cfg, prompts)
    done = load_all_scores(cfg, list(dict.fromkeys(j.model for j in jobs)))
    todo: list[Job] = [j for j in jobs if _stale(done[j.model].get((j.prompt.id, j.seed)), cfg.out, j)]
    if not todo:
        return {"scored": 0, "seconds": 0.0}
    t0 = time.perf_counter()
    scorer = scorer or Scorer(cfg)
    with tqdm(total=len(todo), desc="score", unit="img", disable=not cfg.progress) as bar:
        for model in dict.fromkeys(j.model for j in todo):
            path = scores_path(cfg.out, model, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            for batch in _batches([j for j in todo if j.model == model], cfg.batch_size):
                images, digests = [], []
                for j in batch:
                    file = image_path(cfg.out, j.model, j.prompt.id, j.seed)
                    digests.append(file_digest(file))
                    with Image.open(file) as im:
                        images.append(im.convert("RGB"))
                rows = scorer(images, [j.prompt for j in batch])
                with open(path, "a", encoding="utf-8") as f:  # a later row for the same image wins on reading
                    for j, digest, row in zip(batch, digests, rows):
                        f.write(json.dumps({"prompt_id": j.prompt.id, "seed": j.seed, "image": digest, **row}) + "\n")
                bar.update(len(batch))
    return {"scored": len(todo), "seconds": time.perf_counter() - t0}


def load_all_scores(cfg: EvalConfig, models: list[str]) -> dict[str, dict[tuple[str, int], dict[str, Any]]]:
    """model → (prompt id, seed) → scores, under the current metrics key."""
    key = cfg.metrics_key()
    return {m: read_scores(scores_path(cfg.out, m, key)) for m in models}
