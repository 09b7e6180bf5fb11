"""`surd verify`: exit 0 on a sound run, 1 naming each problem, --json for scripts, 2 for a path that is not there."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from surd.cli import app
from tests.test_audit import _stage

runner = CliRunner()


def test_verify_a_sound_run_then_a_broken_one(tmp_path):
    run = tmp_path / "run"
    _stage(run / "00_ingest", drop_last=1)
    _stage(run / "01_next", per=2)
    ok = runner.invoke(app, ["verify", str(run)])
    assert ok.exit_code == 0, ok.output
    assert "00_ingest" in ok.output and "01_next" in ok.output and "ok" in ok.output
    doc = json.loads(runner.invoke(app, ["verify", str(run), "--json"]).output)
    assert doc["ok"] is True and [s["kept"] for s in doc["stages"]] == [6, 6] and doc["across"] == []
    tar = run / "01_next" / "00002.tar"
    tar.write_bytes(tar.read_bytes()[:-2048])
    (run / "00_ingest" / "00001.stats.json").unlink()
    bad = runner.invoke(app, ["verify", str(run)])
    assert bad.exit_code == 1
    assert "01_next/00002.tar does not match its stats marker (size" in bad.output
    assert "00_ingest: 00001.tar has no stats marker" in bad.output
    assert "01_next: has no shard 00001" not in bad.output  # the cross check names the side that lacks it
    res = runner.invoke(app, ["verify", str(run), "--json"])
    doc = json.JSONDecoder().raw_decode(res.output)[0]  # the report first; the problems follow on stderr
    assert res.exit_code == 1 and doc["ok"] is False and doc["stages"][0]["problems"]


def test_verify_a_missing_path_exits_2(tmp_path):
    res = runner.invoke(app, ["verify", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output
