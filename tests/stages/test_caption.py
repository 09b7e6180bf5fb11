"""caption stage: BLIP captions into simple_prompt with tiny random models of the real transformers classes."""

from __future__ import annotations

import copy
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from surd import shards
from surd.models.blip import load_captioner
from surd.sample import Rejected
from surd.stages import build_config, config_to_dict, get_stage
from surd.stages.caption import Config, run, strip_prompt


def image_bytes(seed: int, w: int = 96, h: int = 80) -> bytes:
    """A JPEG of random colour blocks: images that differ at the tiny models' 32-pixel input size."""
    blocks = np.random.default_rng(seed).integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(blocks).resize((w, h), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


PAPER = {"prompt": "a picture of ", "num_beams": 3, "min_length": 10, "max_length": 30}


def make_samples(n: int, simple: dict[int, str] | None = None) -> list[dict]:
    simple = simple or {}
    return [{"__key__": f"{i:016x}", "jpg": image_bytes(i, 96 + 8 * i),
             "json": {"key": f"{i:016x}", "complex_prompt": f"masterpiece, best quality, scene {i}, 8k",
                      "simple_prompt": simple.get(i, ""), "stages": {}}} for i in range(n)]


def captions(out: list) -> list[str | None]:
    return [None if isinstance(o, Rejected) else o["json"]["simple_prompt"] for o in out]


def test_every_image_is_captioned_with_the_papers_settings() -> None:
    out = list(run(make_samples(6), Config(model="tiny")))
    assert [o["__key__"] for o in out] == [f"{i:016x}" for i in range(6)]
    assert all(not isinstance(o, Rejected) for o in out)
    for o in out:
        caption = o["json"]["simple_prompt"]
        assert caption.strip() and not caption.startswith("a picture of")
        rec = o["json"]["stages"]["caption"]
        assert rec["model"] == "tiny" and rec["revision"] == "tiny" and rec["backend"] == "transformers"
        assert {k: rec["params"][k] for k in PAPER} == PAPER
        assert rec["params"]["do_sample"] is False
    assert len(set(captions(out))) > 1, "captions must depend on the image"


def test_captions_match_a_direct_generate_call() -> None:
    import torch

    cap = load_captioner("tiny")
    samples = make_samples(3)
    out = list(run(copy.deepcopy(samples), Config(model="tiny")))
    from surd.batching import decode_rgb

    pv = cap.processor(images=[decode_rgb(s) for s in samples], return_tensors="pt")["pixel_values"]
    ids = cap.processor.tokenizer(["a picture of "] * 3, return_tensors="pt").input_ids
    with torch.no_grad():
        gen = cap.model.generate(pixel_values=pv, input_ids=ids, num_beams=3, min_length=10, max_length=30)
    texts = cap.processor.tokenizer.batch_decode(gen, skip_special_tokens=True)
    assert all(t.startswith("a picture of") for t in texts)
    # A random model may continue the prompt with a subword ("a picture ofx..."), so cut at the prompt's characters.
    assert [t[len("a picture of"):].strip() for t in texts] == captions(out)
    assert all(len(g[g != cap.processor.tokenizer.pad_token_id]) >= 10 for g in gen)


def test_existing_simple_prompts_are_kept_unless_overwrite() -> None:
    samples = make_samples(5, {1: "a red house by a lake", 3: "two dogs"})
    out = list(run(copy.deepcopy(samples), Config(model="tiny", batch_size=2)))
    assert out[1]["json"]["simple_prompt"] == "a red house by a lake"
    assert out[3]["json"]["simple_prompt"] == "two dogs"
    assert out[1]["json"]["stages"]["caption"] == {"model": "tiny", "kept_existing": True}
    assert all(out[i]["json"]["simple_prompt"] for i in (0, 2, 4))
    fresh = list(run(copy.deepcopy(samples), Config(model="tiny", overwrite=True)))
    assert fresh[1]["json"]["simple_prompt"] not in ("a red house by a lake", "")
    assert captions(fresh)[0] == captions(out)[0]


def test_batch_size_1_and_8_give_the_same_captions() -> None:
    samples = make_samples(10)
    one = captions(run(copy.deepcopy(samples), Config(model="tiny", batch_size=1, decode_threads=1)))
    eight = captions(run(copy.deepcopy(samples), Config(model="tiny", batch_size=8, decode_threads=3)))
    assert one == eight and all(one)


def test_corrupt_image_in_the_middle_of_a_batch() -> None:
    samples = make_samples(8)
    good = captions(run(copy.deepcopy(samples), Config(model="tiny", batch_size=8)))
    samples[4]["jpg"] = samples[4]["jpg"][:200]
    samples[5]["jpg"] = b"<html>not an image</html>"
    out = list(run(samples, Config(model="tiny", batch_size=8)))
    assert [o.reason for o in out if isinstance(o, Rejected)] == ["decode_error", "decode_error"]
    assert isinstance(out[4], Rejected) and isinstance(out[5], Rejected)
    assert [c for i, c in enumerate(captions(out)) if i not in (4, 5)] == [c for i, c in enumerate(good)
                                                                           if i not in (4, 5)]
    counts = Counter(o.reason for o in out if isinstance(o, Rejected))
    assert len(samples) == sum(not isinstance(o, Rejected) for o in out) + sum(counts.values())


def test_strip_prompt() -> None:
    assert strip_prompt("a picture of a dog on a beach", "a picture of ") == "a dog on a beach"
    assert strip_prompt("A picture of a cat", "a picture of ") == "a cat"
    assert strip_prompt("a picture of", "a picture of ") == ""
    assert strip_prompt("two cats", "a picture of ") == "two cats"
    assert strip_prompt("two cats", "") == "two cats"


def test_only_the_prompt_is_rejected_as_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    from surd.stages import caption

    monkeypatch.setattr(caption, "generate", lambda cap, cfg, pv, candidates=1: ["", "a cat"][: pv.shape[0]])
    out = list(run(make_samples(2), Config(model="tiny", batch_size=2)))
    assert isinstance(out[0], Rejected) and out[0].reason == "empty_caption"
    assert out[1]["json"]["simple_prompt"] == "a cat"


@pytest.mark.parametrize("bad, match", [
    ({"num_beams": 0}, "num_beams"), ({"min_length": 40}, "min_length"), ({"batch_size": 0}, "batch_size"),
    ({"repetition_penalty": 0}, "repetition_penalty"),
])
def test_config_validation(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Config(**bad)


def test_config_round_trips_through_the_registry() -> None:
    cfg = build_config(get_stage("caption"), {"model": "tiny", "batch_size": 4})
    assert build_config(get_stage("caption"), config_to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="unknown key"):
        build_config(get_stage("caption"), {"beams": 3})


def _input_dataset(tmp_path: Path, n: int = 7) -> Path:
    src = tmp_path / "00_ingest"
    samples = make_samples(n, {2: "already captioned"})
    shards.write_shard(src, "00000", samples[:4])
    shards.write_shard(src, "00001", samples[4:])
    return src


def test_run_stage_integration(tmp_path: Path) -> None:
    from surd.runner import run_stage

    src = _input_dataset(tmp_path)
    res = run_stage("caption", {"model": "tiny", "batch_size": 3}, tmp_path / "01_caption", src, progress=False)
    assert res.ok and res.stats["in"] == 7 and res.stats["kept"] == 7
    kept = list(shards.iter_dataset(tmp_path / "01_caption"))
    assert len(kept) == 7 and all(s["json"]["simple_prompt"] for s in kept)
    assert {s["json"]["simple_prompt"] for s in kept if s["__key__"] == f"{2:016x}"} == {"already captioned"}
    stats = shards.read_stats(tmp_path / "01_caption")
    assert stats["00000"]["versions"]["transformers"]


def test_cli_caption(tmp_path: Path) -> None:
    from surd.cli import app

    src = _input_dataset(tmp_path, 4)
    out = tmp_path / "cap"
    res = CliRunner().invoke(app, ["caption", str(src), "--out", str(out), "--model", "tiny", "--batch-size", "2",
                                   "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "4 kept of 4" in res.output
    kept = list(shards.iter_dataset(out))
    assert "already captioned" not in {s["json"]["simple_prompt"] for s in kept}
    assert all(s["json"]["stages"]["caption"]["params"]["num_beams"] == 3 for s in kept)
    assert "Example:" in CliRunner().invoke(app, ["caption", "--help"]).output


def test_cli_caption_with_another_model_and_candidates(tmp_path: Path) -> None:
    from surd.cli import app

    shards.write_shard(tmp_path / "in", "00000", make_samples(2))
    res = CliRunner().invoke(app, ["caption", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--model",
                                   "tiny-florence2", "--instruction", "<DETAILED_CAPTION>", "--candidates", "2",
                                   "--rank-clip-model", "tiny", "--min-length", "2", "--max-length", "6"])
    assert res.exit_code == 0, res.output
    rec = next(shards.iter_dataset(tmp_path / "o"))["json"]["stages"]["caption"]
    assert rec["family"] == "florence2" and rec["params"]["instruction"] == "<DETAILED_CAPTION>"
    assert len(rec["candidates"]) == 2
