"""A run read back from its records: one provenance row per sample ever seen, each stage's decision with its reason."""

from __future__ import annotations

import pytest

from surd import shards
from surd.export.runinfo import config_hash, read_run
from tests.card_run import CLIP_REJECT, PHOTOS, make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return read_run(make_run(tmp_path_factory.mktemp("runinfo")))


def test_one_row_per_sample_ever_seen_with_where_it_left(run):
    by_id = {r["source_id"]: r for r in run.rows}
    assert len(run.rows) == len(PHOTOS) + 1 == run.stages[0].n_in
    assert by_id["astronaut-again"]["rejected_at"] == "00_ingest"
    assert by_id["astronaut-again"]["reason"] == "duplicate_image"
    assert "same bytes as" in by_id["astronaut-again"]["ingest_detail"]
    for sid in CLIP_REJECT:
        row = by_id[sid]
        assert (row["status"], row["rejected_at"], row["reason"]) == ("rejected", "02_clip_filter",
                                                                      "clip_simple_below_complex")
        assert row["clip_filter_detail"].startswith("cos(simple)=")
    kept = [r for r in run.rows if r["status"] == "kept"]
    assert len(kept) == run.final.kept == 6
    assert all(r["ingest_status"] == r["dedup_status"] == r["clip_filter_status"] == "kept" for r in kept)


def test_every_stage_balances_and_rows_agree_with_the_stats(run):
    for s in run.data_stages:
        assert s.n_in == s.kept + sum(s.rejected.values())
        col = run.column_of[s.dirname]
        assert sum(r.get(f"{col}_status") == "kept" for r in run.rows) == s.kept


def test_facts_come_from_the_records(run):
    row = next(r for r in run.rows if r["source_id"] == "castle")
    assert row["source"] == "beta" and row["license"] == "Beta gallery terms" and row["creator"] == "artist1"
    assert len(row["sha256"]) == 64 and len(row["phash"]) == 16 and row["fetch_time"].endswith("+00:00")
    assert row["clip_simple_score"] == 0.31 and row["simple_prompt"] == "a photo of castle"
    assert next(r for r in run.rows if r["source_id"] == "sailboat")["nsfw_level"] == "nsfw"


def test_config_hash_is_canonical_and_recorded(run):
    assert config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1}) != config_hash({"a": [2, 1]})
    saved = shards.read_config(run.stages[1].path)
    assert run.stages[1].config_hash == config_hash(saved["config"])
    assert run.stages[1].surd_version == saved["surd_version"]


def test_a_stage_folder_or_an_empty_folder_is_refused_with_the_fix(run, tmp_path):
    with pytest.raises(ValueError, match="no stage with finished shards"):
        read_run(run.final.path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_run(tmp_path / "nope")
