"""The user preference study (paper §5.1: raters pick the better image of a pair), blind and keyboard driven.

``export_study(eval_dir, site_dir)`` writes a static page (the review site's machinery: ``sitekit.js``, its style,
served by the review server or opened from ``file://``) with baseline/adapter pairs whose left/right order is
randomised, and images renamed so nothing in the page tells the models apart. Which side is which model is written
to ``EVAL_DIR/study_key.json``, never into the site. ``import_answers(eval_dir, files)`` validates every answer file
against the key, then turns votes into preference percentages with a two-sided binomial test and refreshes the
report. Answer format (the page's Export, and ``SITE/answers/<rater>.json`` when served)::

    {"format": "surd-eval-study-answers", "version": 1, "site_id": "…", "rater": "name",
     "answers": {"<pair id>": {"choice": "left" | "right" | "skip", "ms": 1234}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import string
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from surd.eval.config import BASELINE
from surd.eval.evaluate import STUDY_RESULTS_NAME, load_config, write_outputs
from surd.eval.generate import image_path, seeds
from surd.eval.prompts import load_prompt_set
from surd.eval.stats import preference
from surd.files import write_json_atomic
from surd.review.exporter import _js
from surd.review.records import DecisionError
from surd.review.server import ServeConfig, SiteState

ANSWERS_FORMAT = "surd-eval-study-answers"
SERVER_FORMAT = ANSWERS_FORMAT + "-set"  # GET /api/decisions of a served study: every rater's answers
SITE_FORMAT = "surd-eval-study-site"
KEY_FORMAT = "surd-eval-study-key"
KEY_NAME = "study_key.json"
CHOICES = ("left", "right", "skip")
STATIC = Path(__file__).parent / "static"
REVIEW_STATIC = Path(__file__).parents[1] / "review" / "static"
_RATER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


# The study's parts of the rating page (rating.html): two images side by side, the better one picked.
HTML = {
    "title": "surd preference study", "what": "study", "items": "pairs",
    "intro": """Each screen shows two images made for the same prompt. Pick the one that is <b>better</b>: it follows the
  prompt and looks good. The images are in random order; nothing tells which model made which.""",
    "sides": """\
    <figure id="left" class="side"><img id="img-left" alt="left image"><figcaption>Left <kbd>←</kbd> / <kbd>1</kbd></figcaption></figure>
    <figure id="right" class="side"><img id="img-right" alt="right image"><figcaption>Right <kbd>→</kbd> / <kbd>2</kbd></figcaption></figure>""",
    "buttons": """\
    <button id="pick-left" type="button">Left is better</button>
    <button id="skip" type="button">Can't tell (S)</button>
    <button id="pick-right" type="button">Right is better</button>""",
    "keys": "<kbd>←</kbd>/<kbd>1</kbd> left · <kbd>→</kbd>/<kbd>2</kbd> right · <kbd>S</kbd> can't tell · <kbd>U</kbd> back",
}


@dataclass(frozen=True)
class StudyConfig:
    """Which pairs go into a study: at most ``pairs`` (a random sample; None = all), sides randomised by ``seed``."""

    pairs: int | None = None
    seed: int = 0
    adapters: tuple[str, ...] = ()  # empty = every adapter of the evaluation

    def __post_init__(self) -> None:
        if self.pairs is not None and self.pairs < 1:
            raise ValueError(f"pairs must be at least 1 (or omitted for all), got {self.pairs}")


def _hash(*parts: Any) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()


def export_study(eval_dir: str | os.PathLike, site_dir: str | os.PathLike, cfg: StudyConfig | None = None) -> dict:
    """Write the study page for an evaluation; returns {"pairs": n, "site": path, "key": path}."""
    cfg = cfg or StudyConfig()
    ecfg = load_config(eval_dir)
    site = new_site(site_dir)
    names = list(ecfg.model_dirs(check=False))
    adapters = list(cfg.adapters or names)
    unknown = sorted(set(adapters) - set(names))
    if unknown:
        raise ValueError(f"unknown adapter(s) {unknown}; this evaluation has {', '.join(names)}")
    prompts = load_prompt_set(ecfg.prompts)
    candidates = [(a, p, s) for a in adapters for p in prompts.prompts for s in seeds(ecfg)
                  if image_path(eval_dir, BASELINE, p.id, s).is_file() and image_path(eval_dir, a, p.id, s).is_file()]
    if not candidates:
        raise FileNotFoundError(f"{eval_dir} has no generated image pairs: run `surd eval` first")
    rng, candidates = draw(candidates, cfg.pairs, cfg.seed)
    site_id = _hash(Path(eval_dir).resolve(), cfg, len(candidates))[:16]
    (site / "images").mkdir(parents=True)
    (site / "data").mkdir()
    pairs, key = [], {}
    for a, p, s in candidates:
        pid = _hash(site_id, a, p.id, s)[:12]
        left, right = (BASELINE, a) if rng.random() < 0.5 else (a, BASELINE)
        files = {}
        for side, model in (("left", left), ("right", right)):
            files[side] = f"images/{_hash(site_id, pid, side)[:16]}.png"  # names say nothing about the model
            shutil.copyfile(image_path(eval_dir, model, p.id, s), site / files[side])
        pairs.append({"id": pid, "prompt": p.text, **files})
        key[pid] = {"adapter": a, "left": left, "right": right, "prompt_id": p.id, "type": p.type, "seed": s}
    data = {"version": 1, "title": f"{prompts.name}, {len(pairs)} pairs", "site_id": site_id, "pairs": pairs}
    key_path = write_page(site, "study", HTML, data, [p["id"] for p in pairs], Path(eval_dir) / KEY_NAME,
                          (SITE_FORMAT, KEY_FORMAT), {"pairs": key})
    return {"pairs": len(pairs), "site": site, "key": key_path}


def new_site(site_dir: str | os.PathLike) -> Path:
    """The folder a new rating page is written to: it must not exist or be empty (a used one may hold answers)."""
    site = Path(site_dir)
    if site.exists() and any(site.iterdir()):
        raise FileExistsError(f"{site} is not empty (it may hold answers); choose a new --out folder")
    return site


def draw(candidates: list, n: int | None, seed: int) -> tuple[random.Random, list]:
    """At most `n` of `candidates` (a random sample; None = all), shuffled by `seed`, and the generator that drew
    them (for the page's further random choices)."""
    rng = random.Random(seed)
    if n is not None and n < len(candidates):
        candidates = rng.sample(candidates, n)
    rng.shuffle(candidates)
    return rng, candidates


def write_page(site: Path, page: str, html: dict[str, str], data: dict, ids: list[str], key_path: Path,
               formats: tuple[str, str], key: dict) -> Path:
    """The files every rating page of an evaluation shares: index.html (rating.html filled with the page's `html`
    parts: title, intro, sides, buttons, items, keys, what), the controller rating.js and the page's `page`.js that
    configures it, the styles, sitekit.js, its data (``window.SURD_<PAGE>``), site.json (what the server accepts)
    and the key kept beside the evaluation (never in the raters' hands). Returns the key's path."""
    for name, src in ((f"{page}.js", STATIC), ("rating.js", STATIC), ("study.css", STATIC),
                      ("sitekit.js", REVIEW_STATIC), ("style.css", REVIEW_STATIC)):
        shutil.copyfile(src / name, site / name)
    template = string.Template((STATIC / "rating.html").read_text(encoding="utf-8"))
    (site / "index.html").write_text(template.substitute(html, page=page), encoding="utf-8")
    (site / "data" / f"{page}.js").write_text(f"window.SURD_{page.upper()} = {_js(data)};\n", encoding="utf-8")
    site_format, key_format = formats
    write_json_atomic(site / "site.json", {"format": site_format, "version": 1, "site_id": data["site_id"],
                                           "keys": ids})
    write_json_atomic(key_path, {"format": key_format, "version": 1, "site_id": data["site_id"],
                                 "site": str(site.resolve()), **key})
    return key_path


def read_page(root: Path, fmt: str, page: str) -> tuple[str, set[str]]:
    """(site id, item ids) of a rating page written by `write_page`; the error says how to make one."""
    site = root / "site.json"
    if not site.exists():
        raise FileNotFoundError(f"{root} is not a {page} page (no site.json): make one with "
                                f"`surd eval {page} export EVAL_DIR`")
    info = json.loads(site.read_text(encoding="utf-8"))
    if info.get("format") != fmt:
        raise ValueError(f"{root} is not a {page} page (site.json format {info.get('format')!r}); a review site is "
                         "served by `surd review serve`")
    return info["site_id"], set(info["keys"])


def answer_rater(doc: Any, source: str, site_id: str, fmt: str, what: str, problems: list[str]) -> str:
    """The rater of one answer document of format `fmt` for page `site_id` ("" and a 'source: problem' line in
    *problems* when it is not one)."""
    if not isinstance(doc, dict) or doc.get("format") != fmt or doc.get("version") != 1:
        problems.append(f"{source}: not a surd {what} answer file (format {fmt}, version 1)")
        return ""
    if doc.get("site_id") != site_id:
        problems.append(f"{source}: answers a different {what} page (site {doc.get('site_id')!r}, expected "
                        f"{site_id!r})")
        return ""
    rater = doc.get("rater")
    if not isinstance(rater, str) or not _RATER.match(rater):
        problems.append(f"{source}: rater must be a name of letters, digits, space, '.', '_' or '-', got {rater!r}")
        return ""
    return rater


@dataclass(frozen=True)
class AnswerForm:
    """What the answer documents of one kind of rating page hold, and how its messages name things: the format,
    the page ("study"), the answer field ("choice") and its values, an item ("pair") and where items are ("in this
    study")."""

    fmt: str
    page: str
    field: str
    values: tuple[str, ...]
    item: str
    where: str
    id_name: str

    def parse(self, doc: Any, source: str, site_id: str, keys: set[str], problems: list[str]) -> tuple[str, dict]:
        """(rater, {item id: answer}) of one answer document; appends 'source: problem' lines to *problems*."""
        rater = answer_rater(doc, source, site_id, self.fmt, self.page, problems)
        if not rater:
            return "", {}
        answers = doc.get("answers")
        if not isinstance(answers, dict):
            problems.append(f"{source}: answers must map {self.id_name} → {{{self.field}}}")
            return rater, {}
        allowed = ", ".join(self.values[:-1]) + f" or {self.values[-1]}"
        out = {}
        for iid, a in answers.items():
            value = a.get(self.field) if isinstance(a, dict) else None
            if iid not in keys:
                problems.append(f"{source}: {self.item} {iid!r} is not {self.where}")
            elif value not in self.values:
                problems.append(f"{source}: {self.item} {iid!r}: {self.field} must be {allowed}, got {value!r}")
            else:
                out[iid] = value
        return rater, out

    def read(self, path: Path, site_id: str, keys: set[str], problems: list[str]) -> tuple[str, dict] | None:
        """`parse` of one answer file; None (and a problem) when the file cannot be read as JSON."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            problems.append(f"{path}: cannot read JSON ({e})")
            return None
        return self.parse(doc, str(path), site_id, keys, problems)


def read_key(eval_dir: str | os.PathLike, name: str, page: str) -> dict[str, Any]:
    """The key a rating page's export kept beside the evaluation (`name`); the error says to export `page` first."""
    key_path = Path(eval_dir) / name
    if not key_path.exists():
        raise FileNotFoundError(f"{eval_dir} has no {name}: export {page} from this folder first")
    return json.loads(key_path.read_text(encoding="utf-8"))


FORM = AnswerForm(ANSWERS_FORMAT, "study", "choice", CHOICES, "pair", "in this study", "pair id")


class RatingState(SiteState):
    """A served rating page: the review server's access checks, the page's site.json (`read_page`), answer
    documents checked by the subclass's `FORM`; the subclass stores them."""

    SITE_FORMAT: ClassVar[str]
    FORM: ClassVar[AnswerForm]

    def __init__(self, site_dir: str | os.PathLike, cfg: ServeConfig):
        super().__init__(site_dir, cfg)
        self.site_id, self.keys = read_page(self.root, self.SITE_FORMAT, self.FORM.page)
        self.lock = threading.Lock()

    def checked(self, payload: Any) -> tuple[str, dict[str, str]]:
        """(rater, {item id: answer}) of a posted answer document; a DecisionError lists every problem."""
        problems: list[str] = []
        rater, answers = self.FORM.parse(payload, "request", self.site_id, self.keys, problems)
        if problems:
            raise DecisionError(problems)
        return rater, answers


class StudyState(RatingState):
    """A served study (the review server with its access checks, this answer store): one answers file per rater.

    ``GET /api/decisions`` gives every rater's answers (the page picks its rater's), ``POST`` one rater's whole
    answer document, ``GET /api/status`` how many pairs each rater answered.
    """

    SITE_FORMAT = SITE_FORMAT
    FORM = FORM

    def _raters(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((self.root / "answers").glob("*.json"))]
        return {d["rater"]: d for d in docs}

    def document(self, since: int = 0) -> dict[str, Any]:
        return {"format": SERVER_FORMAT, "version": 1, "site_id": self.site_id, "raters": self._raters()}

    def status(self) -> dict[str, Any]:
        raters = [{"name": r, "answered": len(d.get("answers") or {})} for r, d in sorted(self._raters().items())]
        return {"n": len(self.keys), "raters": raters}

    def write(self, payload: Any) -> dict[str, Any]:
        rater, answers = self.checked(payload)
        (self.root / "answers").mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", rater) + "-" + _hash(rater)[:6] + ".json"
        with self.lock:
            write_json_atomic(self.root / "answers" / name, payload)
        return {"saved": len(answers)}


def _answer_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted((p / "answers").glob("*.json")) if p.is_dir() else [p])
    return out


def import_answers(eval_dir: str | os.PathLike, paths: list[str | os.PathLike]) -> dict[str, Any]:
    """Validate every answer file (or served study folder), then write the preference results and refresh the
    report; nothing is written if any file is wrong."""
    key = read_key(eval_dir, KEY_NAME, "the study")
    problems: list[str] = []
    by_rater: dict[str, dict[str, str]] = {}
    files = _answer_files([Path(p) for p in paths])
    if not files:
        problems.append("no answer files given (and no answers/ in the given study folders)")
    for f in files:
        read = FORM.read(f, key["site_id"], set(key["pairs"]), problems)
        if read is None:
            continue
        rater, answers = read
        if rater in by_rater:
            problems.append(f"{f}: rater {rater!r} appears in more than one file; keep one file per rater")
        by_rater[rater] = answers
    if problems:
        raise DecisionError(problems)
    results = tally(key["pairs"], by_rater, preference)
    results["files"] = [str(f) for f in files]
    write_json_atomic(Path(eval_dir) / STUDY_RESULTS_NAME, results)
    ecfg = load_config(eval_dir)
    write_outputs(ecfg, load_prompt_set(ecfg.prompts))
    return results


def tally(pairs: dict[str, dict[str, Any]], by_rater: dict[str, dict[str, str]], test: Any) -> dict[str, Any]:
    """Votes per adapter (adapter chosen = win, baseline chosen = loss, skip = neither), overall and per type."""
    counts: dict[str, dict[str, list[int]]] = {}
    answers = 0
    for answers_of in by_rater.values():
        for pid, choice in answers_of.items():
            if choice == "skip":
                continue
            info = pairs[pid]
            won = info[choice] != BASELINE
            for group in ("all", info["type"]):
                wl = counts.setdefault(info["adapter"], {}).setdefault(group, [0, 0])
                wl[0 if won else 1] += 1
            answers += 1
    adapters = {a: {**test(*groups["all"]), "by_type": {t: test(*wl) for t, wl in groups.items() if t != "all"}}
                for a, groups in counts.items()}
    return {"raters": len(by_rater), "answers": answers, "adapters": adapters}
