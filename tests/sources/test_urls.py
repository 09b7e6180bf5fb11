"""URL lists (img2dataset's input format): column detection, explicit columns, bad lines kept apart."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from surd.sources import urls
from tests.fault_server import FAST_HTTP

HTTP = FAST_HTTP


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_url_lists_img2dataset_columns(tmp_path, fmt):
    recs = [{"URL": "https://example.com/a.jpg", "TEXT": "a red fox", "similarity": "0.3"},
            {"URL": "https://example.com/b.jpg", "TEXT": "", "similarity": "0.4"},
            {"URL": "", "TEXT": "no url", "similarity": "0.1"}]  # fmt: skip
    path = tmp_path / f"list.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(recs), path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in recs) + "[1, 2]\n")
    else:
        sep = "," if fmt == "csv" else "\t"
        path.write_text("\n".join([sep.join(recs[0])] + [sep.join(r.values()) for r in recs]) + "\n")
    rows = list(urls.list_rows(urls.Config(path=str(path))))
    assert rows[0]["image"] == "https://example.com/a.jpg" and rows[0]["complex_prompt"] == "a red fox"
    assert rows[0]["source_id"] == "https://example.com/a.jpg" and rows[0]["extra"] == {"similarity": "0.3"}
    assert [r["error"] for r in rows[:3]] == [None, "missing_prompt", "missing_url"]
    if fmt == "jsonl":
        assert rows[3]["error"] == "bad_row"


def test_url_list_explicit_columns_and_errors(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("id,link2,words\n7,https://e.com/x.png,hello\n")
    with pytest.raises(ValueError, match="--url-col"):
        list(urls.list_rows(urls.Config(path=str(path))))
    rows = list(urls.list_rows(urls.Config(path=str(path), url_col="link2", caption_col="words", id_col="id")))
    assert rows[0]["source_id"] == "7" and rows[0]["image"] == "https://e.com/x.png"
    with pytest.raises(FileNotFoundError):
        urls.Config(path=str(tmp_path / "nope.csv"))


def test_url_list_with_a_non_utf8_line_keeps_the_rest(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(b"url,caption\nhttps://e.com/a.jpg,a fox\nhttps://e.com/b.jpg,caf\xe9\nhttps://e.com/c.jpg,a cat\n")
    rows = list(urls.list_rows(urls.Config(path=str(path))))
    assert [r["complex_prompt"] for r in rows if not r["error"]] == ["a fox", "a cat"]
    assert [r["error"] for r in rows if r["error"]] == ["bad_encoding"]


def test_img2dataset_output_parquet_is_refused_with_the_command_that_reads_it():
    from tests.conftest import REPO

    shard = REPO / "tests" / "fixtures" / "img2dataset" / "out" / "00000.parquet"
    with pytest.raises(ValueError, match="surd ingest webdataset"):
        list(urls.list_rows(urls.Config(path=str(shard))))


def test_released_url_lists_give_source_simple_prompt_licence_and_expected_sha256(tmp_path):
    """A list written by `surd release --mode urls`: each row names its source (so keys rebuild), its simple prompt,
    licence and the sha256 its image must have (checked on download: hash_mismatch)."""
    recs = [{"url": "https://e.com/a.jpg", "caption": "a fox, 8k", "simple_prompt": "a fox", "license": "CC0-1.0",
             "sha256": "AB" * 32, "source": "civitai", "source_id": "17", "key": "k"},
            {"url": "https://e.com/b.jpg", "caption": "a cat", "simple_prompt": "", "license": "", "sha256": "",
             "source": "", "source_id": "18", "key": "k2"}]  # fmt: skip
    path = tmp_path / "urls.parquet"
    pq.write_table(pa.Table.from_pylist(recs), path)
    rows = list(urls.list_rows(urls.Config(path=str(path), id_col="source_id", source_col="source")))
    assert (rows[0]["source"], rows[0]["source_id"], rows[0]["simple_prompt"], rows[0]["license"]) == (
        "civitai", "17", "a fox", "CC0-1.0")
    assert rows[0]["expected_sha256"] == "ab" * 32 and rows[0]["extra"] == {"key": "k"}
    assert rows[1]["error"] == "missing_source" and "expected_sha256" not in rows[1]
    plain = list(urls.list_rows(urls.Config(path=str(path))))  # without source_col: one source for the list
    assert {r["source"] for r in plain} == {"urls"} and plain[1]["error"] is None
