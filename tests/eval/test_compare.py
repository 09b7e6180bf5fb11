"""`surd eval compare` (surd.eval.compare): two evaluations side by side, and a note when they were not generated
the same way."""

from __future__ import annotations

import json

from surd.eval.compare import compare_runs, format_text
from surd.eval.report import QUALITY_NAMES


def _results(path, rate: float, seed: int = 0):
    metric = next(iter(QUALITY_NAMES))
    doc = {"config": {"base": "tiny", "steps": 2, "seed": seed}, "models": ["baseline"],
           "per_type": {"counting": {"models": {"baseline": {"semantic_accuracy": {"rate": rate},
                                                             "clipscore": {"mean": 21.5}}}, "paired_clip": {}}},
           "quality": {metric: {"models": {"baseline": {"mean": 0.25}}, "tests": {}}}}
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps(doc))
    return metric


def test_two_runs_side_by_side_with_their_generation_differences(tmp_path):
    metric = _results(tmp_path / "layer40", 0.5)
    _results(tmp_path / "layer60", 0.75, seed=1)
    result = compare_runs(tmp_path / "layer40", tmp_path / "layer60", tmp_path / "out")
    table = result["table"]
    assert table["semantic accuracy % · counting"] == {"baseline @ layer40": "50.0", "baseline @ layer60": "75.0"}
    assert table[QUALITY_NAMES[metric]]["baseline @ layer60"] == "0.250"
    assert result["generation_differs"] == ["seed"]  # not comparable as they stand: said, not hidden
    assert json.loads((tmp_path / "out" / "compare.json").read_text()) == result
    assert "seed" in format_text(result)
