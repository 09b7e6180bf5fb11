"""clip_filter stage: the paper's keep rule on a tiny random open_clip CLIP with the real CLIP tokenizer."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from surd import shards
from surd.models.clip import tiny_clip
from surd.sample import Rejected
from surd.stages.clip_filter import Config, decide, run
from tests.conftest import REPO
from tests.stages.test_caption import image_bytes

LONG = ", ".join(["masterpiece", "best quality", "ultra detailed", "8k", "cinematic lighting", "trending on artstation",
                  "octane render", "sharp focus", "intricate", "volumetric fog"] * 4)  # ~100 CLIP tokens
SIMPLE = ["a woman standing in a field", "a red car on a street", "a castle on a hill", "a dog", "two cats on a bed",
          "a portrait of an old man", "a city at night", "a bowl of fruit", "a boat on the sea", "a forest path"]


def make_samples(n: int = 10) -> list[dict]:
    out = []
    for i in range(n):
        complex_ = LONG if i % 3 == 0 else f"{SIMPLE[i % 10]}, highly detailed, art by greg rutkowski, {i}"
        out.append({"__key__": f"{i:016x}", "jpg": image_bytes(100 + i, 64 + 8 * i, 72),
                    "json": {"simple_prompt": SIMPLE[i % 10], "complex_prompt": complex_, "stages": {}}})
    return out


def direct_scores(samples: list[dict]) -> list[tuple[float, float]]:
    """The same computation written with open_clip's own API only (full 77-token texts, one image at a time)."""
    import io

    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    model = tiny_clip()
    preprocess = image_transform_v2(PreprocessCfg(**open_clip.get_model_preprocess_cfg(model)), is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    out = []
    with torch.no_grad():
        for s in samples:
            img = preprocess(Image.open(io.BytesIO(s["jpg"])).convert("RGB")).unsqueeze(0)
            f_img = model.encode_image(img, normalize=True)
            f_txt = model.encode_text(tokenizer([s["json"]["simple_prompt"], s["json"]["complex_prompt"]]),
                                      normalize=True)
            cos = (f_img @ f_txt.T)[0]
            out.append((float(cos[0]), float(cos[1])))
    return out


def records(out: list) -> list[dict]:
    return [(o.meta if isinstance(o, Rejected) else o["json"])["stages"]["clip_filter"] for o in out]


def test_decision_equals_a_direct_open_clip_computation() -> None:
    samples = make_samples(10)
    out = list(run(copy.deepcopy(samples), Config(model="tiny", pretrained="", batch_size=4)))
    expected = direct_scores(samples)
    assert [o["__key__"] if isinstance(o, dict) else o.key for o in out] == [s["__key__"] for s in samples]
    for o, rec, (cs, cc) in zip(out, records(out), expected):
        assert rec["simple_score"] == pytest.approx(cs, abs=1e-5)
        assert rec["complex_score"] == pytest.approx(cc, abs=1e-5)
        assert rec["keep"] is (cs >= cc) is isinstance(o, dict)
        if isinstance(o, Rejected):
            assert o.reason == "clip_simple_below_complex"
        assert rec["model"] == "tiny" and rec["rule"].startswith("cos(image, simple) >=")
        assert (rec["p_simple"] >= 0.5) is rec["keep"]
    decisions = Counter(r["keep"] for r in records(out))
    assert decisions[True] and decisions[False], "the fixture should exercise both outcomes"


def test_complex_prompts_over_77_tokens_are_truncated_and_flagged() -> None:
    out = list(run(make_samples(6), Config(model="tiny", pretrained="")))
    recs = records(out)
    assert [r["complex_truncated"] for r in recs] == [i % 3 == 0 for i in range(6)]
    assert all(r["complex_tokens"] > 77 for r in recs[::3])
    assert all(r["complex_tokens"] <= 77 for i, r in enumerate(recs) if i % 3)


def test_batch_size_1_and_8_give_the_same_scores() -> None:
    samples = make_samples(10)
    one = records(run(copy.deepcopy(samples), Config(model="tiny", pretrained="", batch_size=1, decode_threads=1)))
    eight = records(run(copy.deepcopy(samples), Config(model="tiny", pretrained="", batch_size=8, decode_threads=3)))
    for a, b in zip(one, eight, strict=True):
        assert a["simple_score"] == pytest.approx(b["simple_score"], abs=1e-5)
        assert a["complex_score"] == pytest.approx(b["complex_score"], abs=1e-5)
        assert a["keep"] == b["keep"]


def test_missing_prompts_min_score_and_counts() -> None:
    samples = make_samples(9)
    samples[1]["json"]["simple_prompt"] = ""
    del samples[2]["json"]["simple_prompt"]
    samples[4]["json"]["complex_prompt"] = "  "
    samples[5]["jpg"] = samples[5]["jpg"][:150]  # corrupt, mid-batch
    base = records(run(copy.deepcopy(make_samples(9)), Config(model="tiny", pretrained="")))
    # A threshold between the kept samples' scores so that it rejects some and keeps others.
    kept_scores = sorted(r["simple_score"] for i, r in enumerate(base) if r["keep"] and i not in (1, 2, 4, 5))
    threshold = (kept_scores[0] + kept_scores[-1]) / 2
    out = list(run(samples, Config(model="tiny", pretrained="", min_simple_score=threshold, batch_size=9)))
    reasons = {i: o.reason for i, o in enumerate(out) if isinstance(o, Rejected)}
    assert reasons[1] == reasons[2] == "missing_simple_prompt"
    assert reasons[4] == "missing_complex_prompt" and reasons[5] == "decode_error"
    assert "clip_simple_below_min" in reasons.values()
    for i, o in enumerate(out):
        if i in (1, 2, 4, 5):
            continue
        rec = records([o])[0]
        assert rec["simple_score"] == pytest.approx(base[i]["simple_score"], abs=1e-5)
        expected = decide(rec["simple_score"], rec["complex_score"], threshold)
        assert (o.reason if isinstance(o, Rejected) else None) == expected
    assert len(out) == len(samples) == sum(isinstance(o, dict) for o in out) + len(reasons)


def test_decide() -> None:
    assert decide(0.3, 0.2, None) is None
    assert decide(0.2, 0.2, None) is None  # ties keep: score(simple) >= score(complex)
    assert decide(0.1, 0.2, None) == "clip_simple_below_complex"
    assert decide(0.3, 0.2, 0.35) == "clip_simple_below_min"
    with pytest.raises(ValueError, match="cosine"):
        Config(min_simple_score=5)
    assert Config(model="tiny").pretrained == ""  # the default tag "openai" means random weights for tiny
    assert Config().pretrained == "openai"
    with pytest.raises(FileNotFoundError, match="tiny takes"):
        list(run(make_samples(1), Config(model="tiny", pretrained="laion2b_s34b_b79k")))


def _input_dataset(tmp_path: Path) -> Path:
    src = tmp_path / "01_caption"
    samples = make_samples(8)
    shards.write_shard(src, "00000", samples[:5])
    shards.write_shard(src, "00001", samples[5:])
    return src


def test_run_stage_integration_and_sidecar(tmp_path: Path) -> None:
    from surd.runner import run_stage

    src = _input_dataset(tmp_path)
    out_dir = tmp_path / "02_clip_filter"
    res = run_stage("clip_filter", {"model": "tiny", "pretrained": "", "batch_size": 3}, out_dir, src,
                    progress=False)
    assert res.ok
    st = res.stats
    assert st["in"] == 8 == st["kept"] + sum(st["rejected"].values())
    assert set(st["rejected"]) <= {"clip_simple_below_complex"}
    rows = shards.read_sidecar(out_dir, "00000") + shards.read_sidecar(out_dir, "00001")
    assert len(rows) == 8
    for r in rows:
        if r["status"] == "rejected":
            assert r["reason"] == "clip_simple_below_complex"
            assert r["meta"]["stages"]["clip_filter"]["keep"] is False
    kept = list(shards.iter_dataset(out_dir))
    assert all(s["json"]["stages"]["clip_filter"]["keep"] for s in kept) and len(kept) == st["kept"]
    assert shards.read_stats(out_dir)["00000"]["versions"]["open_clip"]


def test_cli_clip_filter(tmp_path: Path) -> None:
    from surd.cli import app

    src = _input_dataset(tmp_path)
    out = tmp_path / "cf"
    res = CliRunner().invoke(app, ["clip-filter", str(src), "--out", str(out), "--model", "tiny", "--pretrained", "",
                                   "--min-simple-score", "-1"])
    assert res.exit_code == 0, res.output
    assert "of 8 in 2 shards" in res.output
    assert "Example:" in CliRunner().invoke(app, ["clip-filter", "--help"]).output


def test_pipeline_ingest_caption_clip_filter_with_tiny_models(tmp_path: Path) -> None:
    import yaml

    from surd.pipeline import run_pipeline


    pipe = tmp_path / "tiny.yaml"
    pipe.write_text(yaml.safe_dump({"name": "tiny", "stages": [
        {"stage": "ingest", "config": {"source": "manifest", "path": str(REPO / "manifests/sample/manifest.jsonl"),
                                       "size": 64, "shard_size": 16}},
        {"stage": "caption", "config": {"model": "tiny", "batch_size": 8, "overwrite": True}},
        {"stage": "clip_filter", "config": {"model": "tiny", "batch_size": 8}},
    ]}))
    results = dict((step.stage, res) for step, res in run_pipeline(pipe, tmp_path / "runs", progress=False))
    ingest, cap, cf = results["ingest"].stats, results["caption"].stats, results["clip_filter"].stats
    assert cap["in"] == ingest["kept"] == cap["kept"] + sum(cap["rejected"].values())
    assert cf["in"] == cap["kept"] == cf["kept"] + sum(cf["rejected"].values())
    kept = list(shards.iter_dataset(tmp_path / "runs/tiny/02_clip_filter"))
    assert len(kept) == cf["kept"]
    assert all(s["json"]["stages"]["caption"]["params"]["num_beams"] == 3 for s in kept)
    assert all(s["json"]["stages"]["clip_filter"]["keep"] for s in kept)


def test_paper_pipeline_names_the_papers_models() -> None:
    from surd.pipeline import load_pipeline
    from surd.stages import build_config, get_stage


    steps = {s.stage: s for s in load_pipeline(REPO / "pipelines/paper.yaml").steps}
    assert [s.stage for s in sorted(steps.values(), key=lambda s: s.index)] == [
        "ingest", "caption", "clip_filter", "review", "embed", "train_adapter", "eval"]
    cap = build_config(get_stage("caption"), steps["caption"].config)
    assert (cap.model, cap.prompt, cap.num_beams, cap.min_length, cap.max_length) == (
        "Salesforce/blip-image-captioning-base", "a picture of ", 3, 10, 30)
    cf = build_config(get_stage("clip_filter"), steps["clip_filter"].config)
    assert (cf.model, cf.pretrained, cf.min_simple_score) == ("ViT-B-32", "openai", None)
    assert (steps["embed"].config["llm"], steps["embed"].config["layer"]) == ("33b", 60)
    train = steps["train_adapter"].config
    assert (train["base"], train["lr"], train["max_steps"], train["batch_size"], train["grad_accum"]) == (
        "runwayml/stable-diffusion-v1-5", 1e-5, 5000, 1, 4)
