"""safety: metadata verdicts on rows the real sources build, LAION's head from a file of its original layout,
clip_filter's stored embeddings reused (no second CLIP pass), and NudeNet's real ONNX model on real photos."""

from __future__ import annotations

import copy
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from surd import shards
from surd.models import ModelLoadError
from surd.models import nsfw as nsfw_models
from surd.models.nudenet import LABELS, Geometry, load_detector, postprocess, preprocess, resize_linear, unsafe_score
from surd.runner import run_stage
from surd.sample import Rejected
from surd.sources import civitai, lexica
from surd.stages import clip_filter
from surd.stages.safety import Config, metadata_verdict, run
from tests.conftest import REPO
from tests.stages.test_clip_filter import make_samples as clip_samples

IMAGES = sorted((REPO / "manifests/sample/images").glob("*.jpg"))


# ---------------------------------------------------------------------------------------------- metadata


def civitai_nsfw(**item) -> object:
    """json["nsfw"] as the Civitai source records it, from an /api/v1/images item shaped like Civitai's ShapedImage."""
    base = {"id": 1, "url": "https://image.civitai.com/x/uuid/width=450/1.jpeg", "meta": {"prompt": "a cat"}}
    return civitai.item_row({**base, **item}, civitai.Config())["nsfw"]


def lexica_nsfw(flag: bool) -> object:
    item = {"id": "a", "src": "https://lexica.art/a.jpg", "prompt": "a cat", "nsfw": flag}
    return lexica.item_row(item, "cat", lexica.Config(queries=("cat",), include_nsfw=True))["nsfw"]


@pytest.mark.parametrize("nsfw,verdict,why", [
    (civitai_nsfw(browsingLevel=1, nsfwLevel="None", nsfw=False), "safe", "browsingLevel 1"),
    (civitai_nsfw(browsingLevel=2, nsfwLevel="Soft", nsfw=True), "safe", "browsingLevel 2"),  # PG-13: Civitai's SFW
    (civitai_nsfw(browsingLevel=4, nsfwLevel="Mature", nsfw=True), "unsafe", "browsingLevel 4"),
    (civitai_nsfw(browsingLevel=16, nsfwLevel="X", nsfw=True), "unsafe", "browsingLevel 16"),
    (civitai_nsfw(browsingLevel=32, nsfwLevel="Blocked", nsfw=True), "unsafe", "browsingLevel 32"),
    (civitai_nsfw(nsfwLevel="Mature", nsfw=True), "unsafe", "nsfwLevel Mature"),  # older responses: no int level
    (civitai_nsfw(nsfwLevel="Soft", nsfw=True), "safe", "nsfwLevel Soft"),
    (civitai_nsfw(browsingLevel=0, nsfw=True), "unsafe", "flagged"),  # unrated: only the old boolean is left
    (lexica_nsfw(True), "unsafe", "flagged nsfw"),
    (lexica_nsfw(False), "safe", "not flagged"),
    ({"image_nsfw": 0.9, "prompt_nsfw": 0.0}, "unsafe", "image_nsfw 0.900 > 0.5"),
    ({"image_nsfw": 2.0, "prompt_nsfw": 0.0}, "unsafe", "blurred by Stable Diffusion"),
    ({"image_nsfw": 0.1, "prompt_nsfw": 0.7}, "unsafe", "prompt_nsfw 0.700 > 0.5"),
    ({"image_nsfw": 0.1, "prompt_nsfw": 0.2}, "safe", "within limits"),
    (None, "unknown", "no nsfw metadata"),
    ({}, "unknown", "no nsfw metadata"),
])
def test_metadata_verdicts(nsfw, verdict, why) -> None:
    got, detail = metadata_verdict(nsfw, Config(classifier="none"))
    assert got == verdict and why in detail


def test_metadata_limits_are_options() -> None:
    cfg = Config(classifier="none", max_browsing_level=4, max_image_nsfw=None)
    assert metadata_verdict({"browsing_level": 4}, cfg)[0] == "safe"
    assert metadata_verdict({"image_nsfw": 0.99, "prompt_nsfw": 0.0}, cfg)[0] == "safe"


def test_diffusiondb_rows_carry_the_scores_the_stage_reads(tmp_path: Path) -> None:
    from surd.sources import diffusiondb
    from tests.sources.test_diffusiondb import make_diffusiondb

    rows = list(diffusiondb.list_rows(diffusiondb.Config(path=str(make_diffusiondb(tmp_path / "ddb")))))
    verdicts = Counter(metadata_verdict(r["nsfw"], Config(classifier="none"))[0] for r in rows)
    assert verdicts == {"unsafe": 2, "safe": 5}  # image_nsfw 0.9 on every third image of the fixture


# ---------------------------------------------------------------------------------------------- LAION head


def laion_state_dict(dims: tuple[int, ...], seed: int) -> dict[str, torch.Tensor]:
    """Random tensors under the names and shapes of LAION's src/models.py (a torch.save of its state_dict)."""
    g = torch.Generator().manual_seed(seed)
    sd = {"norm.mean": torch.randn(dims[0], generator=g) * 0.02, "norm.variance": torch.rand(dims[0], generator=g) * 1e-3}
    for k, (a, b) in enumerate(zip(dims, dims[1:]), start=1):
        sd[f"linear_{k}.weight"] = torch.randn(b, a, generator=g) / a**0.5
        sd[f"linear_{k}.bias"] = torch.randn(b, generator=g) * 0.1
    return sd


def reference_scores(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """LAION's forward written out: standardise, Linear+ReLU ..., Linear, sigmoid."""
    h = (x - sd["norm.mean"]) / (sd["norm.variance"].sqrt() + 1e-10)
    n = sum(k.endswith(".weight") for k in sd)
    for k in range(1, n + 1):
        h = h @ sd[f"linear_{k}.weight"].T + sd[f"linear_{k}.bias"]
        h = torch.relu(h) if k < n else torch.sigmoid(h)
    return h.squeeze(-1)


@pytest.mark.parametrize("name,dims", [("clip_ViT-B-32_openai_binary_nsfw_head", (512, 32, 32, 1)),
                                       ("clip_ViT-L-14_openai_binary_nsfw_head", (768, 64, 512, 256, 1))])
def test_original_laion_head_converts_and_loads(tmp_path: Path, name: str, dims: tuple[int, ...]) -> None:
    from safetensors import safe_open

    sd = laion_state_dict(dims, seed=len(dims))
    pth = tmp_path / f"{name}.pth"
    torch.save(sd, pth)
    x = torch.nn.functional.normalize(torch.randn(16, dims[0]), dim=-1)  # LAION feeds L2-normalised embeddings
    expected = reference_scores(sd, x)
    out = tmp_path / f"{name}.safetensors"
    assert nsfw_models.convert_laion_head(str(pth), str(out), clip_model="ViT-B-32") == dims
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["format"] == nsfw_models.FORMAT and f.metadata()["dims"] == str(list(dims))
    for path in (out, pth):  # the converted file, and the original read with weights_only=True
        head, label = nsfw_models.load_head(str(path), dims[0])
        assert label == str(path.resolve()) and head.dims == dims
        torch.testing.assert_close(head(x), expected, rtol=1e-5, atol=1e-6)


def test_head_errors_name_the_fix(tmp_path: Path, monkeypatch) -> None:
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ModelLoadError, match="not a LAION NSFW head"):
        nsfw_models.load_head(str(tmp_path / "other.pth"), 512)
    torch.save(laion_state_dict((768, 64, 512, 256, 1), 0), tmp_path / "l14.pth")
    with pytest.raises(ModelLoadError, match="reads 768-d CLIP embeddings but clip_model gives 512-d"):
        nsfw_models.load_head(str(tmp_path / "l14.pth"), 512)

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", offline)
    with pytest.raises(ModelLoadError, match="hf download someone/nsfw-head"):
        nsfw_models.load_head("someone/nsfw-head:clip_b32.safetensors", 512)
    with pytest.raises(ValueError, match="needs head"):
        Config(classifier="laion_clip")
    with pytest.raises(FileNotFoundError):
        Config(classifier="laion_clip", head="./no/such/head.safetensors")


# ---------------------------------------------------------------------------------------------- embedding reuse


@pytest.fixture(scope="module")
def filtered() -> list[dict]:
    """Samples through clip_filter (tiny CLIP): the kept ones carry clip.npy."""
    out = list(clip_filter.run(clip_samples(10), clip_filter.Config(model="tiny", batch_size=4)))
    kept = [o for o in out if isinstance(o, dict)]
    assert kept and all("clip.npy" in s for s in kept)
    return kept


def laion(**kw) -> Config:
    return Config(**{"classifier": "laion_clip", "head": "tiny", "clip_model": "tiny", "batch_size": 3, **kw})


def safety_records(out: list) -> list[dict]:
    return [(o.meta if isinstance(o, Rejected) else o["json"])["stages"]["safety"] for o in out]


def test_clip_filter_stores_the_normalised_image_embedding(filtered) -> None:
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    from surd.models.clip import tiny_clip

    model = tiny_clip()
    pre = image_transform_v2(PreprocessCfg(**open_clip.get_model_preprocess_cfg(model)), is_train=False)
    for s in filtered:
        stored = np.load(io.BytesIO(s["clip.npy"]), allow_pickle=False)
        with torch.no_grad():
            ref = model.encode_image(pre(Image.open(io.BytesIO(s["jpg"])).convert("RGB"))[None], normalize=True)[0]
        assert stored.dtype == np.float16 and stored.shape == (32,)
        np.testing.assert_allclose(stored.astype(np.float32), ref.numpy(), atol=2e-3)
        assert s["json"]["stages"]["clip_filter"]["embedding"] == "clip.npy"
    off = list(clip_filter.run(clip_samples(4), clip_filter.Config(model="tiny", store_embedding=False)))
    assert not any("clip.npy" in o for o in off if isinstance(o, dict))


def test_stored_embeddings_are_reused_without_a_clip_pass(filtered, monkeypatch) -> None:
    import surd.models.clip as clip_models

    fresh = [{k: v for k, v in s.items() if k != "clip.npy"} for s in copy.deepcopy(filtered)]
    computed = safety_records(run(fresh, laion()))
    assert {r["embedding"] for r in computed} == {"computed"}

    def no_clip(*a, **k):
        raise AssertionError("a second CLIP pass ran")

    monkeypatch.setattr(clip_models, "load_clip", no_clip)
    reused = safety_records(run(copy.deepcopy(filtered), laion()))
    assert {r["embedding"] for r in reused} == {"reused"}
    for a, b in zip(reused, computed):  # the same float16 embedding either way: the same score
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)
        assert a["head"] == "tiny" and a["clip_model"] == "tiny" and 0.0 <= a["score"] <= 1.0


def test_an_embedding_from_another_clip_is_not_reused(filtered) -> None:
    other = copy.deepcopy(filtered)
    for s in other:
        s["json"]["stages"]["clip_filter"]["model"] = "ViT-L-14"
    assert {r["embedding"] for r in safety_records(run(other, laion()))} == {"computed"}


def test_threshold_reasons_and_one_output_per_input(filtered) -> None:
    samples = copy.deepcopy(filtered)
    samples[0]["json"]["nsfw"] = {"browsing_level": 8, "level": "X", "nsfw": True}
    samples[1] = {k: v for k, v in samples[1].items() if k != "clip.npy"}
    samples[1]["jpg"] = b"broken"
    out = list(run(copy.deepcopy(samples), laion(threshold=0.0)))
    assert [o.reason for o in out] == ["nsfw_metadata", "decode_error"] + ["nsfw_classifier"] * (len(samples) - 2)
    assert out[0].meta["stages"]["safety"]["score"] is None  # no classifier on a sample metadata already rejects
    assert out[2].detail.startswith("laion_clip score ")
    kept = list(run(copy.deepcopy(samples), laion(threshold=1.0)))
    assert sum(isinstance(o, dict) for o in kept) == len(samples) - 2
    only_meta = list(run(copy.deepcopy(samples), Config(classifier="none")))
    assert [isinstance(o, Rejected) for o in only_meta] == [True] + [False] * (len(samples) - 1)


# ---------------------------------------------------------------------------------------------- NudeNet


def test_resize_matches_opencv_inter_linear() -> None:
    cv2 = pytest.importorskip("cv2")  # only this cross-check needs OpenCV; surd's NudeNet path does not
    img = np.asarray(Image.open(IMAGES[0]).convert("RGB"))
    for side in (320, 97, 700):
        diff = np.abs(resize_linear(img, side).astype(int) - cv2.resize(img, (side, side)).astype(int))
        assert diff.max() <= 1


def test_detections_equal_nudenets_own_detector_on_real_photos() -> None:
    pytest.importorskip("cv2")
    from nudenet.nudenet import NudeDetector

    ref, mine = NudeDetector(), load_detector()
    found = Counter()
    for path in IMAGES:
        blob, geo = preprocess(Image.open(path))
        a, b = mine.detect([blob], [geo])[0], ref.detect(str(path))
        assert [d["class"] for d in a] == [d["class"] for d in b], path.name
        for x, y in zip(a, b):
            assert x["score"] == pytest.approx(y["score"], abs=5e-3)
            assert max(abs(p - q) for p, q in zip(x["box"], y["box"])) <= 3
        found.update(d["class"] for d in a)
    assert found["FACE_FEMALE"] >= 1 and found["FACE_MALE"] >= 1  # the astronaut and the cameraman


def test_postprocess_equals_nudenets_on_crowded_outputs() -> None:
    pytest.importorskip("cv2")
    from nudenet.nudenet import _postprocess

    rng = np.random.default_rng(0)
    for _ in range(40):
        raw = np.zeros((4 + len(LABELS), 2100), np.float32)
        raw[:2] = rng.uniform(0, 320, (2, 2100))
        raw[2:4] = rng.uniform(5, 120, (2, 2100))
        raw[4:] = rng.uniform(0, 0.3, (len(LABELS), 2100)) ** 2
        hot = rng.choice(2100, 80, replace=False)
        raw[4 + rng.integers(0, len(LABELS), 80), hot] = rng.uniform(0.15, 0.99, 80)
        w, h = (int(v) for v in rng.integers(200, 900, 2))
        side = max(w, h)
        ref = _postprocess([raw[None]], side - w, side - h, side / w, side / h, w, h, 320, 320)
        mine = postprocess(raw, Geometry(w, h, side - w, side - h))
        assert [d["class"] for d in mine] == [d["class"] for d in ref]
        for x, y in zip(mine, ref):
            assert x["score"] == pytest.approx(y["score"], abs=1e-6)
            assert max(abs(p - q) for p, q in zip(x["box"], y["box"])) <= 1
    assert unsafe_score([{"class": "FACE_MALE", "score": 0.9}, {"class": "ANUS_EXPOSED", "score": 0.3}]) == 0.3
    assert unsafe_score([]) == 0.0


def photo_dataset(root: Path) -> Path:
    items = [{"__key__": f"{i:016x}", "jpg": p.read_bytes(), "json": {"key": p.stem, "complex_prompt": p.stem}}
             for i, p in enumerate(IMAGES)]
    shards.write_shard(root, "00000", items[:16])
    shards.write_shard(root, "00001", items[16:])
    return root


def test_nudenet_stage_on_real_photos(tmp_path: Path) -> None:
    src = photo_dataset(tmp_path / "in")
    res = run_stage("safety", {"classifier": "nudenet"}, tmp_path / "default", src, progress=False)
    assert res.ok and res.stats["kept"] == len(IMAGES)  # nothing unsafe in the sample
    recs = {s["json"]["key"]: s["json"]["stages"]["safety"] for s in shards.iter_dataset(tmp_path / "default")}
    assert recs["astronaut"]["model"] == "nudenet/320n.onnx" and recs["astronaut"]["score"] == 0.0
    assert [d["class"] for d in recs["astronaut"]["detections"]] == ["FACE_FEMALE"]
    # The same real model deciding: count faces as "unsafe" and the two photos with people are rejected.
    faces = run_stage("safety", {"classifier": "nudenet", "nudenet_classes": ["FACE_FEMALE", "FACE_MALE"]},
                      tmp_path / "faces", src, workers=2, progress=False)
    assert faces.stats["rejected"] == {"nsfw_classifier": 2}
    rows = [r for stem in ("00000", "00001") for r in shards.read_sidecar(tmp_path / "faces", stem)]
    rejected = {r["meta"]["key"]: r for r in rows if r["status"] == "rejected"}
    assert set(rejected) == {"astronaut", "camera_man"}
    assert rejected["astronaut"]["meta"]["stages"]["safety"]["score"] > 0.5
    assert shards.read_stats(tmp_path / "faces")["00000"]["versions"]["nudenet"]


def test_cli_safety(tmp_path: Path) -> None:
    from surd.cli import app

    src = photo_dataset(tmp_path / "in")
    res = CliRunner().invoke(app, ["safety", str(src), "--out", str(tmp_path / "o"), "--classifier", "nudenet",
                                   "--nudenet-classes", "FACE_FEMALE", "--threshold", "0.5"])
    assert res.exit_code == 0, res.output
    assert f"{len(IMAGES) - 1} kept of {len(IMAGES)}" in res.output and "nsfw_classifier: 1" in res.output
    with pytest.raises(ValueError, match="nudenet_classes"):
        Config(nudenet_classes=("NUDITY",))
    with pytest.raises(ValueError, match="classifier must be one of"):
        Config(classifier="magic")


def test_paper_sfw_pipeline_is_the_paper_pipeline_with_dedup_and_safety() -> None:
    from surd.pipeline import load_pipeline
    from surd.stages import build_config, get_stage

    paper = load_pipeline(REPO / "pipelines/paper.yaml").steps
    sfw = load_pipeline(REPO / "pipelines/paper_sfw.yaml").steps
    assert [s.stage for s in sfw] == ["ingest", "dedup", "caption", "clip_filter", "safety", "quality", "review",
                                      "embed", "train_adapter", "eval", "card"]
    same = {s.stage: s.config for s in paper}
    for step in sfw:
        if step.stage in ("ingest", "caption", "embed", "train_adapter", "eval"):
            assert step.config == same[step.stage], step.stage
    steps = {s.stage: s.config for s in sfw}
    assert build_config(get_stage("dedup"), steps["dedup"]).max_distance == 8
    cf = build_config(get_stage("clip_filter"), steps["clip_filter"])
    sf = build_config(get_stage("safety"), {**steps["safety"], "head": "tiny"})  # the head file is downloaded
    assert cf.store_embedding and (sf.clip_model, sf.clip_pretrained) == (cf.model, cf.pretrained)  # reused
    assert steps["safety"]["head"].endswith("clip_ViT-B-32_openai_binary_nsfw_head.pth") and sf.threshold == 0.5
