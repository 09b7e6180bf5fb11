"""Review import planning (surd.review.importer): decision files checked against the dataset before anything runs."""

from __future__ import annotations

import json

import pytest

from surd import shards
from surd.review.importer import dataset_keys, plan_import
from surd.review.records import DecisionError


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "ds"
    shards.write_shard(d, "00000", [{"__key__": f"k{i}", "json": {"i": i}} for i in range(3)])
    shards.write_shard(d, "00001", [{"__key__": "k3", "json": {}}])
    return d


def _decisions(path, decisions):
    path.write_text(json.dumps({"format": "surd-review-decisions", "version": 1, "decisions": decisions}))
    return path


def test_plan_import_gives_the_review_stage_config(dataset, tmp_path):
    assert dataset_keys(dataset) == {"k0", "k1", "k2", "k3"}
    f = _decisions(tmp_path / "d.json", {"k0": {"decision": "accept"}, "k3": {"decision": "reject", "note": "blurry"}})
    plan = plan_import(dataset, [f], undecided="keep", progress=False)
    assert plan.config is not None and plan.config.decisions == (str(f.resolve()),)
    assert plan.config.undecided == "keep" and len(plan.config.digest) == 64 and not plan.pending


def test_decisions_for_keys_outside_the_dataset_stop_the_import(dataset, tmp_path):
    f = _decisions(tmp_path / "d.json", {"nope": {"decision": "accept"}})
    with pytest.raises(DecisionError, match="not in the dataset"):
        plan_import(dataset, [f], progress=False)
    with pytest.raises(FileNotFoundError):
        plan_import(dataset, [tmp_path / "missing.json"], progress=False)
