"""Any image-to-text model as the captioner: tiny random BLIP-2, Florence-2 and Qwen2-VL models of the real
transformers classes, saved and loaded back from folders as real weights are, asked as each family is asked
(prefix, task token, chat template), batched, with N candidates ranked by CLIP and all of them stored."""

from __future__ import annotations

import copy
import io

import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from surd.models.clip import load_clip  # noqa: E402
from surd.models.vlm import TINY_BUILDERS, load_vlm, model_type, prompts  # noqa: E402
from surd.sample import Rejected  # noqa: E402
from surd.stages.caption import Config, rank, run  # noqa: E402
from tests.stages.test_caption import make_samples  # noqa: E402

FAMILIES = {"tiny-blip2": ("Blip2ForConditionalGeneration", "blip-2", "prefix"),
            "tiny-florence2": ("Florence2ForConditionalGeneration", "florence2", "task"),
            "tiny-qwen2-vl": ("Qwen2VLForConditionalGeneration", "qwen2_vl", "chat")}


def _cfg(model: str, **kw) -> Config:
    return Config(**{"model": model, "min_length": 2, "max_length": 8, "batch_size": 3, "device": "cpu",
                     "dtype": "fp32", **kw})


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, str]:
    """Each tiny model written with save_pretrained (weights, config, processor): loaded as a real one is."""
    root = tmp_path_factory.mktemp("vlm")
    out = {}
    for spec, build in TINY_BUILDERS.items():
        model, processor = build()
        model.save_pretrained(root / spec)
        processor.save_pretrained(root / spec)
        out[spec] = str(root / spec)
    return out


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_each_family_loads_from_a_folder_and_captions_a_batch(saved, spec):
    cls, family, style = FAMILIES[spec]
    assert model_type(saved[spec]) == family
    vlm = load_vlm(saved[spec], device="cpu", dtype="fp32")
    assert type(vlm.model).__name__ == cls and vlm.style == style
    out = list(run(make_samples(4), _cfg(saved[spec])))
    assert len(out) == 4 and not any(isinstance(o, Rejected) for o in out)
    for o in out:
        rec = o["json"]["stages"]["caption"]
        assert rec["family"] == family and rec["params"]["max_new_tokens"] == 8 and o["json"]["simple_prompt"]
    if style != "prefix":  # BLIP-2 keeps its decoding limits in the language model's config, not saved
        tiny = list(run(make_samples(4), _cfg(spec)))
        assert [o["json"]["simple_prompt"] for o in tiny] == [o["json"]["simple_prompt"] for o in out]


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_the_prompt_never_reaches_the_caption(spec):
    vlm = load_vlm(spec, device="cpu", dtype="fp32")
    if vlm.style == "chat":  # a chat turn holding the image, then the assistant's turn where the caption starts
        text = prompts(vlm, "", 1)[0]
        assert "<|image_pad|>" in text and text.endswith("<|im_start|>assistant\n")
    instruction = "a photo of" if vlm.style == "prefix" else ""
    out = list(run(make_samples(3), _cfg(spec, instruction=instruction)))
    for o in out:  # tiny decoders write only letters and spaces: anything else came from the prompt
        caption = o["json"]["simple_prompt"]
        assert set(caption) <= set("abcdefghijklmnopqrstuvwxyz ") and not caption.startswith("a photo of")
    assert out[0]["json"]["stages"]["caption"]["params"]["instruction"] == (instruction or vlm.default_instruction())


@pytest.mark.parametrize("spec", ["tiny", "tiny-florence2", "tiny-qwen2-vl"])
def test_candidates_are_ranked_by_clip_and_all_stored(spec):
    cfg = _cfg(spec, candidates=3, rank_clip_model="tiny", max_length=20 if spec == "tiny" else 8)
    samples = make_samples(3)
    out = list(run(copy.deepcopy(samples), cfg))
    clip = load_clip("tiny", "", device="cpu", dtype="fp32")
    for s, o in zip(samples, out):
        rec = o["json"]["stages"]["caption"]
        texts, cos = [c["text"] for c in rec["candidates"]], [c["clip"] for c in rec["candidates"]]
        assert len(texts) == 3 and rec["rank_clip"] == {"model": "tiny", "pretrained": ""}
        assert o["json"]["simple_prompt"] == texts[rec["chosen"]] and rec["chosen"] == cos.index(max(cos))
        image = clip.preprocess(Image.open(io.BytesIO(s["jpg"])).convert("RGB"))[None]
        again = rank(clip, image, [texts])[0]  # the stored cosines are CLIP's, candidate by candidate
        assert again == pytest.approx(cos, abs=1e-4)
    single = list(run(copy.deepcopy(samples), _cfg(spec, max_length=20 if spec == "tiny" else 8)))
    assert all("candidates" not in o["json"]["stages"]["caption"] for o in single)


def test_candidates_must_be_positive():
    with pytest.raises(ValueError, match="candidates must be >= 1"):
        Config(candidates=0)


def test_a_vlm_captioner_decodes_each_image_once_on_the_fused_path(tmp_path):
    """caption (Qwen2-VL, 2 candidates ranked by CLIP) → clip_filter fused: one decode per image, as with BLIP."""
    import json

    import yaml

    from surd.batching import decode_count
    from surd.pipeline import run_pipeline
    from tests.conftest import jpeg_bytes

    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg_bytes(120, 100, seed=i))
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"image": f"{i}.jpg", "complex_prompt": f"scene {i}, 8k"})
                                              + "\n" for i in range(4)))
    stages = [{"stage": "ingest", "config": {"source": "manifest", "path": str(tmp_path / "m.jsonl"), "size": 64}},
              {"stage": "caption", "config": {"model": "tiny-qwen2-vl", "candidates": 2, "rank_clip_model": "tiny",
                                              "min_length": 2, "max_length": 6}},
              {"stage": "clip_filter", "config": {"model": "tiny"}}]
    decodes = {}
    for fuse in (True, False):
        (tmp_path / f"{fuse}.yaml").write_text(yaml.safe_dump({"name": "v", "fuse": fuse, "stages": stages}))
        before = decode_count()
        res = run_pipeline(tmp_path / f"{fuse}.yaml", tmp_path / str(fuse), progress=False)
        assert all(r.ok for _, r in res)
        decodes[fuse] = decode_count() - before
    assert decodes == {True: 4, False: 8}
