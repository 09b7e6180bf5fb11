"""End to end: `ingest` from web sources against the fault server, every fault on at once."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from surd import shards
from surd.cli import app
from surd.runner import run_stage, total_stats
from tests.fault_server import FaultServer, Route, make_bomb_png, make_jpeg
from tests.sources.test_civitai import civitai_item
from tests.sources.test_diffusiondb import make_diffusiondb

DOWNLOAD = {"timeout": 1.0, "retries": 2, "backoff_base": 0.02, "backoff_max": 0.05, "rate_limit": 0,
            "allowed_networks": ["127.0.0.0/8"]}  # fmt: skip
IMAGE = {"size": 64, "min_size": 32, "quality": 90}


def jpeg(seed: int) -> bytes:
    return make_jpeg(96, 80, seed=seed)


def fault_routes(srv: FaultServer) -> dict[str, tuple[Route, str]]:
    """path → (route, expected outcome: "kept" or the reject reason)."""
    return {
        "/ok.jpg": (Route(body=jpeg(1)), "kept"),
        "/busy.jpg": (Route(body=jpeg(2), fail_times=2, fail_status=503), "kept"),
        "/limited.jpg": (Route(body=jpeg(3), fail_times=1, fail_status=429, retry_after="1"), "kept"),
        "/reset_once.jpg": (Route(body=jpeg(4), reset_times=1), "kept"),
        "/moved.jpg": (Route(redirect="/moved/final.jpg"), "kept"),
        "/moved/final.jpg": (Route(body=jpeg(5)), None),
        "/octet.jpg": (Route(body=jpeg(6), content_type="application/octet-stream"), "kept"),
        "/down.jpg": (Route(body=jpeg(7), fail_times=99, fail_status=500), "http_5xx_exhausted"),
        "/slow.jpg": (Route(body=jpeg(8), delay=2.5), "timeout"),
        "/reset.jpg": (Route(body=jpeg(9), reset_times=99), "connection_error"),
        "/truncated.jpg": (Route(body=jpeg(10)[: len(jpeg(10)) // 2]), "decode_error"),
        "/html.jpg": (Route(body=b"<!doctype html><title>Error</title>", content_type="text/html"),
                      "html_instead_of_image"),  # fmt: skip
        "/wrong_type.jpg": (Route(body=jpeg(11), content_type="text/plain"), "not_an_image_content_type"),
        "/loop.jpg": (Route(redirect="/loop2.jpg"), "redirect_loop"),
        "/loop2.jpg": (Route(redirect="/loop.jpg"), None),
        "/bomb.png": (Route(body=make_bomb_png(), content_type="image/png"), "decompression_bomb"),
        "/metadata.jpg": (Route(redirect="http://169.254.169.254/latest/meta-data/"), "ssrf_blocked"),
        "/intranet.jpg": (Route(redirect="http://10.0.0.1/admin.jpg"), "ssrf_blocked"),
        "/noai.jpg": (Route(body=jpeg(12), headers={"X-Robots-Tag": "noai"}), "opted_out"),
        "/gone.jpg": (Route(body=b"gone", status=404, content_type="text/plain"), "http_404"),
        "/copy_of_ok.jpg": (Route(body=jpeg(1)), "duplicate_image"),
    }


def test_every_fault_at_once(server, connections, tmp_path):
    routes = fault_routes(server)
    for path, (route, _) in routes.items():
        server.routes[path] = route
    listed = [p for p, (_, outcome) in routes.items() if outcome is not None]
    lines = ["url,caption"] + [f"{server.url(p)},prompt for {p}" for p in listed]
    lines += [f"{server.url('/ok.jpg')},listed twice", f"{server.url('/noprompt.jpg')},"]
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    cfg = {"source": "urls", "path": str(tmp_path / "list.csv"), "download": {**DOWNLOAD, "threads": 8},
           "shard_size": 8, **IMAGE}  # fmt: skip
    result = run_stage("ingest", cfg, tmp_path / "out", progress=False)
    assert not result.failed

    outcome = {}
    for stem in shards.list_done(tmp_path / "out"):
        for row in shards.read_sidecar(tmp_path / "out", stem):
            outcome.setdefault(row["meta"].get("url") or row["key"], []).append(row["reason"] or row["status"])
    expected = {server.url(p): [o] for p, (_, o) in routes.items() if o is not None}
    expected[server.url("/ok.jpg")] = ["kept", "duplicate_key"]
    expected[server.url("/noprompt.jpg")] = ["missing_prompt"]
    assert outcome == expected

    stats = total_stats(tmp_path / "out")
    assert stats["in"] == len(listed) + 2 == stats["kept"] + sum(stats["rejected"].values())
    kept = list(shards.iter_dataset(tmp_path / "out"))
    assert len(kept) == stats["kept"] == 6
    for sample in kept:  # no corrupt image written: every kept image decodes completely
        img = Image.open(io.BytesIO(sample["jpg"]))
        img.load()
        assert img.size == (64, 64) and sample["json"]["sha256"]
    assert server.count("/busy.jpg") == 3 and server.count("/down.jpg") == 3
    first, second = server.hits["/limited.jpg"]
    assert second - first >= 0.98


def run_civitai_cli(server: FaultServer, out) -> object:
    args = ["ingest", "civitai", "--base-url", server.base, "--limit", "2", "--out", str(out),
            "--allow-private-addresses", "--rate-limit", "0", "--timeout", "2", "--download-retries", "1",
            "--retries", "0", "--size", "64", "--min-size", "32", "--shard-size", "3"]  # fmt: skip
    return CliRunner().invoke(app, args)


def test_civitai_cli_interrupted_and_resumed(server, tmp_path, monkeypatch):
    server.civitai_items = [civitai_item(i, server, prompt=i != 3) for i in range(7)]
    for i in range(7):
        server.routes[f"/xG1/uuid-{i}/original=true/{1000 + i}.jpeg"] = Route(body=jpeg(100 + i))
    monkeypatch.setenv("CIVITAI_API_TOKEN", "tok-never-logged")
    server.civitai_fail_cursors = {"4|1700000002"}
    first = run_civitai_cli(server, tmp_path / "out")
    assert first.exit_code != 0 and "tok-never-logged" not in first.output
    server.civitai_fail_cursors.clear()
    second = run_civitai_cli(server, tmp_path / "out")
    assert second.exit_code == 0, second.output
    assert "tok-never-logged" not in second.output
    assert "tok-never-logged" not in (tmp_path / "out" / "_config.json").read_text()
    stats = total_stats(tmp_path / "out")
    assert stats["in"] == 7 and stats["kept"] == 6 and stats["rejected"] == {"missing_prompt": 1}
    kept = {s["json"]["source_id"]: s["json"] for s in shards.iter_dataset(tmp_path / "out")}
    assert sorted(kept) == [str(1000 + i) for i in range(7) if i != 3]
    j = kept["1000"]
    assert j["complex_prompt"] == "masterpiece, castle 0" and j["negative_prompt"] == "blurry"
    assert j["extra"]["seed"] == 0 and j["extra"]["sampler"] == "Euler a" and j["nsfw"]["level"] == "None"
    assert j["url"] == f"{server.base}/images/1000"
    pages = [p for p, _ in server.requests if p.startswith("/api/v1/images")]
    assert sum("cursor" not in p for p in pages) == 1  # the first page was never listed again
    assert all(server.count(f"/xG1/uuid-{i}/original=true/{1000 + i}.jpeg") == 1 for i in range(7) if i != 3)


def test_lexica_and_diffusiondb_ingest(server, connections, tmp_path):
    server.lexica = {"fox": [{"id": f"l{i}", "src": server.url(f"/lx/{i}.jpg"), "prompt": f"fox {i}", "width": 96,
                              "height": 80, "model": "aperture"} for i in range(3)]}  # fmt: skip
    for i in range(3):
        server.routes[f"/lx/{i}.jpg"] = Route(body=jpeg(200 + i))
    cfg = {"source": "lexica", "options": {"queries": ["fox"], "base_url": server.base, "http": DOWNLOAD},
           "download": DOWNLOAD, **IMAGE}  # fmt: skip
    run_stage("ingest", cfg, tmp_path / "lex", progress=False)
    assert total_stats(tmp_path / "lex")["kept"] == 3

    meta = make_diffusiondb(tmp_path / "ddb")
    cfg = {"source": "diffusiondb", "path": str(meta), "options": {"max_image_nsfw": 0.5}, **IMAGE}
    run_stage("ingest", cfg, tmp_path / "ddb_out", progress=False)
    stats = total_stats(tmp_path / "ddb_out")
    assert stats["in"] == 7 and stats["kept"] == 4
    assert stats["rejected"] == {"nsfw_image": 2, "missing_in_zip": 1}
    licenses = {s["json"]["license"] for s in shards.iter_dataset(tmp_path / "ddb_out")}
    assert licenses == {"CC0-1.0"}


@pytest.mark.parametrize("source", ["urls", "lexica", "diffusiondb"])
def test_cli_commands_build_the_ingest_config(server, tmp_path, source):
    for i in range(2):
        server.routes[f"/c/{i}.jpg"] = Route(body=jpeg(300 + i))
    if source == "urls":
        (tmp_path / "l.jsonl").write_text("".join(f'{{"URL": "{server.url(f"/c/{i}.jpg")}", "TEXT": "t{i}"}}\n'
                                                  for i in range(2)))  # fmt: skip
        head = ["urls", str(tmp_path / "l.jsonl")]
    elif source == "lexica":
        server.lexica = {"q": [{"id": f"c{i}", "src": server.url(f"/c/{i}.jpg"), "prompt": "p"} for i in range(2)]}
        head = ["lexica", "-q", "q", "--base-url", server.base]
    else:
        head = ["diffusiondb", str(make_diffusiondb(tmp_path / "ddb", n_per_part=2)), "--part-id", "2"]
    workers = 2 if source == "urls" else 1  # one multi-process run is enough (spawning workers takes seconds)
    args = ["ingest", *head, "--out", str(tmp_path / "out"), "--allow-private-addresses", "--workers", str(workers),
            "--rate-limit", "8", "--threads", "4", "--size", "64", "--min-size", "32", "--shard-size", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = shards.read_config(tmp_path / "out")["config"]
    assert saved["source"] == source and saved["size"] == 64 and saved["shard_size"] == 1
    assert saved["download"]["rate_limit"] == 8.0  # per host for the whole run, however many workers
    assert saved["download"]["threads"] == 4 and saved["download"]["allow_private"] is True
    stats = total_stats(tmp_path / "out")
    assert stats["in"] == stats["kept"] == 2 and stats["shards"] == 2


def test_civitai_cli_append_equals_a_fresh_ingest_of_the_grown_listing(server, tmp_path):
    """The Civitai-like server gains images at its listing's end (sort Oldest) between two runs: `surd ingest
    civitai --append` lists past the saved end, downloads only the new images into new shards, and ends with the
    samples of a fresh ingest over the whole listing (one of the new images repeats an old one's bytes)."""
    server.civitai_items = [civitai_item(i, server, prompt=i != 3) for i in range(7)]
    for i in range(12):
        server.routes[f"/xG1/uuid-{i}/original=true/{1000 + i}.jpeg"] = Route(body=jpeg(100 + (i if i != 10 else 4)))

    def ingest(out, *extra):
        return CliRunner().invoke(app, ["ingest", "civitai", "--base-url", server.base, "--limit", "2", "--sort",
                                        "Oldest", "--out", str(out), "--allow-private-addresses", "--rate-limit",
                                        "0", "--size", "64", "--min-size", "32", "--shard-size", "3", *extra])

    assert ingest(tmp_path / "a").exit_code == 0
    server.civitai_items += [civitai_item(i, server) for i in range(7, 12)]
    again = ingest(tmp_path / "a")  # without --append: the saved listing, nothing new
    assert again.exit_code == 0 and "(0 written, 3 already done)" in again.output
    images = {i: server.count(f"/xG1/uuid-{i}/original=true/{1000 + i}.jpeg") for i in range(12)}
    res = ingest(tmp_path / "a", "--append")
    assert res.exit_code == 0, res.output
    assert "(2 written, 3 already done)" in res.output and "rejected duplicate_image: 1" in res.output
    assert [server.count(f"/xG1/uuid-{i}/original=true/{1000 + i}.jpeg") - images[i] for i in range(12)] == \
        [0] * 7 + [1] * 5  # only the new images were downloaded
    assert ingest(tmp_path / "b").exit_code == 0  # a fresh run over the grown listing

    def samples(out):
        return {r["key"]: (r["status"], r["reason"], r["detail"], json.dumps(r["meta"], sort_keys=True))
                for stem in shards.list_done(out) for r in shards.read_sidecar(out, stem)}

    assert samples(tmp_path / "a") == samples(tmp_path / "b") and len(samples(tmp_path / "a")) == 12
    assert {s["__key__"]: s["jpg"] for s in shards.iter_dataset(tmp_path / "a")} == \
        {s["__key__"]: s["jpg"] for s in shards.iter_dataset(tmp_path / "b")}
    assert shards.list_done(tmp_path / "a") == ["00000", "00001", "00002", "00003", "00004"]  # 3 + 2 new shards
    assert shards.list_done(tmp_path / "b") == ["00000", "00001", "00002", "00003"]  # 12 rows in shards of 3
