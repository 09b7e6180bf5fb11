"""The real CLIP BPE tokenizer, offline: open_clip ships its vocabulary; this converts it for transformers."""

from __future__ import annotations

import gzip
import json
import os
from functools import cache
from pathlib import Path

from surd.deps import require

CLIP_VOCAB_SIZE = 49408


def _bytes_to_unicode() -> dict[int, str]:
    # The GPT-2/CLIP reversible byte → printable-unicode table.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def open_clip_bpe_path() -> Path:
    """Path of the CLIP BPE merges file bundled in the open_clip wheel."""

    open_clip = require("open_clip", "clip")
    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall open_clip_torch (pip install 'surd[clip]')")
    return path


def clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """CLIP's vocab (token → id, 49,408 entries) and BPE merges, exactly as OpenAI's tokenizer builds them."""
    lines = gzip.open(open_clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == CLIP_VOCAB_SIZE, len(vocab)
    return {tok: i for i, tok in enumerate(vocab)}, merges


@cache
def clip_tokenizer_dir(cache_dir: str | None = None) -> Path:
    """A folder with vocab.json + merges.txt for transformers' CLIPTokenizer, built from open_clip's file.

    Written once under ``cache_dir`` (default ``~/.cache/surd/clip-tokenizer``) and reused.
    """
    out = Path(cache_dir or os.environ.get("SURD_CACHE", Path.home() / ".cache" / "surd")) / "clip-tokenizer"
    if not (out / "merges.txt").exists():
        out.mkdir(parents=True, exist_ok=True)
        vocab, merges = clip_vocab_and_merges()
        tmp_v, tmp_m = out / f".vocab.{os.getpid()}", out / f".merges.{os.getpid()}"
        tmp_v.write_text(json.dumps(vocab, ensure_ascii=False))
        tmp_m.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        os.replace(tmp_v, out / "vocab.json")
        os.replace(tmp_m, out / "merges.txt")
    return out


def clip_tokenizer(model_max_length: int = 77):
    """transformers.CLIPTokenizer with the real CLIP vocabulary (offline)."""
    from transformers import CLIPTokenizer  # optional extra: imported on use

    return CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()), model_max_length=model_max_length)
