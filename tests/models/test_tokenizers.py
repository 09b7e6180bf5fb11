"""The real CLIP tokenizer offline (surd.models.tokenizers): open_clip's vocabulary converted for transformers."""

from __future__ import annotations

import pytest

pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from surd.models.tokenizers import CLIP_VOCAB_SIZE, clip_tokenizer, clip_vocab_and_merges  # noqa: E402


def test_transformers_clip_tokenizer_gives_open_clips_ids():
    import open_clip

    vocab, merges = clip_vocab_and_merges()
    assert len(vocab) == CLIP_VOCAB_SIZE and merges
    ours = clip_tokenizer()
    theirs = open_clip.get_tokenizer("ViT-B-32")
    for text in ("a photo of a cat", "Masterpiece, best quality, 8k, (greg rutkowski:1.2)", "naïve café über"):
        ids = ours(text, truncation=True, max_length=77)["input_ids"]  # <start> … <end>, unpadded
        assert ids == theirs([text])[0].tolist()[: len(ids)], text  # open_clip pads the rest with 0
