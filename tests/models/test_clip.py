"""CLIP loaders: the tiny open_clip model with the real tokenizer, checkpoint files and folders, OpenAI weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from surd.models import ModelLoadError, clip
from surd.stages import clip_filter
from tests.stages.test_clip_filter import make_samples as clip_samples


def _scores(**kw) -> list[tuple[float, float]]:
    out = clip_filter.run(clip_samples(4), clip_filter.Config(**kw))
    recs = [(o.meta if hasattr(o, "meta") else o["json"])["stages"]["clip_filter"] for o in out]
    return [(r["simple_score"], r["complex_score"]) for r in recs]


def test_tiny_clip_is_open_clip_with_the_real_tokenizer() -> None:
    import open_clip

    m = clip.load_clip("tiny", "")
    assert isinstance(m.model, open_clip.CLIP)
    ids = m.tokenizer(["a photo of a cat"])[0]
    assert ids[:7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]  # OpenAI CLIP's ids
    assert clip.token_count(m.tokenizer, "a photo of a cat") == 7
    assert clip.load_clip("tiny", "") is m


def test_trimmed_text_encoding_equals_open_clip() -> None:
    m = clip.load_clip("tiny", "")
    texts = ["a dog", "wow!!! a photo of a cat on a sofa!", "x " * 120]
    for batch in (texts[:2], texts, texts[1:2]):
        tokens = m.tokenizer(batch)
        if len(batch) == 1:
            tokens[0, 3] = 0  # id 0 is a real token ("!"), the same as padding: it must not shorten the text
        with torch.no_grad():
            full = m.model.encode_text(tokens, normalize=True)
        assert torch.allclose(clip.encode_text(m.model, tokens), full, atol=1e-6)


def test_clip_checkpoint_file_and_local_dir(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    net = clip.tiny_clip(seed=3)
    ckpt = tmp_path / "tiny_clip.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(ckpt))
    from_file = _scores(model="tiny", pretrained=str(ckpt))
    assert from_file != _scores(model="tiny", pretrained="")  # seed 3 weights, not the default seed 0
    folder = tmp_path / "clip-dir"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": clip.TINY_CONFIG, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    from_dir = _scores(model=str(folder), pretrained="")
    assert [x for pair in from_dir for x in pair] == pytest.approx([x for pair in from_file for x in pair], abs=1e-6)
    rec = next(iter(clip_filter.run(clip_samples(1), clip_filter.Config(model="tiny", pretrained=str(ckpt)))))
    stages = (rec.meta if hasattr(rec, "meta") else rec["json"])["stages"]
    assert stages["clip_filter"]["pretrained"] == str(ckpt.resolve())


def test_clip_openai_weights_use_quick_gelu_and_errors_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip

    seen: dict = {}

    def fake_create(name, pretrained=None, **kw):
        seen.update(name=name, pretrained=pretrained, **kw)
        raise RuntimeError("Failed to download weights for tag 'openai'")

    monkeypatch.setattr(open_clip, "create_model", fake_create)
    with pytest.raises(ModelLoadError, match=r"hf download timm/.*openai.*--model ViT-B-32-quickgelu --pretrained"):
        clip.load_clip("ViT-B-32", "openai", device="cpu")
    assert seen["name"] == "ViT-B-32" and seen["pretrained"] == "openai" and seen["force_quick_gelu"] is True
    seen.clear()
    with pytest.raises(ModelLoadError):
        clip.load_clip("ViT-B-32", "laion2b_s34b_b79k", device="cpu")
    assert "force_quick_gelu" not in seen
