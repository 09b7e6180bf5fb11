"""BLIP loaders: tiny models of the real classes, loading from local folders, LAVIS checkpoint conversion."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch

from surd.models import ModelLoadError, blip
from surd.stages import caption
from tests.stages.test_caption import make_samples as caption_samples


def _captions(model: str, **kw) -> list[str]:
    return [o["json"]["simple_prompt"] for o in caption.run(caption_samples(4), caption.Config(model=model, **kw))]


def test_tiny_blip_uses_the_real_classes_and_blip_token_roles() -> None:
    import transformers

    cap = blip.load_captioner("tiny")
    assert isinstance(cap.model, transformers.BlipForConditionalGeneration)
    assert isinstance(cap.processor, transformers.BlipProcessor)
    tok = cap.processor.tokenizer
    assert isinstance(tok, (transformers.BertTokenizer, getattr(transformers, "BertTokenizerFast", ())))
    assert tok.bos_token == "[DEC]" and tok.pad_token_id == 0
    text_cfg = cap.model.config.text_config
    assert (text_cfg.bos_token_id, text_cfg.sep_token_id, text_cfg.pad_token_id) == (
        tok.bos_token_id, tok.sep_token_id, tok.pad_token_id)
    assert tok.tokenize("a picture of a dog") == ["a", "picture", "of", "a", "dog"]
    assert blip.load_captioner("tiny") is cap  # loaded once per process
    assert not any(p.requires_grad for p in cap.model.parameters())


def test_blip_save_pretrained_and_load_by_path(tmp_path: Path) -> None:
    cap = blip.load_captioner("tiny")
    folder = tmp_path / "blip-tiny"
    cap.model.save_pretrained(folder)
    cap.processor.save_pretrained(folder)
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    loaded = blip.load_captioner(str(folder))
    assert loaded.label == str(folder.resolve()) and loaded.revision == "local"
    assert _captions(str(folder)) == _captions("tiny")
    rec = next(iter(caption.run(caption_samples(1), caption.Config(model=str(folder)))))["json"]["stages"]
    assert rec["caption"]["model"] == str(folder.resolve())


def test_blip_load_errors_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="save_pretrained"):
        blip.load_captioner(str(empty))
    with pytest.raises(FileNotFoundError):
        blip.load_captioner("./no/such/folder")

    def offline(*a, **k):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(transformers.BlipForConditionalGeneration, "from_pretrained", offline)
    with pytest.raises(ModelLoadError, match=r"hf download Salesforce/blip-image-captioning-base .*--model"):
        blip.load_captioner(blip.DEFAULT_MODEL, device="cpu")


def _to_lavis(key: str) -> str:
    rules = [
        (r"^vision_model\.embeddings\.class_embedding$", "visual_encoder.cls_token"),
        (r"^vision_model\.embeddings\.position_embedding$", "visual_encoder.pos_embed"),
        (r"^vision_model\.embeddings\.patch_embedding\.", "visual_encoder.patch_embed.proj."),
        (r"^vision_model\.post_layernorm\.", "visual_encoder.norm."),
        (r"^vision_model\.encoder\.layers\.(\d+)\.layer_norm(\d)\.", r"visual_encoder.blocks.\1.norm\2."),
        (r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.projection\.", r"visual_encoder.blocks.\1.attn.proj."),
        (r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.", r"visual_encoder.blocks.\1.attn.qkv."),
        (r"^vision_model\.encoder\.layers\.(\d+)\.mlp\.", r"visual_encoder.blocks.\1.mlp."),
    ]
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    assert key.startswith("text_decoder."), key
    return key


def _lavis_state_dict(model) -> dict[str, torch.Tensor]:
    sd = {_to_lavis(k): v.clone() for k, v in model.state_dict().items()}
    # What a LAVIS checkpoint also holds and captioning must ignore.
    sd["visual_encoder_m.cls_token"] = torch.zeros(1)
    sd["text_decoder.bert.embeddings.position_ids"] = torch.arange(64)[None]
    return sd


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_lavis_checkpoint_loads_into_transformers_blip(tmp_path: Path, fmt: str) -> None:
    from safetensors.torch import save_file

    source = blip.tiny_model(blip.tiny_processor(), seed=0)
    sd = _lavis_state_dict(source)
    assert any(k.startswith("visual_encoder.blocks.0.attn.qkv") for k in sd)
    path = tmp_path / f"blip_coco_caption_base.{fmt}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items() if "decoder.weight" not in k}, str(path))
    else:
        torch.save({"model": sd}, path)  # LAVIS/BLIP releases wrap the state dict as {"model": ...}
    target = blip.tiny_model(blip.tiny_processor(), seed=1)
    assert not torch.equal(target.vision_model.embeddings.class_embedding, source.vision_model.embeddings.class_embedding)
    blip.load_lavis_checkpoint(target, str(path))
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k
    norms = [m for m in target.vision_model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.eps == blip.LAVIS_VIT_LAYER_NORM_EPS for m in norms)
    cap = blip.load_captioner("tiny", lavis_checkpoint=str(path))
    assert cap.revision == f"lavis:{path.name}"
    out = list(caption.run(caption_samples(2), caption.Config(model="tiny", lavis_checkpoint=str(path))))
    assert out[0]["json"]["stages"]["caption"]["lavis_checkpoint"] == str(path)


def test_lavis_checkpoint_errors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = blip.tiny_model(blip.tiny_processor())
    sd = _lavis_state_dict(model)
    sd["visual_encoder.pos_embed"] = torch.zeros(1, 577, 32)  # a 384-pixel checkpoint into a 32-pixel model
    bad = tmp_path / "bad.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(bad))
    with pytest.raises(ValueError, match="pos_embed|position_embedding"):
        blip.load_lavis_checkpoint(model, str(bad))
    with pytest.raises(KeyError, match="blip_caption"):
        blip.convert_lavis_state_dict({"some_other_model.weight": torch.zeros(1)})

    pickled = tmp_path / "pickled.pth"
    torch.save({"model": {}, "config": argparse.Namespace(lr=1e-5)}, pickled)  # training code's pickled objects
    with pytest.raises(RuntimeError, match="weights_only"):
        blip.read_checkpoint(str(pickled))
