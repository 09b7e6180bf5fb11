"""Evaluation prompt sets: the bundled ``paper`` and ``paper-table1`` sets or a user's file in the same format, validated, with the VQA
questions each prompt's structure implies (counting → "How many …?", color → "What color is the …?", action →
"Is the … …?")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from surd.eval.answers import COLORS, canonical_color

FORMAT = "surd-eval-prompts"
TYPES = ("action", "color", "counting")
SOURCES = ("paper", "surd", "user")
BUNDLED_DIR = Path(__file__).parent / "prompt_sets"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Question:
    """One VQA question about an image and the answer that means the prompt was followed."""

    question: str
    answer: str  # an integer as text (counting), a canonical colour, or "yes"


@dataclass(frozen=True)
class EvalPrompt:
    """One evaluation prompt and what it asks for."""

    id: str
    type: str
    text: str
    source: str
    questions: tuple[Question, ...]
    spec: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PromptSet:
    name: str
    prompts: tuple[EvalPrompt, ...]
    path: str

    def by_type(self) -> dict[str, list[EvalPrompt]]:
        out: dict[str, list[EvalPrompt]] = {t: [] for t in TYPES}
        for p in self.prompts:
            out[p.type].append(p)
        return {t: ps for t, ps in out.items() if ps}

    def count_by_source(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.prompts:
            out[p.source] = out.get(p.source, 0) + 1
        return out


def plural(noun: str) -> str:
    """English plural of a regular noun (irregular ones go in the prompt file's ``plural``)."""
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def _derive(ptype: str, spec: dict[str, Any], where: str) -> tuple[Question, ...]:
    if ptype == "counting":
        count, obj = spec.get("count"), spec.get("object")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 20 or not isinstance(obj, str):
            raise ValueError(f"{where}: a counting prompt needs object (text) and count (an integer 1..20)")
        return (Question(f"How many {spec.get('plural') or plural(obj)} are there?", str(count)),)
    if ptype == "color":
        pairs = spec.get("colors")
        if not isinstance(pairs, list) or not pairs:
            raise ValueError(f"{where}: a color prompt needs colors: a list of {{object, color}}")
        out = []
        for pair in pairs:
            color = canonical_color(str(pair.get("color", ""))) if isinstance(pair, dict) else None
            if color is None or not isinstance(pair.get("object"), str):
                raise ValueError(f"{where}: each colors entry needs object and a color out of {', '.join(COLORS)}")
            out.append(Question(f"What color is the {pair['object']}?", color))
        return tuple(out)
    subject, action = spec.get("subject"), spec.get("action")
    if not isinstance(subject, str) or not isinstance(action, str):
        raise ValueError(f"{where}: an action prompt needs subject and action (e.g. man / shooting a basketball)")
    return (Question(f"Is the {subject} {action}?", "yes"),)


def parse_prompt(entry: Any, where: str) -> EvalPrompt:
    """One validated prompt entry; the error says which entry and what to fix."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with id, type, text, source and the type's fields")
    pid, ptype, text = entry.get("id"), entry.get("type"), entry.get("text")
    if not isinstance(pid, str) or not _ID.match(pid):
        raise ValueError(f"{where}: id must be 1-64 letters, digits, '.', '_' or '-', got {pid!r}")
    if ptype not in TYPES:
        raise ValueError(f"{where} ({pid}): type must be one of {', '.join(TYPES)}, got {ptype!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where} ({pid}): text must be a non-empty string")
    source = entry.get("source", "user")
    if source not in SOURCES:
        raise ValueError(f"{where} ({pid}): source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "paper" and not isinstance(entry.get("paper_table"), str):
        raise ValueError(f"{where} ({pid}): a paper prompt names the table it is printed in (paper_table: \"1, 7\")")
    if "detect" in entry and entry["detect"] is not False and not isinstance(entry["detect"], dict):
        raise ValueError(f"{where} ({pid}): detect must be false (not for the detector) or a mapping of what the "
                         f"detector checks instead (object + count, or colors)")
    if "questions" in entry:
        qs = entry["questions"]
        if not isinstance(qs, list) or not qs or not all(
                isinstance(q, dict) and isinstance(q.get("question"), str) and q.get("answer") is not None for q in qs):
            raise ValueError(f"{where} ({pid}): questions must be a list of {{question, answer}}")
        questions = tuple(Question(q["question"], str(q["answer"]).strip().lower()) for q in qs)
    else:
        questions = _derive(ptype, entry, f"{where} ({pid})")
    return EvalPrompt(pid, ptype, text.strip(), source, questions, dict(entry))


def resolve_prompt_file(name_or_path: str) -> Path:
    """``paper`` (or any bundled name) → the bundled file; else a path to a YAML/JSON prompt file."""
    bundled = BUNDLED_DIR / f"{name_or_path}.yaml"
    if "/" not in name_or_path and bundled.is_file():
        return bundled
    path = Path(os.path.expanduser(name_or_path))
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"prompt set {name_or_path!r} is neither a bundled set ({names}) nor a file")
    return path


def load_prompt_set(name_or_path: str = "paper") -> PromptSet:
    """Load and validate a prompt set (bundled name or file); ids must be unique."""
    path = resolve_prompt_file(name_or_path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML/JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("prompts"), list):
        raise ValueError(f"{path}: expected a mapping with format: {FORMAT} and a prompts list "
                         f"(see {BUNDLED_DIR / 'paper.yaml'} for the format)")
    if doc.get("version") != 1:
        raise ValueError(f"{path}: unsupported version {doc.get('version')!r}; this surd reads version 1")
    prompts = [parse_prompt(e, f"{path.name}: prompts[{i}]") for i, e in enumerate(doc["prompts"])]
    if not prompts:
        raise ValueError(f"{path}: the prompts list is empty")
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise ValueError(f"{path}: prompt id {p.id!r} appears twice; ids name image folders and must be unique")
        seen.add(p.id)
    return PromptSet(str(doc.get("name") or path.stem), tuple(prompts), str(path))
