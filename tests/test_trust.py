"""surd.trust: the one place that decides which user-given paths and URLs surd reads or writes, and the sources,
pipeline and review server that ask it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surd import trust
from surd.fetch import fetch_all
from surd.pipeline import load_pipeline
from surd.sources import folder, manifest, urls
from tests.conftest import jpeg_bytes


@pytest.mark.parametrize(("ref", "reason"), [
    ("https://example.com/a.jpg", None),
    ("http://example.com:8080/a.jpg", None),
    ("/etc/passwd", "local_file_refused"),
    ("file:///etc/passwd", "local_file_refused"),
    ("images/a.jpg", "local_file_refused"),
    ("zip:///data/part.zip::a.png", "local_file_refused"),
    ("s3://bucket/a.jpg", "object_store_refused"),
    ("ftp://example.com/a.jpg", "unsupported_scheme"),
    ("gopher://example.com/", "unsupported_scheme"),
    ("http://[::1", "bad_url"),
    ("http://example.com:99999/a.jpg", "bad_url"),
    ("http://example.com:x/a.jpg", "bad_url"),
    ("http://", "bad_url"),
    ("http:///a.jpg", "bad_url"),
    ("http://exa mple.com/a.jpg", "bad_url"),
    ("https://example.com/a\x00.jpg", "bad_url"),
    ("s3://", "bad_url"),
])  # fmt: skip
def test_check_ref_fetches_only_web_urls_by_default(ref, reason):
    got = trust.check_ref(ref)
    assert (got.reason if got else None) == reason
    if got:
        assert got.detail  # every refusal says why


def test_check_ref_opt_ins():
    assert trust.check_ref("/x/a.jpg", allow_local_files=True) is None
    assert trust.check_ref("file:///x/a.jpg", allow_local_files=True) is None
    assert trust.check_ref("s3://b/a.jpg", allow_local_files=True).reason == "object_store_refused"
    assert trust.check_ref("s3://b/a.jpg", allow_object_store=True) is None
    assert trust.check_ref("http://[::1", allow_local_files=True).reason == "bad_url"  # no opt-in makes it parse


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_check_ref_never_raises(ref):
    got = trust.check_ref(ref)
    assert got is None or (got.reason and got.detail)


def test_fetch_all_turns_an_unparseable_url_into_its_own_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x" * 10)
    out = fetch_all(["http://[::1", str(tmp_path / "a.jpg"), "http://h:70000/"], {})
    assert [getattr(o, "reason", o) for o in out] == ["bad_url", b"x" * 10, "bad_url"]


def _url_list(tmp_path: Path, refs: list[str]) -> Path:
    path = tmp_path / "list.jsonl"
    path.write_text("".join(json.dumps({"url": r, "caption": "a cat"}) + "\n" for r in refs))
    return path


def test_url_list_rejects_local_files_and_bad_urls_row_by_row(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes())
    refs = ["https://example.com/a.jpg", str(tmp_path / "a.jpg"), f"file://{tmp_path}/a.jpg", "http://[::1", "s3://b/k"]
    rows = list(urls.list_rows(urls.Config(path=str(_url_list(tmp_path, refs)))))
    assert [r["error"] for r in rows] == [None, "local_file_refused", "local_file_refused", "bad_url",
                                         "object_store_refused"]
    assert "--allow-local-files" in rows[1]["error_detail"]
    opted = list(urls.list_rows(urls.Config(path=str(_url_list(tmp_path, refs)), allow_local_files=True)))
    assert [r["error"] for r in opted] == [None, None, None, "bad_url", "object_store_refused"]


def test_url_list_opt_in_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match="allow_local_files must be true or false, got 'yes'"):
        urls.Config(path=str(_url_list(tmp_path, ["https://e.com/a"])), allow_local_files="yes")


def test_manifest_images_must_resolve_inside_its_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg_bytes())
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    (data / "img" / "ok.jpg").write_bytes(jpeg_bytes())
    os.symlink(outside / "secret.jpg", data / "img" / "link.jpg")
    recs = [{"image": "img/ok.jpg"}, {"image": str(outside / "secret.jpg")}, {"image": "../outside/secret.jpg"},
            {"image": "img/link.jpg"}, {"image": f"file://{outside}/secret.jpg"}, {"image": "https://e.com/x.jpg"}]
    (data / "m.jsonl").write_text("".join(json.dumps({**r, "complex_prompt": "p"}) + "\n" for r in recs))
    rows = list(manifest.list_rows(manifest.Config(path=str(data / "m.jsonl"))))
    assert [r["error"] for r in rows] == [None, "outside_root", "outside_root", "outside_root", "outside_root", None]
    assert str(outside / "secret.jpg") in rows[3]["error_detail"]  # the symlink's target is named
    allowed = manifest.Config(path=str(data / "m.jsonl"), allowed_roots=(str(outside),))
    assert [r["error"] for r in manifest.list_rows(allowed)] == [None] * 6


def test_allowed_roots_are_checked(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.jpg", "complex_prompt": "p"}))
    with pytest.raises(ValueError, match="not a local folder"):
        manifest.Config(path=str(tmp_path / "m.jsonl"), allowed_roots=(str(tmp_path / "nope"),))
    with pytest.raises(ValueError, match="must be a list"):
        manifest.Config(path=str(tmp_path / "m.jsonl"), allowed_roots=str(tmp_path))


def test_folder_symlink_out_of_the_folder_is_rejected(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(jpeg_bytes())
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.png").write_bytes(jpeg_bytes())
    os.symlink(outside / "secret.png", root / "b.png")
    os.symlink(outside, root / "sub")
    lines = [{"file_name": n, "prompt": "p", "text": "t"} for n in ("a.png", "b.png", "sub/secret.png")]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows = list(folder.list_rows(folder.Config(path=str(root))))
    assert [r["error"] for r in rows] == [None, "outside_root", "outside_root"]
    rows = list(folder.list_rows(folder.Config(path=str(root), allowed_roots=(str(outside),))))
    assert [r["error"] for r in rows] == [None, None, None]


@pytest.mark.parametrize("name", ["..", "../evil", "a/b", "/abs", ".", "", ".hidden", "x" * 129, "a..b", "a\x00b"])
def test_unsafe_names_cannot_become_paths(name):
    with pytest.raises(ValueError, match="cannot be used as a folder name"):
        trust.safe_name(name)


def test_safe_names_and_child():
    assert trust.safe_name("sample_v2.1-x") == "sample_v2.1-x"
    assert trust.child("s3://b/runs", "x") == "s3://b/runs/x"
    assert trust.child("runs", "x") == os.path.join("runs", "x")
    with pytest.raises(ValueError):
        trust.child("runs", "..")


def test_pipeline_name_cannot_leave_the_runs_dir(tmp_path):
    (tmp_path / "p.yaml").write_text("name: ../../escape\nstages:\n  - stage: ingest\n    config: {}\n")
    with pytest.raises(ValueError, match=r"name must be a plain folder name .*, got '../../escape'"):
        load_pipeline(tmp_path / "p.yaml")


def test_served_file_stays_inside_its_root(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("hi")
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", root / "link")
    root = root.resolve()
    assert trust.served_file(root, "/") == root / "index.html"
    for bad in ("/../secret", "/%2e%2e/secret", "/link", "/nope", "/a%00b", "//etc/passwd"):
        assert trust.served_file(root, bad) is None, bad


@pytest.mark.parametrize("image", ["file:///etc/passwd", "/etc/passwd", "s3://private/x.jpg", "http://[::1"])
def test_web_sources_fetch_only_http_images(image):
    from surd.sources import civitai

    item = {"id": 1, "url": image, "meta": {"prompt": "a cat"}, "type": "image"}
    row = civitai.item_row(item, civitai.Config(original=False))
    assert row["error"] in ("local_file_refused", "object_store_refused", "bad_url") and row["error_detail"]


@pytest.mark.parametrize("image", ["file:///etc/passwd", "s3://private/x.jpg"])
def test_lexica_fetches_only_http_images(image):
    from surd.sources import lexica

    row = lexica.item_row({"id": "1", "src": image, "prompt": "a cat"}, "cats", lexica.Config(queries=("cats",)))
    assert row["error"] in ("local_file_refused", "object_store_refused")


def test_sdonline_rows_go_through_web_row():
    import inspect

    from surd.sources import sdonline

    assert "web_row(" in inspect.getsource(sdonline.detail_row)  # the same check as the other web sources


def test_web_row_keeps_http_images_and_earlier_errors():
    from surd.sources.rows import web_row

    ok = web_row(source="s", source_id="1", image="https://e.com/a.jpg", complex_prompt="p")
    assert ok["error"] is None
    first = web_row(source="s", source_id="1", image="/etc/passwd", complex_prompt=None, error="missing_prompt")
    assert first["error"] == "missing_prompt"  # the listing's own reason is kept
    assert web_row(source="s", source_id="1", image="/etc/passwd", complex_prompt="p")["error"] == "local_file_refused"
