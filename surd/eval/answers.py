"""Normalise free-text VQA answers ("There are three pies.", "it's grey", "Yes, he is.") into what a prompt asked
for: a count, a set of canonical colours, or yes/no; and judge them against the expected answer."""

from __future__ import annotations

import re

COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray", "silver",
          "gold")
_COLOR_SYNONYMS = {
    "grey": "gray", "crimson": "red", "scarlet": "red", "maroon": "red", "burgundy": "red",
    "navy": "blue", "azure": "blue", "cyan": "blue", "turquoise": "blue", "cobalt": "blue",
    "violet": "purple", "lavender": "purple", "lilac": "purple", "magenta": "pink",
    "golden": "gold", "olive": "green", "lime": "green", "emerald": "green", "beige": "brown", "tan": "brown",
    "chestnut": "brown", "ivory": "white", "cream": "white", "amber": "orange", "silvery": "silver",
}
_NUMBER_WORDS = {
    "zero": 0, "no": 0, "none": 0, "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair": 2, "couple": 2,
    "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "dozen": 12,
}
_YES = {"yes", "yeah", "yep", "true", "correct", "sure", "definitely"}
_NO = {"no", "nope", "false", "not", "never", "nobody", "nothing"}
_VAGUE = {"lot", "lots", "few", "bunch", "many", "several", "number", "group", "handful"}  # "a few": no count
_WORD = re.compile(r"[a-z]+|\d+")
# Words that make "a"/"an"/"no" a count rather than an article: "a pair", "no dogs" are counts, "a dog" is 1.
_FILLER = {"there", "are", "is", "i", "see", "can", "it", "looks", "like", "about", "maybe", "probably", "only",
           "just", "exactly", "the", "in", "picture", "image", "photo", "of", "total", "we", "have"}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def canonical_color(text: str) -> str | None:
    """A colour name or synonym → its canonical name ("grey" → "gray"), else None."""
    w = text.strip().lower()
    return w if w in COLORS else _COLOR_SYNONYMS.get(w)


def parse_count(answer: str) -> int | None:
    """The first number an answer states: digits, number words, "a pair"/"a couple" (2), "a dozen" (12), "no …" (0)."""
    toks = words(answer)
    for i, t in enumerate(toks):
        if t.isdigit():
            return int(t)
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t in ("a", "an") and nxt in _VAGUE:
            return None
        if t in ("a", "an", "no") and nxt in ("pair", "couple", "dozen", "single"):
            return _NUMBER_WORDS[nxt]
        if t in _NUMBER_WORDS and (t not in ("a", "an", "no") or not nxt or nxt not in _FILLER):
            return _NUMBER_WORDS[t]
    return None


def parse_colors(answer: str) -> set[str]:
    """Every canonical colour an answer names ("red and white" → {red, white}; "dark grey" → {gray})."""
    return {c for c in (canonical_color(t) for t in words(answer)) if c}


def parse_yes_no(answer: str) -> str | None:
    """"yes" / "no" from an answer's first yes-or-no word, else None."""
    for t in words(answer):
        if t in _YES:
            return "yes"
        if t in _NO:
            return "no"
    return None


def normalise(answer: str, expected: str) -> str | None:
    """The answer in the expected answer's vocabulary: a count (as text), a colour list, or yes/no; None if absent."""
    if expected.isdigit():
        n = parse_count(answer)
        return None if n is None else str(n)
    if expected in COLORS:
        found = parse_colors(answer)
        return ",".join(sorted(found)) or None
    if expected in ("yes", "no"):
        return parse_yes_no(answer)
    return " ".join(words(answer)) or None


def is_correct(answer: str, expected: str) -> bool:
    """Whether a VQA answer matches: equal counts, the expected colour among those named, the same yes/no."""
    norm = normalise(answer, expected)
    if norm is None:
        return False
    if expected in COLORS:
        return expected in norm.split(",")
    return norm == (expected if not expected.isdigit() else str(int(expected)))
