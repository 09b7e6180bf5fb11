"""`surd release`: full releases load with `datasets` from their own card; URL-only releases, served from a local
server, rebuild into the same samples (sha256 equal), and an image changed on the server becomes `hash_mismatch`."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest
import yaml

from surd import shards
from surd.export.release import ReleaseConfig, Rules, load_rules, release
from surd.pipeline import run_pipeline
from tests.card_run import CLIP_REJECT, NSFW_FLAGGED, PHOTOS, REPO, make_run, manifest_rows
from tests.fault_server import FAST_HTTP


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("release"))


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def image_host(tmp_path):
    """The sample photos served over HTTP from a folder on 127.0.0.1 (the folder can be changed under it)."""
    root = tmp_path / "www"
    root.mkdir()
    for name in PHOTOS:
        shutil.copy(REPO / "manifests" / "sample" / "images" / f"{name}.jpg", root / f"{name}.jpg")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_full_release_loads_with_datasets_from_its_card(run_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "rel"
    summary = release(run_dir, out, ReleaseConfig(mode="full"))
    assert summary["released"] == 6 and summary["excluded"] == {}
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "data/train/*"}]
    # num_examples is verified against the card's dataset_info
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 6 and ds[0]["image"].size == (512, 512)
    assert set(ds["source_id"]) == set(PHOTOS) - CLIP_REJECT
    assert {f["name"] for f in meta["dataset_info"][0]["features"]} == set(ds.column_names)
    # the card describes exactly this release
    assert pq.read_table(out / "provenance.parquet").num_rows == 6
    with pytest.raises(ValueError, match="not empty"):
        release(run_dir, out, ReleaseConfig(mode="full"))


@pytest.mark.parametrize("rules,kept,excluded", [
    (Rules(only_licence=("CC0-1.0",)), {"astronaut", "sailboat", "windmill_tulips"}, {"excluded_licence": 3}),
    (Rules(exclude_source=("alpha",)), {"castle", "lighthouse", "snowman"}, {"excluded_source": 3}),
    (Rules(max_nsfw="unrated"), set(PHOTOS) - CLIP_REJECT - {NSFW_FLAGGED}, {"excluded_nsfw": 1}),
    (Rules(max_nsfw="sfw"), None, None),
])
def test_rules_leave_out_what_they_name_and_count_it(run_dir, tmp_path, rules, kept, excluded):
    if kept is None:  # nothing here is rated safe by a source or a classifier: nothing to release, said so
        with pytest.raises(ValueError, match="nothing to release"):
            release(run_dir, tmp_path / "r", ReleaseConfig(rules=rules))
        return
    summary = release(run_dir, tmp_path / "r", ReleaseConfig(rules=rules))
    rows = pq.read_table(tmp_path / "r" / "provenance.parquet").to_pylist()
    assert {r["source_id"] for r in rows} == kept and summary["excluded"] == excluded
    meta = yaml.safe_load((tmp_path / "r" / "README.md").read_text().split("---\n")[1])
    assert ("not-for-all-audiences" in meta["tags"]) == (NSFW_FLAGGED in kept)


def test_rule_files_and_bad_rules(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("exclude_source: [alpha]\nmax_nsfw: unrated\n")
    assert load_rules(f, exclude_source=["beta"]) == Rules(exclude_source=("alpha", "beta"), max_nsfw="unrated")
    f.write_text("exclude: [alpha]\n")
    with pytest.raises(ValueError, match="rule file maps"):
        load_rules(f)
    with pytest.raises(ValueError, match="max_nsfw must be one of"):
        Rules(max_nsfw="pg13")


def test_urls_release_refuses_samples_without_a_url(run_dir, tmp_path):
    with pytest.raises(ValueError, match="have no image URL.*--exclude-source"):
        release(run_dir, tmp_path / "u", ReleaseConfig(mode="urls"))
    assert not (tmp_path / "u").exists()


def _url_run(tmp_path, host: str):
    rows = manifest_rows()[:-1]
    lst = tmp_path / "list.jsonl"
    lst.write_text("".join(json.dumps({**r, "url": f"{host}/{r['source_id']}.jpg"}) + "\n" for r in rows))
    ingest = {"source": "urls", "path": str(lst), "shard_size": 4, "download": FAST_HTTP,
              "options": {"caption_col": "complex_prompt", "id_col": "source_id", "source_col": "source"}}
    return make_run(tmp_path, "urlrun", ingest)


def _rebuild(release_dir, runs_dir):
    doc = yaml.safe_load((release_dir / "rebuild.yaml").read_text())
    doc["stages"][0]["config"]["path"] = str(release_dir / "urls.parquet")
    doc["stages"][0]["config"]["download"] = FAST_HTTP  # the test host is on 127.0.0.1 (the SSRF guard's business)
    path = release_dir.parent / "rebuild-test.yaml"
    path.write_text(yaml.safe_dump(doc))
    run_pipeline(path, runs_dir, progress=False)
    stage = runs_dir / doc["name"] / "00_ingest"
    return {r["key"]: r for stem in shards.list_done(stage) for r in shards.read_sidecar(stage, stem)}


def test_urls_release_rebuilds_the_same_samples_and_flags_a_changed_image(tmp_path, image_host):
    root, host = image_host
    run = _url_run(tmp_path, host)
    assert shards.read_stats(run / "00_ingest")["00000"]["rejected"] == {}, "the image host must serve every image"
    out = tmp_path / "urlrel"
    summary = release(run, out, ReleaseConfig(mode="urls", embeddings=True))
    assert summary["released"] == 6 and not (out / "data").exists()
    table = pq.read_table(out / "urls.parquet").to_pylist()
    assert list(table[0])[:3] == ["url", "caption", "simple_prompt"]  # img2dataset's url + caption columns
    assert all(r["url"].startswith(host) and len(r["sha256"]) == 64 for r in table)
    released = {r["key"]: r["sha256"] for r in table}
    castle = next(r for r in table if r["source_id"] == "castle")
    assert castle["clip_embedding"] == [6.0, 0.5, -1.0, 2.0] and "llm_embedding" not in castle  # no embed stage ran

    rebuilt = _rebuild(out, tmp_path / "third-party")
    assert {k: r["meta"]["sha256"] for k, r in rebuilt.items() if r["status"] == "kept"} == released  # same keys

    changed = next(r for r in table if r["source_id"] == "castle")
    (root / "castle.jpg").write_bytes((root / "snowman.jpg").read_bytes())  # the host now serves other bytes
    again = _rebuild(out, tmp_path / "later")
    bad = {k: r for k, r in again.items() if r["status"] == "rejected"}
    assert list(bad) == [changed["key"]] and bad[changed["key"]]["reason"] == "hash_mismatch"
    assert changed["sha256"] in bad[changed["key"]]["detail"]
    assert sum(r["status"] == "kept" for r in again.values()) == 5
