"""The quality stage: LAION aesthetic and watermark scores recorded per sample, clip_filter's clip.npy reused (no
second CLIP pass, the same score), thresholds rejecting with their reason, one output per input."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from surd.models.aesthetic import load_head  # noqa: E402
from surd.sample import Rejected  # noqa: E402
from surd.stages import clip_filter  # noqa: E402
from surd.stages.quality import Config, run  # noqa: E402
from tests.stages.test_clip_filter import make_samples  # noqa: E402


@pytest.fixture(scope="module")
def filtered() -> list[dict]:
    """Samples through clip_filter (tiny CLIP): the kept ones carry clip.npy."""
    out = list(clip_filter.run(make_samples(8), clip_filter.Config(model="tiny", batch_size=4)))
    kept = [o for o in out if isinstance(o, dict)]
    assert len(kept) >= 3 and all("clip.npy" in s for s in kept)
    return kept


def cfg(**kw) -> Config:
    return Config(**{"aesthetic_head": "tiny", "clip_model": "tiny", "batch_size": 3, **kw})


def records(out: list) -> list[dict]:
    return [(o.meta if isinstance(o, Rejected) else o["json"])["stages"]["quality"] for o in out]


@pytest.mark.parametrize("head", ["tiny", "tiny:linear"])
def test_reused_embeddings_give_the_same_score_as_a_clip_pass(filtered, monkeypatch, head):
    import surd.models.clip as clip_models
    import surd.stages.quality as quality

    fresh = [{k: v for k, v in s.items() if k != "clip.npy"} for s in copy.deepcopy(filtered)]
    computed = records(list(run(fresh, cfg(aesthetic_head=head))))
    assert {r["embedding"] for r in computed} == {"computed"}

    def no_clip(*a, **k):
        raise AssertionError("a second CLIP pass ran")

    monkeypatch.setattr(clip_models, "load_clip", no_clip)
    monkeypatch.setattr(quality, "load_clip", no_clip)
    reused = records(list(run(copy.deepcopy(filtered), cfg(aesthetic_head=head))))
    assert {r["embedding"] for r in reused} == {"reused"}
    stored = np.stack([np.load(__import__("io").BytesIO(s["clip.npy"])) for s in filtered]).astype(np.float32)
    mod, _ = load_head(head, 32)
    with torch.inference_mode():
        want = mod(torch.from_numpy(stored)).tolist()  # the head on clip_filter's own stored vectors
    for a, b, w in zip(reused, computed, want):
        assert a["aesthetic"] == pytest.approx(b["aesthetic"], abs=1e-5) == pytest.approx(w, abs=1e-5)
        assert a["aesthetic_head"] == head and a["clip_model"] == "tiny" and a["keep"] is True


def test_an_embedding_from_another_clip_is_not_reused(filtered):
    other = copy.deepcopy(filtered)
    for s in other:
        s["json"]["stages"]["clip_filter"]["model"] = "ViT-L-14"
    assert {r["embedding"] for r in records(list(run(other, cfg())))} == {"computed"}


def test_thresholds_reject_with_their_reason(filtered):
    scored = records(list(run(copy.deepcopy(filtered), cfg(watermark_model="tiny", watermark_size=64))))
    assert all(0.0 <= r["watermark"] <= 1.0 and r["watermark_model"] == "tiny" for r in scored)
    middle = sorted(r["aesthetic"] for r in scored)[len(scored) // 2]
    out = list(run(copy.deepcopy(filtered), cfg(min_aesthetic=middle)))
    assert len(out) == len(filtered)  # one output per input, in order
    for o, r in zip(out, scored):
        if r["aesthetic"] < middle:
            assert isinstance(o, Rejected) and o.reason == "low_aesthetic" and o.detail.startswith("aesthetic score")
        else:
            assert isinstance(o, dict) and o["json"]["stages"]["quality"]["keep"] is True
    marked = list(run(copy.deepcopy(filtered), Config(watermark_model="tiny", watermark_size=64, max_watermark=0.0)))
    assert {o.reason for o in marked} == {"watermark"}  # every p >= 0
    assert "aesthetic" not in marked[0].meta["stages"]["quality"]  # the head is off: no score, no CLIP


def test_a_broken_image_is_a_decode_error_not_a_lost_sample(filtered):
    samples = [{k: v for k, v in s.items() if k != "clip.npy"} for s in copy.deepcopy(filtered)]
    samples[1]["jpg"] = b"broken"
    out = list(run(samples, cfg()))
    assert len(out) == len(samples) and out[1].reason == "decode_error"


@pytest.mark.parametrize("kw,message", [
    ({}, "needs aesthetic_head and/or watermark_model"),
    ({"aesthetic_head": "tiny", "max_watermark": 0.5}, "needs watermark_model"),
    ({"watermark_model": "tiny", "min_aesthetic": 5}, "min_aesthetic needs aesthetic_head"),
    ({"aesthetic_head": "./no/such/head.pth"}, "does not exist"),
])
def test_config_errors_name_the_fix(kw, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        Config(**kw)


def test_shipped_pipelines_configure_the_stage():
    from surd.pipeline import load_pipeline
    from surd.stages import build_config, get_stage
    from tests.conftest import REPO

    for name, head in (("sample", "tiny:linear"), ("paper_sfw", "models/aesthetic/sa_0_4_vit_b_32_linear.pth")):
        steps = {s.stage: s for s in load_pipeline(REPO / "pipelines" / f"{name}.yaml").steps}
        stages = list(steps)
        assert stages.index("safety") + 1 == stages.index("quality")  # right after safety, on clip.npy
        cfg = build_config(get_stage("quality"), steps["quality"].config)
        assert cfg.aesthetic_head == head and cfg.clip_model == steps["clip_filter"].config["model"]


def test_cli_scores_and_rejects_with_the_reason(filtered, tmp_path):
    from typer.testing import CliRunner

    from surd import shards
    from surd.cli import app

    shards.write_shard(tmp_path / "in", "00000", copy.deepcopy(filtered))
    res = CliRunner().invoke(app, ["quality", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                                   "--aesthetic-head", "tiny", "--clip-model", "tiny", "--min-aesthetic", "1e9"])
    assert res.exit_code == 0, res.output
    assert f"0 kept of {len(filtered)}" in res.output and f"low_aesthetic: {len(filtered)}" in res.output
    rows = shards.read_sidecar(tmp_path / "o", "00000")
    assert {r["meta"]["stages"]["quality"]["embedding"] for r in rows} == {"reused"}
