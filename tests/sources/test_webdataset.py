"""Existing webdataset shards: img2dataset's real output (tests/fixtures/img2dataset, made by img2dataset itself)
ingests with every sample and caption kept; hostile tars give a reason per sample, never a traceback or a loss."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from surd import shards
from surd.cli import app
from surd.pipeline import run_pipeline
from surd.runner import run_stage
from surd.sample import make_key
from surd.sources import build_source_config, webdataset
from tests.conftest import REPO, jpeg_bytes

I2D = REPO / "tests" / "fixtures" / "img2dataset" / "out"


def _img2dataset_successes() -> dict[str, dict]:
    """What img2dataset itself says it wrote: key → its parquet row, for every success."""
    rows = [r for p in sorted(I2D.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return {r["key"]: r for r in rows if r["status"] == "success"}


def _rows(out) -> list[dict]:
    return [r for stem in shards.list_done(out) for r in shards.read_sidecar(out, stem)]


def _balanced(out) -> None:
    for st in shards.read_stats(out).values():
        assert st["in"] == st["kept"] + sum(st["rejected"].values())


@pytest.mark.parametrize("size,passed_through", [(128, True), (512, False)])
def test_img2dataset_output_ingests_with_every_sample_and_caption(tmp_path, size, passed_through):
    want = _img2dataset_successes()
    assert len(want) == 6  # the fixture: 7 URLs, one a 404 that img2dataset recorded as failed_to_download
    res = run_stage("ingest", {"source": "webdataset", "path": str(I2D), "size": size}, tmp_path / "o", progress=False)
    assert res.ok and res.stats["in"] == res.stats["kept"] == len(want), res.stats
    samples = list(shards.iter_dataset(tmp_path / "o"))
    got = {s["json"]["provenance"]["key"]: s for s in samples}
    assert set(got) == set(want)
    for key, rec in want.items():
        meta = got[key]["json"]
        assert meta["complex_prompt"] == rec["caption"] and meta["url"] == rec["url"]
        assert meta["provenance"]["metadata"]["sha256"] == rec["sha256"]  # img2dataset's own metadata, kept
        assert meta["key"] == make_key("webdataset", f"{int(key[:-1]):05d}.tar/{key}")
        assert meta["stages"]["ingest"]["original_bytes"] is passed_through  # 128² JPEG in, 128² out: as is
        assert (meta["width"], meta["height"]) == (128, 128)
    assert "café au lait, ´accents´ and 日本語" in {s["json"]["complex_prompt"] for s in samples}


def _member(tf: tarfile.TarFile, name: str, data: bytes = b"", **kw) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if data else None)


def _hostile_tar(path: Path) -> dict[str, str]:
    """A tar with one sample per kind of bad input; source id → the reason it must get."""
    path.parent.mkdir(parents=True, exist_ok=True)
    good = jpeg_bytes(200, 160, seed=3)
    with tarfile.open(path, "w") as tf:
        for name, data in [("good.jpg", good), ("good.txt", b"a good fox"), ("good.json", b'{"url": "u"}'),
                           ("noimg.txt", b"caption only"),
                           ("corrupt.jpg", b"\xff\xd8\xff\xe0 not really a jpeg"), ("corrupt.txt", b"broken"),
                           ("latin.jpg", good[:-1] + b"\xd9"), ("latin.txt", b"caf\xe9"),
                           ("huge.jpg", jpeg_bytes(200, 160, seed=4)), ("huge.txt", b"big meta"),
                           ("huge.json", json.dumps({"x": "y" * 5000}).encode()),
                           ("badjson.jpg", jpeg_bytes(200, 160, seed=5)), ("badjson.txt", b"t"),
                           ("badjson.json", b"{not json"),
                           ("dir/sub.jpg", jpeg_bytes(200, 160, seed=6)), ("dir/sub.txt", b"nested"),
                           ("dup.jpg", jpeg_bytes(200, 160, seed=7)), ("dup.jpg", jpeg_bytes(200, 160, seed=8)),
                           ("dup.txt", b"twice"), ("nocap.jpg", jpeg_bytes(200, 160, seed=9))]:
            _member(tf, name, data)
        _member(tf, "link.jpg", type=tarfile.SYMTYPE, linkname="good.jpg")
        _member(tf, "link.txt", b"a link")
        _member(tf, "empty.jpg")
        _member(tf, "empty.txt", b"zero bytes")
    return {"good": "kept", "noimg": "missing_image", "corrupt": "decode_error", "latin": "bad_caption",
            "huge": "metadata_too_large", "badjson": "bad_metadata", "dir/sub": "bad_key", "dup": "duplicate_member",
            "nocap": "missing_caption", "link": "link_member", "empty": "empty_file"}


def test_hostile_members_are_rejected_with_their_reason(tmp_path):
    expected = _hostile_tar(tmp_path / "h" / "00000.tar")
    cfg = {"source": "webdataset", "path": str(tmp_path / "h"), "size": 64, "options": {"max_text_bytes": 1000}}
    res = run_stage("ingest", cfg, tmp_path / "o", progress=False)
    assert res.ok and res.stats["in"] == len(expected)
    got = {r["meta"]["provenance"]["key"]: r["reason"] or "kept" for r in _rows(tmp_path / "o")}
    assert got == expected
    _balanced(tmp_path / "o")


@pytest.mark.parametrize("cut,expected", [
    ("image", {"kept": 1, "truncated_member": 1, "missing_in_tar": 1, "truncated_tar": 1}),  # tarfile raises
    ("header", {"kept": 1, "missing_in_tar": 2, "truncated_tar": 1}),  # tarfile stops quietly: the end blocks tell
])
def test_a_cut_tar_keeps_what_it_holds_and_names_what_it_lost(tmp_path, cut, expected):
    shard = tmp_path / "cut"
    shard.mkdir()
    shutil.copy(I2D / "00000.parquet", shard / "00000.parquet")
    data = (I2D / "00000.tar").read_bytes()
    with tarfile.open(I2D / "00000.tar") as tf:
        second_image = [m for m in tf.getmembers() if m.name.endswith(".jpg")][1]
    at = second_image.offset_data + 100 if cut == "image" else second_image.offset + 100
    (shard / "00000.tar").write_bytes(data[:at])
    res = run_stage("ingest", {"source": "webdataset", "path": str(shard), "size": 64}, tmp_path / "o",
                    progress=False)
    # the first sample kept; what img2dataset's parquet lists but the cut tar lacks named; the tar itself named
    assert Counter(r["reason"] or "kept" for r in _rows(tmp_path / "o")) == expected
    assert res.stats["in"] == sum(expected.values())
    _balanced(tmp_path / "o")


def test_not_a_tar_is_a_reason_not_a_traceback(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "00000.tar").write_bytes(b"this is not a tar archive at all" * 40)
    rows = list(webdataset.list_rows(webdataset.Config(path=str(tmp_path / "w"))))
    assert [r["error"] for r in rows] == ["bad_tar"]


def test_shard_patterns_and_refusals(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(3):
        shutil.copy(I2D / f"{i:05d}.tar", tmp_path / "a" / f"{i:05d}.tar")
    tars = webdataset.list_tars(str(tmp_path / "a" / "{00000..00001}.tar"))
    assert [Path(t).name for t in tars] == ["00000.tar", "00001.tar"]
    assert len(webdataset.list_tars(str(tmp_path / "a" / "*.tar"))) == 3
    assert len(webdataset.list_tars(str(tmp_path / "a"))) == 3
    with pytest.raises(ValueError, match="decompress"):
        webdataset.Config(path=str(tmp_path / "a" / "x.tar.gz"))
    with pytest.raises(FileNotFoundError, match="not found"):
        webdataset.Config(path=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="no .tar shards"):
        webdataset.list_tars(str(tmp_path / "a" / "*.tgz"))


def test_shards_at_an_fsspec_url(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    for i in range(3):
        fs.pipe(f"/i2d/{i:05d}.tar", (I2D / f"{i:05d}.tar").read_bytes())
        fs.pipe(f"/i2d/{i:05d}.parquet", (I2D / f"{i:05d}.parquet").read_bytes())
    res = run_stage("ingest", {"source": "webdataset", "path": "memory://i2d", "size": 64}, tmp_path / "o",
                    progress=False)
    assert res.stats["kept"] == len(_img2dataset_successes()), res.stats


def test_shards_over_http(tmp_path):
    from bench.ingest_vs_img2dataset import serve

    proc, port = serve(I2D)
    try:
        http = {"allowed_networks": ["127.0.0.0/8"], "cache_dir": str(tmp_path / "cache"), "rate_limit": 0}
        cfg = {"source": "webdataset", "path": f"http://127.0.0.1:{port}/{{00000..00002}}.tar", "size": 64,
               "options": {"http": http}, "download": http}
        res = run_stage("ingest", cfg, tmp_path / "o", progress=False)
    finally:
        proc.terminate()
    assert res.stats["kept"] == len(_img2dataset_successes()), res.stats


def test_pipeline_file_and_multi_source(tmp_path):
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"name": "wds", "stages": [{"stage": "ingest", "config": {
        "source": "multi", "size": 64, "options": {"sources": [
            {"source": "webdataset", "path": str(I2D)},
            {"source": "webdataset", "name": "again", "path": str(I2D / "00000.tar")}]}}}]}))
    run_pipeline(str(pipe), str(tmp_path / "runs"), progress=False)
    rows = _rows(tmp_path / "runs" / "wds" / "00_ingest")
    # the second entry lists shard 00000 again: the same keys, so duplicate_key, never a second copy
    assert Counter(r["reason"] or "kept" for r in rows) == {"kept": 6, "duplicate_key": 3}
    with pytest.raises(ValueError, match="unknown option"):
        build_source_config("webdataset", str(I2D), {"caption_col": "x"})


def test_cli(tmp_path):
    res = CliRunner().invoke(app, ["ingest", "webdataset", str(I2D), "--out", str(tmp_path / "o"), "--size", "64"])
    assert res.exit_code == 0, res.output
    assert "6 kept of 6" in res.output
