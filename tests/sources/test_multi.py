"""Several sources in one ingest (`source: multi`): a pipeline file collecting from web and local sources at once,
budgets per source, keys unique per source, duplicates across sources removed with their reason, state per source,
and pipelines/paper.yaml stopping at once, with what to do, when the network is not there."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from surd import shards
from surd.pipeline import run_pipeline
from surd.sample import make_key
from surd.sources import build_source_config
from tests.conftest import REPO, jpeg_bytes
from tests.fault_server import FaultServer, Route, make_jpeg

HTTP = {"timeout": 2.0, "retries": 0, "rate_limit": 0, "allowed_networks": ["127.0.0.0/8"]}


def _civitai_item(i: int, srv: FaultServer) -> dict:
    return {"id": 1000 + i, "url": srv.url(f"/civ/uuid-{i}/width=450/{i}.jpeg"), "width": 640, "height": 480,
            "nsfw": False, "nsfwLevel": "None", "browsingLevel": 1, "baseModel": "SD 1.5",
            "meta": {"prompt": f"castle {i}, masterpiece", "negativePrompt": "blurry"}}  # fmt: skip


def _local_sources(tmp: Path, shared: bytes) -> tuple[Path, Path]:
    """An official-layout folder (2 images) and a manifest (2 images, one byte-identical to a folder image)."""
    folder = tmp / "surd_folder"
    (folder / "image").mkdir(parents=True)
    for i in range(2):
        (folder / "image" / f"f{i}.png").write_bytes(shared if i == 0 else jpeg_bytes(500, 400, seed=40 + i))
    (folder / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": f"f{i}", "text": f"a folder picture {i}", "prompt": f"folder {i}, 8k"}) + "\n"
        for i in range(2)))
    (tmp / "m").mkdir()
    (tmp / "m" / "same.jpg").write_bytes(shared)
    (tmp / "m" / "other.jpg").write_bytes(jpeg_bytes(600, 400, seed=50))
    manifest = tmp / "m" / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"image": n, "complex_prompt": f"manifest {n}"}) + "\n"
                                for n in ("same.jpg", "other.jpg")))
    return folder, manifest


def _pipeline(tmp: Path, srv: FaultServer, folder: Path, manifest: Path) -> Path:
    entries = [
        {"source": "civitai", "max_items": 3, "options": {"base_url": srv.base, "limit": 2, "http": HTTP}},
        {"source": "lexica", "name": "lexica_art", "options": {"base_url": srv.base, "queries": ["castle"],
                                                               "http": HTTP}},
        {"source": "folder", "path": str(folder)},
        {"source": "manifest", "path": str(manifest)},
    ]
    doc = {"name": "multi", "stages": [{"stage": "ingest", "config": {
        "source": "multi", "options": {"sources": entries}, "shard_size": 4,
        "download": {"allowed_networks": ["127.0.0.0/8"], "timeout": 2.0, "retries": 0, "rate_limit": 0}}}]}
    path = tmp / "multi.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_pipeline_collects_several_sources_into_one_stage(tmp_path):
    shared = jpeg_bytes(640, 480, seed=7)
    with FaultServer() as srv:
        srv.civitai_items = [_civitai_item(i, srv) for i in range(5)]
        for i in range(5):
            srv.routes[f"/civ/uuid-{i}/original=true/{i}.jpeg"] = Route(body=shared if i == 0 else make_jpeg(300, 300, i))
        # Lexica's id 1000 is also a Civitai id: a different source, so a different key.
        srv.lexica["castle"] = [{"id": "1000", "src": srv.url("/lex/a.jpg"), "prompt": "a castle, lexica",
                                 "width": 512, "height": 512}, {"id": "l2", "src": srv.url("/lex/b.jpg"),
                                                                "prompt": "lexica b", "width": 512, "height": 512}]
        srv.routes["/lex/a.jpg"] = Route(body=make_jpeg(300, 300, 21))
        srv.routes["/lex/b.jpg"] = Route(body=shared)  # the same bytes as civitai's first image
        folder, manifest = _local_sources(tmp_path, shared)
        pipeline = _pipeline(tmp_path, srv, folder, manifest)
        ((_, res),) = run_pipeline(pipeline, tmp_path / "runs", progress=False)
        listed = srv.count("/api/v1/images")
    out = tmp_path / "runs" / "multi" / "00_ingest"
    rows = {r["key"]: r for stem in shards.list_done(out) for r in shards.read_sidecar(out, stem)}
    assert res.ok and res.stats["in"] == 3 + 2 + 2 + 2 == len(rows)  # civitai cut at its max_items: 3 of 5
    assert listed == 2  # pages of 2: the listing stopped once the budget was met
    by_source: dict[str, list[str]] = {}
    for r in rows.values():
        by_source.setdefault(r["meta"]["source"], []).append(r["meta"]["source_id"])
    assert sorted(by_source) == ["civitai", "lexica", "local", "surd"]
    assert make_key("civitai", "1000") in rows and make_key("lexica", "1000") in rows
    # Exact duplicates across sources: the first by shard order (civitai's) is kept, the others say why.
    dups = sorted((r["meta"]["source"], r["meta"]["source_id"]) for r in rows.values()
                  if r["reason"] == "duplicate_image")
    assert dups == [("lexica", "l2"), ("local", "same.jpg"), ("surd", "f0")]
    assert rows[make_key("civitai", "1000")]["status"] == "kept"
    assert res.stats["kept"] == res.stats["in"] - 3 and res.stats["rejected"] == {"duplicate_image": 3}
    state = out / "_state"
    assert (state / "civitai" / "civitai_pages.jsonl").is_file()
    assert (state / "lexica_art" / "lexica_pages.jsonl").is_file()

    # A rerun with the servers gone: listings replay from _state, done shards are skipped, nothing is fetched.
    ((_, again),) = run_pipeline(pipeline, tmp_path / "runs", progress=False)
    assert again.ok and again.done == [] and again.stats == res.stats


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: a connection is refused at once
    return port


def test_paper_pipeline_without_network_stops_at_once_saying_what_to_do(tmp_path):
    doc = yaml.safe_load((REPO / "pipelines" / "paper.yaml").read_text())
    ingest = doc["stages"][0]["config"]
    assert ingest["source"] == "multi"
    names = [e["source"] for e in ingest["options"]["sources"]]
    assert names == ["civitai", "lexica", "sdonline"]  # the paper's three web sources
    dead = f"http://127.0.0.1:{_closed_port()}"
    for entry in ingest["options"]["sources"]:  # the real file, with its API roots on a closed local port
        entry["options"].update(base_url=dead, http={"allowed_networks": ["127.0.0.0/8"], "respect_robots": True})
    pipeline = tmp_path / "paper.yaml"
    pipeline.write_text(yaml.safe_dump(doc))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "surd", "run", str(pipeline), "--runs-dir", str(tmp_path / "runs"),
                           "--until", "clip_filter"],  # as the file says: review before the later steps
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"error: civitai: cannot reach {dead}: ") and "refused" in lines[0]
    assert "connect this machine" in lines[0] and "rerun the same command" in lines[0]
    assert "source: folder or manifest" in lines[0]
    assert elapsed < 15, f"took {elapsed:.1f} s: an offline run must stop at once, not retry"


def test_paper_pipeline_with_no_name_resolution_stops_before_any_request(tmp_path, monkeypatch, connections):
    import surd.fetch.policy as policy

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(policy.socket, "getaddrinfo", no_dns)  # the real paper.yaml, as offline as can be
    with pytest.raises(ConnectionError, match=r"civitai: cannot reach https://civitai.com: the name civitai.com "
                                              r"cannot be resolved"):
        run_pipeline(REPO / "pipelines" / "paper.yaml", tmp_path / "runs", progress=False, until="clip_filter")
    assert connections == []


@pytest.mark.parametrize("entries,message", [
    ([], "needs a `sources:` list"),
    ([{"source": "lexica", "options": {"query": ["x"]}}], r"ingest sources\[0\] \(lexica\): unknown option\(s\) \['query'\]"),
    ([{"source": "lexica", "opts": {}}], r"unknown key\(s\) \['opts'\]"),
    ([{"source": "folder", "path": "/nope"}, {"source": "folder", "path": "/nope2"}], "two entries are named 'folder'"),
    ([{"source": "multi", "options": {"sources": [{"source": "lexica"}]}}], "cannot hold another"),
    ([{"source": "nosuch"}], "unknown source 'nosuch'"),
    ([{"source": "lexica", "max_items": -1, "options": {"queries": ["x"]}}], "max_items must be an integer >= 0"),
])
def test_entry_errors_name_the_entry_and_the_fix(entries, message):
    with pytest.raises((ValueError, KeyError, FileNotFoundError), match=message):
        build_source_config("multi", "", {"sources": entries})
