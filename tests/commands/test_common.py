"""What every command shares (surd.commands.common): result reports and one-line errors with exit codes."""

from __future__ import annotations

import pytest
import typer

from surd.commands.common import fail, report
from surd.runner import RunResult


def _result(**kw) -> RunResult:
    stats = {"in": 10, "kept": 7, "shards": 3, "rejected": {"decode_error": 2, "too_small": 1}}
    return RunResult(output_dir="runs/x/00_ingest", stats=stats, **kw)


def test_report_prints_totals_and_every_reject_reason(capsys):
    report(_result(done=["00000", "00001"], skipped=["00002"]))
    out = capsys.readouterr().out
    assert "runs/x/00_ingest: 7 kept of 10 in 3 shards (2 written, 1 already done)" in out
    assert "rejected decode_error: 2" in out and "rejected too_small: 1" in out


def test_failed_shards_exit_1_grouped_by_error(capsys):
    failed = {f"{i:05d}": "RuntimeError: disk full" for i in range(10)} | {"00042": "ValueError: bad row"}
    with pytest.raises(typer.Exit) as info:
        report(_result(failed=failed))
    assert info.value.exit_code == 1
    err = capsys.readouterr().err
    assert "11 shard(s) failed after retries (rerun the same command to retry them)" in err
    assert "00000, 00001, 00002, 00003, 00004, 00005, 00006, 00007 and 2 more: RuntimeError: disk full" in err
    assert "00042: ValueError: bad row" in err


def test_fail_prints_one_line_and_exits_2(capsys):
    with pytest.raises(typer.Exit) as info:
        fail("no such file: pass --out")
    assert info.value.exit_code == 2
    assert capsys.readouterr().err.strip() == "error: no such file: pass --out"
