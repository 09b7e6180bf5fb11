"""People as the reference judge of semantic accuracy (the paper checked every image by hand, §5.1).

``export_judge(eval_dir, site_dir)`` writes a static page on the review site's machinery (``sitekit.js``, its style;
served by the review server with its access checks, or opened from ``file://``): each image with its prompt and what
to check ("exactly 4 pies", "the car is red"), answered yes / no / can't tell from the keyboard by several raters.
Image names are hashed, so the page does not say which model made an image; which image is which is written to
``EVAL_DIR/judge_key.json``. Served, every answer is appended to the site's journal (``decisions.jsonl``: the review
server's journal, one key per image and rater; yes = accept, no = reject, can't tell = undecided, which stores
nothing for an image the rater never answered: it counts for neither and is asked again) and fsynced before the
reply. ``import_labels(eval_dir, paths)`` validates answer files (the page's Export) and served folders, writes
``EVAL_DIR/judge_labels.json`` and refreshes the report: the human accuracy per type, each automated judge's accuracy
and Cohen's κ against people, and the list of disagreements. Answer format::

    {"format": "surd-eval-judge-answers", "version": 1, "site_id": "…", "rater": "name",
     "answers": {"<item id>": {"answer": "yes" | "no" | "skip"}}}
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.eval.evaluate import JUDGE_LABELS_NAME, load_config, write_outputs
from surd.eval.generate import image_path, model_names, seeds
from surd.eval.prompts import EvalPrompt, load_prompt_set, plural
from surd.eval.study import AnswerForm, RatingState, _hash, draw, new_site, read_key, write_page
from surd.files import write_json_atomic
from surd.review.journal import JOURNAL_NAME, Change, Journal, make_header, read_journal
from surd.review.records import DecisionError
from surd.review.server import ServeConfig

ANSWERS_FORMAT = "surd-eval-judge-answers"
SERVER_FORMAT = ANSWERS_FORMAT + "-set"
SITE_FORMAT = "surd-eval-judge-site"
KEY_FORMAT = "surd-eval-judge-key"
LABELS_FORMAT = "surd-eval-judge-labels"
KEY_NAME = "judge_key.json"
ANSWERS = ("yes", "no", "skip")
TO_JOURNAL = {"yes": "accept", "no": "reject", "skip": "undecided"}
FROM_JOURNAL = {v: k for k, v in TO_JOURNAL.items()}
SEP = "|"  # journal key = item id | rater


# The judging page's parts of the rating page (rating.html): one image, what to check, yes / no / can't tell.
HTML = {
    "title": "surd judging page", "what": "judging", "items": "images",
    "intro": """Each screen shows one generated image, the prompt it was made for, and what to check. Answer <b>yes</b> only if
  the image shows everything listed (the right number of objects, the right colours, the action), <b>no</b> if it
  misses any of it, and <b>can't tell</b> if you cannot judge. Nothing tells which model made an image.""",
    "sides": """\
    <figure class="side"><img id="img" alt="generated image"></figure>
    <div><p>Check:</p><ul id="checks"></ul></div>""",
    "buttons": """\
    <button id="yes" type="button">Yes (Y)</button>
    <button id="no" type="button">No (N)</button>
    <button id="skip" type="button">Can't tell (S)</button>""",
    "keys": "<kbd>Y</kbd>/<kbd>1</kbd> yes · <kbd>N</kbd>/<kbd>2</kbd> no · <kbd>S</kbd> can't tell · <kbd>U</kbd> back",
}


@dataclass(frozen=True)
class JudgeConfig:
    """Which images go to the raters: at most ``images`` (a random sample; None = all) of the given models (empty =
    every model) and prompt types (empty = all), shuffled by ``seed``."""

    images: int | None = None
    seed: int = 0
    models: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.images is not None and self.images < 1:
            raise ValueError(f"images must be at least 1 (or omitted for all), got {self.images}")


def checks(prompt: EvalPrompt) -> list[str]:
    """What a rater checks, in words, from what the prompt asks."""
    spec = prompt.spec
    if "questions" in spec:
        return [f"{q.question} → {q.answer}" for q in prompt.questions]
    if prompt.type == "counting":
        return [f"exactly {spec['count']} {spec.get('plural') or plural(spec['object'])} (count them)"]
    if prompt.type == "color":
        return [f"the {p['object']} is {p['color']}" for p in spec["colors"]]
    return [f"the {spec['subject']} is {spec['action']}"]


def export_judge(eval_dir: str | os.PathLike, site_dir: str | os.PathLike, cfg: JudgeConfig | None = None) -> dict:
    """Write the judging page for an evaluation; returns {"images": n, "site": path, "key": path}."""
    cfg = cfg or JudgeConfig()
    ecfg = load_config(eval_dir)
    site = new_site(site_dir)
    names = model_names(ecfg)
    unknown = sorted(set(cfg.models) - set(names))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; this evaluation has {', '.join(names)}")
    prompts = load_prompt_set(ecfg.prompts)
    chosen = [(m, p, s) for m in (cfg.models or names) for p in prompts.prompts for s in seeds(ecfg)
              if (not cfg.types or p.type in cfg.types) and image_path(eval_dir, m, p.id, s).is_file()]
    if not chosen:
        raise FileNotFoundError(f"{eval_dir} has no generated images of those models and types: run `surd eval` first")
    _, chosen = draw(chosen, cfg.images, cfg.seed)  # models and prompts interleaved: the order tells nothing
    site_id = _hash("judge", Path(eval_dir).resolve(), cfg, len(chosen))[:16]
    (site / "images").mkdir(parents=True)
    (site / "data").mkdir()
    items, key = [], {}
    for m, p, s in chosen:
        iid = _hash(site_id, m, p.id, s)[:12]
        rel = f"images/{_hash(site_id, iid, 'image')[:16]}.png"  # the name says nothing about the model
        shutil.copyfile(image_path(eval_dir, m, p.id, s), site / rel)
        items.append({"id": iid, "prompt": p.text, "type": p.type, "checks": checks(p), "image": rel})
        key[iid] = {"model": m, "prompt_id": p.id, "type": p.type, "seed": s}
    data = {"version": 1, "title": f"{prompts.name}, {len(items)} images", "site_id": site_id, "items": items}
    key_path = write_page(site, "judge", HTML, data, [i["id"] for i in items], Path(eval_dir) / KEY_NAME,
                          (SITE_FORMAT, KEY_FORMAT), {"items": key})
    return {"images": len(items), "site": site, "key": key_path}


FORM = AnswerForm(ANSWERS_FORMAT, "judge", "answer", ANSWERS, "image", "on this judging page", "item id")


def _from_records(current: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """rater → {item: answer} from a journal's latest records."""
    out: dict[str, dict[str, str]] = {}
    for key, rec in current.items():
        iid, _, rater = key.partition(SEP)
        out.setdefault(rater, {})[iid] = FROM_JOURNAL[rec["decision"]]
    return out


class JudgeState(RatingState):
    """A served judging page: the review server's access checks, the review journal as the answer store."""

    SITE_FORMAT = SITE_FORMAT
    FORM = FORM

    def __init__(self, site_dir: str | os.PathLike, cfg: ServeConfig):
        super().__init__(site_dir, cfg)
        self.journal = Journal(self.root, make_header(self.site_id, "review"), (), cfg.snapshot_every)

    def _raters(self) -> dict[str, dict[str, str]]:
        recs, _ = self.journal.snapshot()
        return _from_records({r["key"]: r for r in recs})

    def document(self, since: int = 0) -> dict[str, Any]:
        raters = {r: {"format": ANSWERS_FORMAT, "version": 1, "site_id": self.site_id, "rater": r,
                      "answers": {i: {"answer": a} for i, a in sorted(ans.items())}}
                  for r, ans in self._raters().items()}
        return {"format": SERVER_FORMAT, "version": 1, "site_id": self.site_id, "raters": raters}

    def status(self) -> dict[str, Any]:
        raters = [{"name": r, "answered": sum(a != "skip" for a in ans.values())}
                  for r, ans in sorted(self._raters().items())]
        return {"n": len(self.keys), "raters": raters}

    def write(self, payload: Any) -> dict[str, Any]:
        rater, answers = self.checked(payload)
        with self.lock:  # a rater's page holds their latest answers: each write is based on what is stored now
            current = self.journal.current
            changes = [Change(f"{iid}{SEP}{rater}", TO_JOURNAL[a], "",
                              current[f"{iid}{SEP}{rater}"]["rev"] if f"{iid}{SEP}{rater}" in current else 0)
                       for iid, a in sorted(answers.items())]
            self.journal.apply(changes, rater)
        return {"saved": len(answers)}

    def close(self) -> None:
        self.journal.close()


def _read_answers(path: Path, key: dict[str, Any], problems: list[str]) -> list[tuple[str, str, dict]]:
    """(source, rater, answers) from one answer file or one served judging folder (its journal)."""
    if path.is_dir():
        journal = path / JOURNAL_NAME
        if not journal.exists():
            problems.append(f"{path}: no {JOURNAL_NAME} (was this judging page served?)")
            return []
        data = read_journal(journal)
        if data.header.get("site_id") != key["site_id"]:
            problems.append(f"{journal}: answers a different judging page (site {data.header.get('site_id')!r})")
            return []
        return [(str(journal), r, ans) for r, ans in sorted(_from_records(data.current).items())]
    read = FORM.read(path, key["site_id"], set(key["items"]), problems)
    return [(str(path), *read)] if read and read[0] else []


def import_labels(eval_dir: str | os.PathLike, paths: list[str | os.PathLike]) -> dict[str, Any]:
    """Validate every answer file and served folder, write ``judge_labels.json`` and refresh the report; nothing is
    written if any input is wrong. Returns the report's ``human`` summary."""
    key = read_key(eval_dir, KEY_NAME, "the judging page")
    problems: list[str] = []
    by_rater: dict[str, dict[str, str]] = {}
    if not paths:
        problems.append("no answer files or judging folders given")
    for p in paths:
        for source, rater, answers in _read_answers(Path(p), key, problems):
            if rater in by_rater:
                problems.append(f"{source}: rater {rater!r} appears twice; keep one file per rater")
            by_rater[rater] = answers
    if problems:
        raise DecisionError(problems)
    items = {iid: {**info, "votes": {r: ans[iid] for r, ans in sorted(by_rater.items()) if iid in ans}}
             for iid, info in key["items"].items()}
    write_json_atomic(Path(eval_dir) / JUDGE_LABELS_NAME, {"format": LABELS_FORMAT, "version": 1,
                                                           "site_id": key["site_id"], "raters": sorted(by_rater),
                                                           "items": items})
    ecfg = load_config(eval_dir)
    return write_outputs(ecfg, load_prompt_set(ecfg.prompts))["human"]
