"""surd review: export (site / Label Studio / CSV, split), the local server, decision parsing, the review stage, import."""

from __future__ import annotations

import csv
import http.client
import io
import json
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from surd.review.decisions import DecisionError, load_decisions
from surd.review.exporter import ExportConfig, export_review
from surd.review.server import make_server
from surd.sample import Rejected, make_key
from surd.shards import iter_dataset, read_sidecar, read_stats, shard_name, write_shard

# ---------------------------------------------------------------------------------------------- helpers


def make_dataset(path: Path, n: int, shards: int = 2, size: int = 64, scores: bool = True) -> list[str]:
    """A small surd dataset of n samples over `shards` shards; returns the keys in dataset order."""
    keys, per = [], -(-n // shards)
    for s in range(shards):
        items = []
        for i in range(s * per, min(n, (s + 1) * per)):
            key = make_key("test", str(i))
            buf = io.BytesIO()
            Image.new("RGB", (size, size), (i * 37 % 256, i * 91 % 256, i * 13 % 256)).save(buf, "JPEG", quality=80)
            meta = {"key": key, "source": "test", "source_id": str(i), "simple_prompt": f"a photo of thing {i}",
                    "complex_prompt": f"thing {i}, highly detailed, 8k, trending on artstation"}
            if scores:
                meta["stages"] = {"clip_filter": {"simple_score": 0.5 + (i % 10) / 100, "complex_score": 0.5 - (i % 10) / 100}}
            items.append({"__key__": key, "jpg": buf.getvalue(), "json": meta})
            keys.append(key)
        write_shard(path, shard_name(s), items)
    return keys


def decisions_doc(decisions: dict[str, tuple[str, str]]) -> dict:
    return {"format": "surd-review-decisions", "version": 1,
            "decisions": {k: {"decision": d, "note": n} for k, (d, n) in decisions.items()}}


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def read_js_global(path: Path, prefix: str) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(prefix)
    return json.loads(text[len(prefix):].rstrip().rstrip(";"))


def outcome(out: Path) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """(kept keys, {rejected key: (reason, detail)}) of a written dataset, and a check of in = kept + Σ rejected."""
    kept = {s["__key__"] for s in iter_dataset(out)}
    rejected = {}
    for stem, st in read_stats(out).items():
        assert st["in"] == st["kept"] + sum(st["rejected"].values())
        for row in read_sidecar(out, stem):
            if row["status"] == "rejected":
                rejected[row["key"]] = (row["reason"], row["detail"])
    return kept, rejected


def cli(*args: str):
    from surd.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[str]]:
    d = tmp_path / "data"
    return d, make_dataset(d, 10)


# ---------------------------------------------------------------------------------------------- export


def test_export_site_layout(dataset, tmp_path):
    d, keys = dataset
    res = export_review(d, tmp_path / "rev", ExportConfig(thumb_size=32, chunk_size=10), progress=False)
    rev = tmp_path / "rev"
    assert res.n == 10 and res.batches == [rev]
    for name in ("index.html", "app.js", "style.css", "site.json", "data/index.js", "data/chunk_0000.js"):
        assert (rev / name).is_file(), name
    index = read_js_global(rev / "data" / "index.js", "window.SURD_INDEX = ")
    assert index["keys"] == sorted(keys) and index["n"] == 10
    first = sorted(keys).index(make_key("test", "3"))
    assert index["scores"]["simple"][first] == pytest.approx(0.53)
    assert index["scores"]["complex"][first] == pytest.approx(0.47)
    text = (rev / "data" / "chunk_0000.js").read_text()
    assert text.startswith("surdChunk(0, ") and text.endswith(");\n")
    rows = json.loads(text[len("surdChunk(0, "):-len(");\n")])
    assert [r["k"] for r in rows] == sorted(keys)
    row = rows[first]
    assert row["s"] == "a photo of thing 3" and row["c"].startswith("thing 3,")
    originals = {s["__key__"]: s["jpg"] for s in iter_dataset(d)}
    assert (rev / row["i"]).read_bytes() == originals[row["k"]]  # the image is copied, never re-encoded
    with Image.open(rev / row["t"]) as th:
        assert max(th.size) <= 32
    assert json.loads((rev / "site.json").read_text())["keys"] == sorted(keys)


def test_export_tolerates_missing_scores_and_prompts(tmp_path):
    d = tmp_path / "data"
    make_dataset(d, 4, shards=1, scores=False)
    export_review(d, tmp_path / "rev", progress=False)
    index = read_js_global(tmp_path / "rev" / "data" / "index.js", "window.SURD_INDEX = ")
    assert index["scores"] is None


def test_export_refuses_a_non_empty_directory(dataset, tmp_path):
    (tmp_path / "rev").mkdir()
    (tmp_path / "rev" / "decisions.json").write_text("{}")
    with pytest.raises(FileExistsError, match="not empty"):
        export_review(dataset[0], tmp_path / "rev", progress=False)


def test_split_gives_disjoint_full_batches(dataset, tmp_path):
    d, keys = dataset
    res = export_review(d, tmp_path / "rev", ExportConfig(split=3), progress=False)
    assert [b.name for b in res.batches] == ["batch_00", "batch_01", "batch_02"]
    batches = [read_js_global(b / "data" / "index.js", "window.SURD_INDEX = ")["keys"] for b in res.batches]
    assert [len(b) for b in batches] == [4, 3, 3]
    assert sum(batches, []) == sorted(keys)  # contiguous in key order, disjoint, complete
    for b, bkeys in zip(res.batches, batches):
        assert sorted(p.stem for p in (b / "images").iterdir()) == bkeys
        assert sorted(p.stem for p in (b / "thumbs").iterdir()) == bkeys
        assert (b / "index.html").is_file()
    assert not (tmp_path / "rev" / ".staging").exists()
    assert "batch_01/index.html" in (tmp_path / "rev" / "index.html").read_text()


def test_undecodable_image_gets_no_thumbnail_but_is_exported(tmp_path):
    d = tmp_path / "data"
    write_shard(d, shard_name(0), [{"__key__": "badimage00000000", "jpg": b"not a jpeg",
                                    "json": {"simple_prompt": "x", "complex_prompt": "y"}}])
    export_review(d, tmp_path / "rev", progress=False)
    text = (tmp_path / "rev" / "data" / "chunk_0000.js").read_text()
    row = json.loads(text[len("surdChunk(0, "):-len(");\n")])[0]
    assert row["t"] == "" and (tmp_path / "rev" / row["i"]).read_bytes() == b"not a jpeg"  # the page shows the image


def test_export_5000_samples_is_fast(tmp_path, record_property):
    d = tmp_path / "data"
    make_dataset(d, 5000, shards=5, size=64)
    t0 = time.perf_counter()
    res = export_review(d, tmp_path / "rev", progress=False)
    seconds = time.perf_counter() - t0
    record_property("export_5000_seconds", round(seconds, 2))
    print(f"export of 5000 samples: {seconds:.2f}s")
    assert res.n == 5000 and len(list((tmp_path / "rev" / "data").glob("chunk_*.js"))) == 10
    assert seconds < 120, "export of 5,000 small samples should take seconds, not minutes"


# ---------------------------------------------------------------------------------------------- the review stage


@pytest.mark.parametrize("undecided", ["drop", "keep"])
def test_stage_run_applies_decisions(dataset, tmp_path, undecided):
    from surd.stages import review

    d, keys = dataset
    path = write_json(tmp_path / "dec.json", decisions_doc({keys[0]: ("accept", "fine"), keys[1]: ("reject", "blurry")}))
    out = list(review.run(iter_dataset(d), review.Config(decisions=(str(path),), undecided=undecided)))
    assert [o.key if isinstance(o, Rejected) else o["__key__"] for o in out] == keys  # one output per input, in order
    assert out[0]["json"]["stages"]["review"] == {"decision": "accept", "note": "fine", "files": ["dec.json"]}
    assert isinstance(out[1], Rejected) and (out[1].reason, out[1].detail) == ("manual_reject", "blurry")
    for o in out[2:]:
        if undecided == "drop":
            assert isinstance(o, Rejected) and o.reason == "manual_undecided"
        else:
            assert o["json"]["stages"]["review"]["decision"] == "undecided"


def test_stage_config_says_how_to_fix(tmp_path):
    from surd.stages.review import Config

    with pytest.raises(ValueError, match="at least one decisions file"):
        Config()
    with pytest.raises(ValueError, match="not found"):
        Config(decisions=(str(tmp_path / "nope.json"),))
    path = write_json(tmp_path / "d.json", decisions_doc({}))
    with pytest.raises(ValueError, match="undecided must be one of keep, drop, got 'maybe'"):
        Config(decisions=[str(path)], undecided="maybe")
    assert Config(decisions=[str(path)]).decisions == (str(path),)


# ---------------------------------------------------------------------------------------------- import


def test_import_writes_the_reviewed_dataset(dataset, tmp_path):
    d, keys = dataset
    a = write_json(tmp_path / "a.json", decisions_doc({keys[0]: ("reject", "off prompt"), keys[1]: ("accept", "")}))
    b = write_json(tmp_path / "b.json", decisions_doc({keys[2]: ("accept", ""), keys[1]: ("accept", "")}))
    res = cli("review", "import", str(d), str(a), str(b), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert "rejected manual_reject: 1" in res.output and "rejected manual_undecided: 7" in res.output
    kept, rejected = outcome(tmp_path / "out")
    assert kept == {keys[1], keys[2]}
    assert rejected[keys[0]] == ("manual_reject", "off prompt")
    assert {k for k, (r, _) in rejected.items() if r == "manual_undecided"} == set(keys[3:])
    cfg = json.loads((tmp_path / "out" / "_config.json").read_text())
    assert cfg["stage"] == "review" and len(cfg["config"]["decisions"]) == 2

    a.write_text(json.dumps(decisions_doc({keys[0]: ("accept", "")})))  # edited after the import
    res = cli("review", "import", str(d), str(a), str(b), "--out", str(tmp_path / "out"))
    assert res.exit_code != 0 and "different config" in str(res.exception)  # no silent skip of done shards
    assert outcome(tmp_path / "out")[1][keys[0]] == ("manual_reject", "off prompt")

    res = cli("review", "import", str(d), str(a), "--out", str(tmp_path / "keep"), "--undecided", "keep")
    assert res.exit_code == 0, res.output
    kept, rejected = outcome(tmp_path / "keep")
    assert kept == set(keys) and rejected == {}


BAD_FILES = {
    "not_json": ("{not json", "not valid JSON"),
    "wrong_format": (json.dumps({"decisions": {}}), "not a surd decision file"),
    "bad_version": (json.dumps({"format": "surd-review-decisions", "version": 9, "decisions": {}}), "unsupported version"),
    "bad_decision": (json.dumps(decisions_doc({"KEY0": ("maybe", "")})), "must be \"accept\" or \"reject\""),
    "bad_note": (json.dumps({"format": "surd-review-decisions", "version": 1,
                             "decisions": {"KEY0": {"decision": "accept", "note": 3}}}), "note must be a string"),
    "unknown_keys": (json.dumps(decisions_doc({"feedfacefeedface": ("accept", ""), "KEY0": ("accept", "")})),
                     "not in the dataset: feedfacefeedface"),
    "csv_missing_column": ("key,verdict\nKEY0,accept\n", "lacks column(s) ['decision']"),
    "csv_bad_value": ("key,decision,note\nKEY0,maybe,\n", "line 2: decision must be accept/reject"),
    "labelstudio_no_key": (json.dumps([{"id": 1, "data": {}, "annotations": []}]), "no data.key"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_import_rejects_bad_files_and_writes_nothing(dataset, tmp_path, case):
    d, keys = dataset
    text, message = BAD_FILES[case]
    bad = tmp_path / (f"{case}.csv" if case.startswith("csv") else f"{case}.json")
    bad.write_text(text.replace("KEY0", keys[0]))
    good = write_json(tmp_path / "good.json", decisions_doc({keys[1]: ("accept", "")}))
    res = cli("review", "import", str(d), str(good), str(bad), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2
    assert message in res.output
    if case != "unknown_keys":  # a per-file problem names the file; unknown keys are checked over all files
        assert str(bad) in res.output
    assert "nothing was written" in res.output
    assert not (tmp_path / "out").exists()


def test_conflicting_files_are_an_error(dataset, tmp_path):
    d, keys = dataset
    a = write_json(tmp_path / "a.json", decisions_doc({keys[0]: ("accept", "")}))
    b = write_json(tmp_path / "b.json", decisions_doc({keys[0]: ("reject", "")}))
    res = cli("review", "import", str(d), str(a), str(b), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2 and f"{keys[0]!r} is rejected here but accepted in {a}" in res.output
    assert "--conflict reject|accept|adjudicate" in res.output
    assert not (tmp_path / "out").exists()


def test_every_problem_is_listed_at_once(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("[")
    b = write_json(tmp_path / "b.json", {"format": "other"})
    with pytest.raises(DecisionError) as err:
        load_decisions([a, b])
    assert len(err.value.problems) == 2 and str(a) in err.value.problems[0] and str(b) in err.value.problems[1]


# ---------------------------------------------------------------------------------------------- Label Studio, CSV


def labelstudio_export(tasks: list[dict], answers: dict[str, tuple[str, str] | None]) -> list[dict]:
    """What Label Studio's JSON export looks like after annotating `tasks` (None = skipped / not annotated)."""
    out = []
    for t in tasks:
        ans = answers.get(t["data"]["key"])
        anns = []
        if ans is not None:
            result = [{"id": f"r{t['id']}", "from_name": "decision", "to_name": "image", "type": "choices",
                       "origin": "manual", "value": {"choices": [ans[0]]}}]
            if ans[1]:
                result.append({"id": f"n{t['id']}", "from_name": "note", "to_name": "image", "type": "textarea",
                               "origin": "manual", "value": {"text": [ans[1]]}})
            anns.append({"id": 100 + t["id"], "completed_by": 1, "result": result, "was_cancelled": False,
                         "ground_truth": False, "created_at": "2024-05-01T10:00:00.000000Z", "lead_time": 3.2,
                         "task": t["id"], "project": 7})
        out.append({"id": t["id"], "data": t["data"], "annotations": anns, "predictions": [], "meta": {},
                    "created_at": "2024-05-01T09:00:00.000000Z", "project": 7, "inner_id": t["id"]})
    return out


def test_labelstudio_round_trip(dataset, tmp_path):
    d, keys = dataset
    export_review(d, tmp_path / "ls", ExportConfig(format="labelstudio", image_url_prefix="/data/local-files/?d=ls/"),
                  progress=False)
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    assert [t["data"]["key"] for t in tasks] == sorted(keys)
    assert tasks[0]["data"]["image"].startswith("/data/local-files/?d=ls/images/")
    assert (tmp_path / "ls" / tasks[0]["data"]["image"].split("d=ls/")[1]).is_file()
    assert tasks[0]["data"]["simple_prompt"].startswith("a photo of thing")
    view = ET.fromstring((tmp_path / "ls" / "label_config.xml").read_text())
    choices = view.find("Choices")
    assert choices.get("name") == "decision" and choices.get("toName") == "image"
    assert [c.get("value") for c in choices.findall("Choice")] == ["accept", "reject"]
    assert view.find("Image").get("value") == "$image" and view.find("TextArea").get("name") == "note"

    by_key = {t["data"]["key"]: t for t in tasks}
    answers = {keys[0]: ("reject", "watermark"), keys[1]: ("reject", ""), **{k: ("accept", "") for k in keys[2:8]}}
    exported = labelstudio_export(tasks, answers)
    exported[[t["data"]["key"] for t in tasks].index(keys[8])]["annotations"] = [
        {"id": 1, "result": [{"from_name": "decision", "to_name": "image", "type": "choices",
                              "value": {"choices": ["reject"]}}], "was_cancelled": True}]  # a skip is not a decision
    path = write_json(tmp_path / "project-7-at-2024-05-01.json", exported)
    res = cli("review", "import", str(d), str(path), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    kept, rejected = outcome(tmp_path / "out")
    assert kept == set(keys[2:8])
    assert rejected == {keys[0]: ("manual_reject", "watermark"), keys[1]: ("manual_reject", ""),
                        **{k: ("manual_undecided", rejected[k][1]) for k in keys[8:]}}
    assert by_key[keys[0]]["id"] >= 1


def test_labelstudio_json_min_and_disagreement(tmp_path):
    problems: list[str] = []
    from surd.review.labelstudio import parse_export

    rows = [{"id": 1, "key": "k1", "image": "images/k1.jpg", "decision": "reject", "note": "dup", "annotator": 1},
            {"id": 2, "key": "k2", "image": "images/k2.jpg"}]
    got = parse_export(rows, "min.json", problems)
    assert problems == [] and {k: (v.decision, v.note) for k, v in got.items()} == {"k1": ("reject", "dup")}

    task = labelstudio_export([{"id": 1, "data": {"key": "k1"}}], {"k1": ("accept", "")})[0]
    task["annotations"] += labelstudio_export([{"id": 1, "data": {"key": "k1"}}], {"k1": ("reject", "")})[0]["annotations"]
    parse_export([task], "full.json", problems)
    assert len(problems) == 1 and "annotators disagree" in problems[0] and "full.json" in problems[0]


def test_csv_round_trip(dataset, tmp_path):
    d, keys = dataset
    export_review(d, tmp_path / "c", ExportConfig(format="csv"), progress=False)
    with open(tmp_path / "c" / "review.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["key"] for r in rows] == sorted(keys) and rows[0]["decision"] == ""
    assert (tmp_path / "c" / rows[0]["image"]).is_file() and float(rows[0]["simple_score"]) > 0
    for r in rows:  # a reviewer fills the sheet in: R / accept, one row left blank
        r["decision"] = {keys[0]: "R", keys[1]: ""}.get(r["key"], "accept")
        r["note"] = "too dark" if r["key"] == keys[0] else ""
    with open(tmp_path / "filled.csv", "w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = cli("review", "import", str(d), str(tmp_path / "filled.csv"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    kept, rejected = outcome(tmp_path / "out")
    assert kept == set(keys[2:])
    assert rejected[keys[0]] == ("manual_reject", "too dark") and rejected[keys[1]][0] == "manual_undecided"


# ---------------------------------------------------------------------------------------------- server


@pytest.fixture
def served(dataset, tmp_path):
    export_review(dataset[0], tmp_path / "rev", progress=False)
    server = make_server(tmp_path / "rev", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path / "rev", server.server_port, dataset[1]
    server.shutdown()
    server.server_close()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


JSON = {"Content-Type": "application/json"}


def post(port: int, changes: dict[str, tuple], reviewer: str | None = "alice", headers: dict | None = None):
    """POST changes {key: (decision, note, base)} as *reviewer*; returns (status, parsed body)."""
    body = {"format": "surd-review-decisions", "version": 1,
            "decisions": {k: {"decision": d, "note": n, "base": b} for k, (d, n, b) in changes.items()}}
    if reviewer is not None:
        body["reviewer"] = reviewer
    status, data = request(port, "POST", "/api/decisions", json.dumps(body).encode(), {**JSON, **(headers or {})})
    return status, json.loads(data)


def test_server_serves_site_files_only(served, tmp_path):
    rev, port, _ = served
    (tmp_path / "secret.txt").write_text("secret")
    (rev / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert request(port, "GET", "/")[0] == 200
    status, body = request(port, "GET", "/app.js")
    assert status == 200 and b"surdChunk" in body
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/images/", "/link.txt", "/data/../../secret.txt", "/nope"):
        status, body = request(port, "GET", path)
        assert status == 404 and b"secret" not in body, path


def test_server_merges_per_key_and_validates(served):
    rev, port, keys = served
    assert json.loads(request(port, "GET", "/api/decisions")[1])["decisions"] == {}
    status, body = post(port, {keys[0]: ("reject", "blurry", 0), keys[1]: ("accept", "", 0)})
    assert status == 200 and body["saved"] == 2 and body["revs"] == {keys[0]: 1, keys[1]: 1}
    # a second writer names only its own key: the first writer's decisions stay (the lost update of issue 17)
    assert post(port, {keys[2]: ("accept", "", 0)}, reviewer="bob")[0] == 200
    served_now = json.loads(request(port, "GET", "/api/decisions")[1])["decisions"]
    assert {k: (v["decision"], v["reviewer"], v["rev"]) for k, v in served_now.items()} == {
        keys[0]: ("reject", "alice", 1), keys[1]: ("accept", "alice", 1), keys[2]: ("accept", "bob", 1)}
    journal = (rev / "decisions.jsonl").read_text().splitlines()
    assert len(journal) == 4 and json.loads(journal[0])["format"] == "surd-review-journal"
    assert [json.loads(line)["key"] for line in journal[1:]] == [keys[0], keys[1], keys[2]]

    bad = [
        ({keys[0]: ("perhaps", "", 1)}, "alice", "decision must be"),
        ({"0123456789abcdef": ("accept", "", 0)}, "alice", "not in this review site"),
        ({keys[3]: ("accept", 3, 0)}, "alice", "note must be a string"),
        ({keys[3]: ("accept", "", -1)}, "alice", "base must be"),
        ({keys[3]: ("accept", "", 0)}, None, "reviewer must be a non-empty name"),
        ({keys[3]: ("accept", "", 0)}, "x" * 65, "keep it under 64"),
    ]
    for changes, reviewer, message in bad:
        status, body = post(port, changes, reviewer)
        assert status == 400 and message in body["error"], (changes, body)
    assert request(port, "POST", "/api/decisions", b"{nope", JSON)[0] == 400
    assert len((rev / "decisions.jsonl").read_text().splitlines()) == 4  # nothing written by a bad request


def test_serving_a_split_root_names_a_batch(dataset, tmp_path):
    export_review(dataset[0], tmp_path / "rev", ExportConfig(split=2), progress=False)
    with pytest.raises(FileNotFoundError, match="batch_00"):
        make_server(tmp_path / "rev", port=0)


def test_cli_export_and_serve(dataset, tmp_path):
    d, keys = dataset
    res = cli("review", "export", str(d), "--out", str(tmp_path / "rev"), "--split", "2", "--thumb-size", "64")
    assert res.exit_code == 0, res.output
    assert "exported 10 samples to 2 site batch(es)" in res.output and "surd review serve" in res.output
    res = cli("review", "export", str(d), "--out", str(tmp_path / "rev"))
    assert res.exit_code == 2 and "not empty" in res.output
    res = cli("review", "export", str(d), "--out", str(tmp_path / "bad"), "--format", "pdf")
    assert res.exit_code != 0 and "format must be one of site, labelstudio, csv" in str(res.exception)

    proc = subprocess.Popen([sys.executable, "-m", "surd", "review", "serve", str(tmp_path / "rev" / "batch_01"),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))
        assert "?token=" not in line  # loopback: no token unless asked for
        status, body = request(port, "GET", "/data/index.js")
        assert status == 200 and sorted(keys)[5] in body.decode()
        assert post(port, {sorted(keys)[5]: ("reject", "cli", 0)})[0] == 200
    finally:
        proc.terminate()  # SIGTERM: the server writes its last snapshot before exiting
        proc.wait(timeout=10)
    snapshot = json.loads((tmp_path / "rev" / "batch_01" / "decisions.json").read_text())
    assert snapshot["decisions"] == {sorted(keys)[5]: {"decision": "reject", "note": "cli", "reviewer": "alice",
                                                       "rev": 1, "time": snapshot["decisions"][sorted(keys)[5]]["time"]}}
    assert snapshot["format"] == "surd-review-decisions" and snapshot["version"] == 1 and snapshot["seq"] == 1


def test_split_batches_serve_and_import_together(dataset, tmp_path):
    """Two reviewers, one batch each, each saving through their own server; import merges both files."""
    d, keys = dataset
    res = export_review(d, tmp_path / "rev", ExportConfig(split=2), progress=False)
    batch_keys = [json.loads((b / "site.json").read_text())["keys"] for b in res.batches]
    for b, bkeys, other, name in zip(res.batches, batch_keys, reversed(batch_keys), ("alice", "bob")):
        server = make_server(b, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            assert post(server.server_port, {other[0]: ("accept", "", 0)})[0] == 400  # the other batch's key
            changes = {k: ("reject" if i == 0 else "accept", "", 0) for i, k in enumerate(bkeys)}
            assert post(server.server_port, changes, reviewer=name)[0] == 200
        finally:
            server.shutdown()
            server.server_close()
    files = [str(b / "decisions.json") for b in res.batches]
    res = cli("review", "import", str(d), *files, "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert "no sample was decided in two files" in res.output
    kept, rejected = outcome(tmp_path / "out")
    assert set(rejected) == {batch_keys[0][0], batch_keys[1][0]} and kept == set(keys) - set(rejected)
    reviewers = {s["__key__"]: s["json"]["stages"]["review"]["reviewer"] for s in iter_dataset(tmp_path / "out")}
    assert {reviewers[k] for k in batch_keys[0][1:]} == {"alice"} and {reviewers[k] for k in batch_keys[1][1:]} == {"bob"}
