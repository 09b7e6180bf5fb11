"""Review as a team: the journal (no lost update, conflicts, kill -9), access control, overlap, agreement, adjudication,
progress, and a load test with 20 concurrent clients."""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from surd.review import access
from surd.review.agreement import cohen_kappa
from surd.review.exporter import ExportConfig, assign_batches, export_review, write_site
from surd.review.journal import Change, Conflict, Journal, JournalError, make_header, read_journal
from surd.review.progress import IDLE_GAP, Tally
from surd.review.server import ServeConfig, make_server
from surd.shards import iter_dataset
from tests.review.test_review import JSON, cli, make_dataset, outcome, post, request

# ---------------------------------------------------------------------------------------------- helpers


@contextmanager
def running(review_dir: Path, cfg: ServeConfig | None = None):
    """An in-process server on a free loopback port; yields it."""
    server = make_server(review_dir, cfg=cfg or ServeConfig(port=0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def server_process(review_dir: Path, *args: str):
    """`surd review serve` in a subprocess; yields (process, port, first line printed)."""
    proc = subprocess.Popen([sys.executable, "-m", "surd", "review", "serve", str(review_dir), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + proc.stderr.read()
        yield proc, int(match.group(1)), line
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=20)


def fake_site(path: Path, n: int) -> list[str]:
    """A review site of n samples without images (data files only): enough for the server and the page."""
    rows = [{"key": f"{i:016x}", "ext": None, "thumb": False, "simple_prompt": f"thing {i}", "complex_prompt": "x",
             "simple_score": None, "complex_score": None} for i in range(n)]
    path.mkdir(parents=True)
    write_site(rows, path, ExportConfig(), {"dataset": str(path), "batch": 0, "batches": 1})
    return [r["key"] for r in rows]


def journal_lines(review_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (review_dir / "decisions.jsonl").read_text().splitlines()]


class Client:
    """One keep-alive HTTP connection (what a browser tab holds)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, changes: dict[str, tuple], reviewer: str) -> tuple[int, dict]:
        body = json.dumps({"reviewer": reviewer, "decisions": {k: {"decision": d, "note": n, "base": b}
                                                               for k, (d, n, b) in changes.items()}})
        self.conn.request("POST", "/api/decisions", body=body, headers=JSON)
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())


# ---------------------------------------------------------------------------------------------- the journal


def test_journal_no_lost_update_conflicts_and_explicit_undo(tmp_path):
    j = Journal(tmp_path, make_header("site", "review"))
    try:
        assert j.apply([Change("a", "accept", "", 0)], "alice") == ({"a": 1}, 1)
        assert j.apply([Change("b", "reject", "dark", 0)], "bob") == ({"b": 1}, 2)  # a stays: merged per key
        with pytest.raises(Conflict) as err:  # bob's tab saw a as never decided: refused, a's value returned
            j.apply([Change("c", "accept", "", 0), Change("a", "reject", "", 0)], "bob")
        assert err.value.current["a"]["decision"] == "accept" and err.value.current["a"]["reviewer"] == "alice"
        assert "c" not in j.current  # all or nothing
        assert j.apply([Change("a", "accept", "", 0)], "bob") == ({"a": 1}, 2)  # same value: a retry is a no-op
        assert j.apply([Change("a", "undecided", "", 1)], "alice") == ({"a": 2}, 3)  # undo is a value
        assert j.apply([Change("z", "undecided", "", 0)], "alice") == ({"z": 0}, 3)  # undoing nothing: no-op
    finally:
        j.close()
    lines = journal_lines(tmp_path)
    assert lines[0] == {"format": "surd-review-journal", "version": 1, "site_id": "site", "role": "review"}
    assert [(r["seq"], r["key"], r["decision"], r["reviewer"], r["rev"]) for r in lines[1:]] == [
        (1, "a", "accept", "alice", 1), (2, "b", "reject", "bob", 1), (3, "a", "undecided", "alice", 2)]
    snapshot = json.loads((tmp_path / "decisions.json").read_text())
    assert snapshot["seq"] == 3 and list(snapshot["decisions"]) == ["b"]  # only decided keys
    assert snapshot["decisions"]["b"]["note"] == "dark"


def test_torn_last_line_is_ignored_and_cut_off(tmp_path):
    j = Journal(tmp_path, make_header())
    j.apply([Change("a", "accept", "", 0), Change("b", "reject", "", 0)], "alice")
    j.close()
    good = (tmp_path / "decisions.jsonl").read_bytes()
    with open(tmp_path / "decisions.jsonl", "ab") as f:
        f.write(b'{"seq": 3, "key": "c", "decision": "acc')  # the writer died mid-line: never acknowledged
    data = read_journal(tmp_path / "decisions.jsonl")
    assert data.seq == 2 and set(data.current) == {"a", "b"}
    j = Journal(tmp_path, make_header())  # opening for writing cuts the torn tail, then appends cleanly
    try:
        assert (tmp_path / "decisions.jsonl").read_bytes() == good
        assert j.apply([Change("c", "accept", "", 0)], "alice") == ({"c": 1}, 3)
    finally:
        j.close()
    assert [r["key"] for r in journal_lines(tmp_path)[1:]] == ["a", "b", "c"]

    with open(tmp_path / "decisions.jsonl", "ab") as f:
        f.write(b"\0" * 300 + b"\n")  # a crash on some filesystems leaves zeros, even a newline, at the end
    assert read_journal(tmp_path / "decisions.jsonl").seq == 3


def test_a_failed_fsync_stops_writes_instead_of_acknowledging(dataset_site, monkeypatch):
    rev, keys = dataset_site
    from surd.review import journal as journal_module

    with running(rev) as server:
        port = server.server_port
        assert post(port, {keys[0]: ("accept", "", 0)})[0] == 200

        def broken(fd):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(journal_module.os, "fsync", broken)
        status, body = post(port, {keys[1]: ("accept", "", 0)})
        assert status == 503 and "No space left" in body["error"]
        monkeypatch.undo()
        assert post(port, {keys[2]: ("accept", "", 0)})[0] == 503  # memory may be ahead of the disk: fail stop
        assert request(port, "GET", "/api/decisions")[0] == 503
    with running(rev) as server:  # a restart reloads the truth from disk
        assert post(server.server_port, {keys[2]: ("accept", "", 0)})[0] == 200
    assert read_journal(rev / "decisions.jsonl").current[keys[0]]["decision"] == "accept"


def test_journal_edited_in_the_middle_is_an_error_naming_the_line(tmp_path):
    j = Journal(tmp_path, make_header())
    j.apply([Change("a", "accept", "", 0)], "alice")
    j.apply([Change("a", "reject", "", 1)], "alice")
    j.close()
    lines = (tmp_path / "decisions.jsonl").read_text().splitlines()
    (tmp_path / "decisions.jsonl").write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")
    with pytest.raises(JournalError, match="line 2: rev 2 of key 'a' should be 1"):
        read_journal(tmp_path / "decisions.jsonl")
    res = cli("review", "rebuild", str(tmp_path))
    assert res.exit_code == 2 and "line 2" in res.output


def test_old_site_decisions_become_the_journal_and_rebuild(dataset_site):
    """A site served by an older surd has only decisions.json: serving it keeps every decision."""
    rev, keys = dataset_site
    old = {"format": "surd-review-decisions", "version": 1,
           "decisions": {keys[0]: {"decision": "reject", "note": "old"}, keys[1]: {"decision": "accept", "note": ""}}}
    (rev / "decisions.json").write_text(json.dumps(old))
    with running(rev) as server:
        got = json.loads(request(server.server_port, "GET", "/api/decisions")[1])["decisions"]
        assert {k: (v["decision"], v["note"], v["rev"]) for k, v in got.items()} == {
            keys[0]: ("reject", "old", 1), keys[1]: ("accept", "", 1)}
        assert post(server.server_port, {keys[0]: ("accept", "", 1)})[0] == 200
    assert [(r["key"], r["rev"]) for r in journal_lines(rev)[1:]] == [(keys[0], 1), (keys[1], 1), (keys[0], 2)]
    snapshot = (rev / "decisions.json").read_text()
    (rev / "decisions.json").unlink()
    res = cli("review", "rebuild", str(rev))
    assert res.exit_code == 0 and "2 decisions, up to change 3" in res.output
    assert (rev / "decisions.json").read_text() == snapshot


@pytest.fixture
def dataset_site(tmp_path):
    keys = make_dataset(tmp_path / "data", 8, shards=1)
    export_review(tmp_path / "data", tmp_path / "rev", ExportConfig(thumb_size=32), progress=False)
    return tmp_path / "rev", sorted(keys)


def test_import_refuses_a_snapshot_behind_its_journal(dataset_site, tmp_path):
    rev, keys = dataset_site
    with running(rev, ServeConfig(port=0, snapshot_every=3600)) as server:
        assert post(server.server_port, {keys[0]: ("accept", "", 0)})[0] == 200
        stale = (rev / "decisions.json").read_text()  # the snapshot written at start, before the change
    (rev / "decisions.json").write_text(stale)
    res = cli("review", "import", str(tmp_path / "data"), str(rev / "decisions.json"), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "older than the journal" in res.output and "surd review rebuild" in res.output
    res = cli("review", "import", str(tmp_path / "data"), str(rev / "decisions.jsonl"), "--out", str(tmp_path / "o"),
              "--undecided", "keep")
    assert res.exit_code == 0, res.output
    assert len(outcome(tmp_path / "o")[0]) == 8


# ---------------------------------------------------------------------------------------------- access


def test_serving_beyond_loopback_without_a_token_is_refused(dataset_site):
    rev, keys = dataset_site
    # bound to every interface only to check the access logic; the client still connects through 127.0.0.1
    with running(rev, ServeConfig(host="0.0.0.0", port=0)) as server:
        port, token = server.server_port, server.state.token
        assert len(token) >= 32 and all(f"?token={token}" in u for u in server.urls())
        assert request(port, "GET", "/")[0] == 401
        assert request(port, "GET", "/data/index.js")[0] == 401
        assert request(port, "GET", "/api/decisions")[0] == 401
        assert post(port, {keys[0]: ("accept", "", 0)})[0] == 401
        assert post(port, {keys[0]: ("accept", "", 0)}, headers={"Authorization": "Bearer " + token[:-1] + "x"})[0] == 401
        status, _ = post(port, {keys[0]: ("accept", "", 0)}, headers={"Authorization": f"Bearer {token}"})
        assert status == 200

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # the shared URL: token → cookie
        conn.request("GET", f"/?token={token}")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 303 and resp.getheader("Location") == "/"
        cookie = resp.getheader("Set-Cookie")
        assert f"surd_review_{port}={token}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        cookie = cookie.split(";")[0]
        assert request(port, "GET", "/", headers={"Cookie": cookie})[0] == 200
        assert request(port, "GET", "/data/index.js", headers={"Cookie": cookie})[0] == 200
        assert request(port, "GET", "/", headers={"Cookie": f"surd_review_{port}=wrong"})[0] == 401

    with running(rev, ServeConfig(host="0.0.0.0", port=0, no_auth=True)) as server:  # explicitly no token
        assert server.state.token == "" and request(server.server_port, "GET", "/api/decisions")[0] == 200
    custom = "team-review-2024-secret"
    with running(rev, ServeConfig(host="127.0.0.1", port=0, token=custom)) as server:  # a token on loopback too
        assert request(server.server_port, "GET", "/")[0] == 401
        assert request(server.server_port, "GET", "/", headers={"Authorization": f"Bearer {custom}"})[0] == 200


def test_token_is_compared_in_constant_time(dataset_site, monkeypatch):
    rev, _ = dataset_site
    calls = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(access.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    with running(rev, ServeConfig(port=0, token="t" * 20)) as server:
        request(server.server_port, "GET", "/", headers={"Authorization": "Bearer guess"})
    assert calls == [(b"guess", b"t" * 20)]


@pytest.mark.parametrize("kwargs, message", [
    ({"token": "short"}, "at least 16 characters"),
    ({"token": "a" * 16 + " b"}, "letters, digits"),
    ({"token": "a" * 20, "no_auth": True}, "contradict"),
    ({"rate": 0}, "rate must be > 0"),
])
def test_serve_config_says_how_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ServeConfig(**kwargs)


def test_cli_serve_on_all_interfaces_prints_a_token_url(dataset_site):
    rev, keys = dataset_site
    with server_process(rev, "--host", "0.0.0.0") as (proc, port, line):
        token = re.search(r"\?token=([\w-]+)", line).group(1)
        assert "share with your team: http://" in proc.stdout.readline()
        assert request(port, "GET", "/api/decisions")[0] == 401
        assert request(port, "GET", "/api/decisions", headers={"Authorization": f"Bearer {token}"})[0] == 200


def test_writes_need_json_same_origin_and_bounded_bodies(dataset_site):
    rev, keys = dataset_site
    with running(rev, ServeConfig(port=0, max_body=2048)) as server:
        port = server.server_port
        body = json.dumps({"reviewer": "a", "decisions": {keys[0]: {"decision": "accept"}}}).encode()
        assert request(port, "POST", "/api/decisions", body, {"Content-Type": "text/plain"})[0] == 415
        assert request(port, "POST", "/api/decisions", body)[0] == 415  # a form post cannot set it
        for origin in ("http://evil.example", "null", f"http://localhost:{port + 1}"):
            assert post(port, {keys[0]: ("accept", "", 0)}, headers={"Origin": origin})[0] == 403, origin
        assert post(port, {keys[0]: ("accept", "", 0)}, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
        assert post(port, {keys[0]: ("accept", "", 0)}, headers={"Origin": f"http://127.0.0.1:{port}"})[0] == 200
        status, answer = post(port, {keys[1]: ("accept", "x" * 1999, 0)})
        assert status == 413 and "fewer changes" in answer["error"]
        # no Content-Length: refused before reading anything
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /api/decisions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 411")
        # a page fetched through a DNS name that rebinds to 127.0.0.1 is not answered without a token
        assert request(port, "GET", "/api/decisions", headers={"Host": f"evil.example:{port}"})[0] == 421
        assert request(port, "GET", "/api/decisions", headers={"Host": f"localhost:{port}"})[0] == 200
    assert [r["key"] for r in journal_lines(rev)[1:]] == [keys[0]]


def test_rate_limit_answers_429_with_retry_after(dataset_site):
    rev, keys = dataset_site
    with running(rev, ServeConfig(port=0, rate=0.5, burst=3)) as server:
        statuses = [request(server.server_port, "GET", "/api/status")[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.request("GET", "/api/decisions")
        resp = conn.getresponse()
        assert resp.status == 429 and int(resp.getheader("Retry-After")) >= 1
        assert request(server.server_port, "GET", "/index.html")[0] == 200  # page files are not API calls


# ---------------------------------------------------------------------------------------------- overlap export


def test_overlap_gives_a_deterministic_fraction_to_two_batches(tmp_path):
    keys = sorted(make_dataset(tmp_path / "data", 40, shards=2, size=32))
    res = export_review(tmp_path / "data", tmp_path / "rev", ExportConfig(split=3, overlap=0.25, thumb_size=32),
                        progress=False)
    batches = [json.loads((b / "site.json").read_text())["keys"] for b in res.batches]
    count = {k: sum(k in b for b in batches) for k in keys}
    assert res.shared == 10 and sorted(count.values()) == [1] * 30 + [2] * 10
    assert all(b == sorted(b) for b in batches) and {k for b in batches for k in b} == set(keys)
    for b, bkeys in zip(res.batches, batches):
        assert sorted(p.stem for p in (b / "images").iterdir()) == bkeys  # a shared image is in both batches
    again = [[r["key"] for r in b] for b in assign_batches([{"key": k} for k in keys], 3, 0.25)]
    assert again == batches  # the same every run
    assert json.loads((res.batches[0] / "site.json").read_text())["overlap"] == 0.25
    with pytest.raises(ValueError, match="--split 2 or more"):
        ExportConfig(overlap=0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ExportConfig(split=2, overlap=1.5)


# ---------------------------------------------------------------------------------------------- agreement


def test_cohen_kappa_by_hand_and_against_sklearn():
    # 6 both accept, 2 both reject, 1 accept/reject, 1 reject/accept:
    # p_o = 8/10; each rater accepts 7/10, so p_e = .7·.7 + .3·.3 = .58; κ = (.8 − .58) / (1 − .58) = .2 / .42 … = 0.5238
    pairs = [("accept", "accept")] * 6 + [("reject", "reject")] * 2 + [("accept", "reject"), ("reject", "accept")]
    assert cohen_kappa(pairs) == pytest.approx(0.22 / 0.42)
    assert math.isnan(cohen_kappa([("accept", "accept")] * 5))  # one class only: chance explains all, κ undefined
    assert cohen_kappa([("accept", "reject"), ("reject", "accept")]) == pytest.approx(-1.0)
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(5, 200)
        a = [rng.choice(["accept", "reject"]) for _ in range(n)]
        b = [x if rng.random() < 0.8 else rng.choice(["accept", "reject"]) for x in a]
        if len(set(a) | set(b)) < 2:
            continue
        assert cohen_kappa(list(zip(a, b))) == pytest.approx(metrics.cohen_kappa_score(a, b))


def decide_through_server(site: Path, decisions: dict[str, str], reviewer: str) -> None:
    with running(site) as server:
        status, body = post(server.server_port, {k: (d, f"{reviewer} says {d}", 0) for k, d in decisions.items()},
                            reviewer=reviewer)
        assert status == 200, body


def test_agreement_and_adjudication_end_to_end(tmp_path):
    """Two reviewers share half the samples; import reports agreement, and each --conflict rule settles the rest."""
    data = tmp_path / "data"
    keys = sorted(make_dataset(data, 16, shards=2, size=32))
    res = export_review(data, tmp_path / "rev", ExportConfig(split=2, overlap=0.5, thumb_size=32), progress=False)
    sites = [json.loads((b / "site.json").read_text())["keys"] for b in res.batches]
    shared = sorted(set(sites[0]) & set(sites[1]))
    assert len(shared) == 8
    # alice accepts everything but her first two keys; bob rejects the first three shared keys
    alice = {k: "reject" if i < 2 else "accept" for i, k in enumerate(sites[0])}
    bob = {k: "reject" if k in shared[:3] else "accept" for k in sites[1]}
    decide_through_server(res.batches[0], alice, "alice")
    decide_through_server(res.batches[1], bob, "bob")
    files = [str(b / "decisions.jsonl") for b in res.batches]
    pairs = [(alice[k], bob[k]) for k in shared]
    disagree = sorted(k for k in shared if alice[k] != bob[k])
    agree_pct = 100 * sum(a == b for a, b in pairs) / len(pairs)
    assert disagree

    res_err = cli("review", "import", str(data), *files, "--out", str(tmp_path / "err"))
    assert res_err.exit_code == 2 and not (tmp_path / "err").exists()
    assert "--conflict reject|accept|adjudicate" in res_err.output and "ed here but" in res_err.output
    assert f"{len(disagree)} sample(s) decided differently (agreement {agree_pct:.1f}% of 8" in res_err.output

    out = cli("review", "import", str(data), *files, "--out", str(tmp_path / "rej"), "--conflict", "reject")
    assert out.exit_code == 0, out.output
    assert f"agreement: {agree_pct:.1f}% of 8 paired decisions" in out.output
    assert f"Cohen's kappa {cohen_kappa(pairs):.3f}" in out.output
    assert f"{len(disagree)} disagreement(s): 0 adjudicated, {len(disagree)} settled by --conflict reject" in out.output
    kept, rejected = outcome(tmp_path / "rej")
    assert {k for k, (r, _) in rejected.items() if r == "manual_disagreement"} == set(disagree)
    assert "reviewers disagree: alice:" in rejected[disagree[0]][1]

    out = cli("review", "import", str(data), *files, "--out", str(tmp_path / "acc"), "--conflict", "accept")
    assert out.exit_code == 0, out.output
    kept, _ = outcome(tmp_path / "acc")
    assert set(disagree) <= kept

    adj = tmp_path / "adjudicate"
    out = cli("review", "import", str(data), *files, "--out", str(tmp_path / "final"), "--conflict", "adjudicate",
              "--adjudication", str(adj))
    assert out.exit_code == 3 and f"wrote an adjudication site with {len(disagree)} disagreement(s)" in out.output
    assert not (tmp_path / "final").exists()
    site = json.loads((adj / "site.json").read_text())
    assert site["keys"] == disagree and site["role"] == "adjudication"
    chunk = (adj / "data" / "chunk_0000.js").read_text()
    rows = json.loads(chunk[len("surdChunk(0, "):-len(");\n")])
    assert [sorted(o[0] for o in r["o"]) for r in rows] == [["alice", "bob"]] * len(disagree)

    decide_through_server(adj, {disagree[0]: "accept"}, "carol")  # carol decides one of them ...
    more = [*files, str(adj / "decisions.jsonl")]
    out = cli("review", "import", str(data), *more, "--out", str(tmp_path / "final"), "--conflict", "adjudicate",
              "--adjudication", str(adj))
    assert out.exit_code == 3 and f"still to decide with {len(disagree) - 1} disagreement(s)" in out.output
    with running(adj) as server:  # ... and the rest
        rest = {k: ("reject", "carol: no", 0) for k in disagree[1:]}
        assert post(server.server_port, rest, reviewer="carol")[0] == 200
    out = cli("review", "import", str(data), *more, "--out", str(tmp_path / "final"), "--conflict", "adjudicate",
              "--adjudication", str(adj))
    assert out.exit_code == 0, out.output
    assert f"{len(disagree)} disagreement(s): {len(disagree)} adjudicated" in out.output
    kept, rejected = outcome(tmp_path / "final")
    assert disagree[0] in kept and all(rejected[k] == ("manual_reject", "carol: no") for k in disagree[1:])
    record = next(s for s in iter_dataset(tmp_path / "final") if s["__key__"] == disagree[0])["json"]["stages"]["review"]
    assert record["reviewer"] == "carol" and record["settled_by"] == "adjudicated"
    agreed = next(s for s in iter_dataset(tmp_path / "final") if s["__key__"] == shared[-1])["json"]["stages"]["review"]
    assert agreed["reviewer"] == "alice, bob"
    assert len(kept) + len(rejected) == len(keys)


def test_csv_reviewer_column_names_who_decided(dataset_site, tmp_path):
    _, keys = dataset_site
    for name, decision in (("alice", "a"), ("bob", "r")):
        rows = [f"{k},{decision if k == keys[0] else 'a'},,{name}" for k in keys[:4]]
        (tmp_path / f"{name}.csv").write_text("key,decision,note,reviewer\n" + "\n".join(rows) + "\n")
    out = cli("review", "import", str(tmp_path / "data"), str(tmp_path / "alice.csv"), str(tmp_path / "bob.csv"),
              "--out", str(tmp_path / "o"), "--conflict", "reject", "--undecided", "keep")
    assert out.exit_code == 0, out.output
    assert "agreement: 75.0% of 4 paired decisions (3 agree), Cohen's kappa 0.000" in out.output
    kept, rejected = outcome(tmp_path / "o")
    assert rejected == {keys[0]: ("manual_disagreement", "reviewers disagree: alice: accept, bob: reject")}
    records = {s["__key__"]: s["json"]["stages"]["review"] for s in iter_dataset(tmp_path / "o")}
    assert records[keys[1]]["reviewer"] == "alice, bob" and records[keys[5]]["decision"] == "undecided"


# ---------------------------------------------------------------------------------------------- progress


def test_tally_counts_active_time_only():
    t = Tally()
    stamps = ["2024-05-01T10:00:00.000Z", "2024-05-01T10:00:30.000Z", "2024-05-01T10:01:30.000Z",  # 90 s of work
              "2024-05-01T12:00:00.000Z", "2024-05-01T12:00:30.000Z"]  # a break (> IDLE_GAP), then 30 s more
    for i, ts in enumerate(stamps):
        t.add({"reviewer": "alice", "time": ts, "key": f"k{i}", "decision": "accept"})
    t.add({"reviewer": "bob", "time": "2024-05-01T10:00:10.000Z", "key": "k9", "decision": "reject"})
    assert IDLE_GAP < 3600
    current = {f"k{i}": {"decision": "accept", "reviewer": "alice"} for i in range(4)}
    current["k9"] = {"decision": "reject", "reviewer": "bob"}
    report = t.report(current, n=10)
    alice = next(r for r in report["reviewers"] if r["name"] == "alice")
    assert alice["changes"] == 5 and alice["decided"] == 4 and alice["rate_per_hour"] == round(5 / (120 / 3600), 1)
    assert report["left"] == 5 and report["accepted"] == 4 and report["rejected"] == 1
    assert next(r for r in report["reviewers"] if r["name"] == "bob")["rate_per_hour"] is None  # under a minute


def test_status_cli_and_page_header_agree(tmp_path):
    make_dataset(tmp_path / "data", 12, shards=1, size=32)
    res = export_review(tmp_path / "data", tmp_path / "rev", ExportConfig(split=2, thumb_size=32), progress=False)
    b0 = res.batches[0]
    keys = json.loads((b0 / "site.json").read_text())["keys"]
    with running(b0) as server:
        post(server.server_port, {keys[0]: ("accept", "", 0), keys[1]: ("reject", "", 0)}, reviewer="alice")
        post(server.server_port, {keys[2]: ("accept", "", 0)}, reviewer="bob")
        header = json.loads(request(server.server_port, "GET", "/api/status")[1])
    out = cli("review", "status", str(tmp_path / "rev"), "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    site = doc["sites"][0]
    assert {k: site[k] for k in header if k != "seq"} == {k: header[k] for k in header if k != "seq"}
    assert site["decided"] == 3 and site["left"] == 3 and doc["total"]["left"] == 9
    assert [(r["name"], r["decided"], r["accepted"]) for r in site["reviewers"]] == [("alice", 2, 1), ("bob", 1, 1)]
    out = cli("review", "status", str(tmp_path / "rev"))
    assert "3 of 6 decided (2 accepted, 1 rejected), 3 left" in out.output and "all 2 batches: 3 of 12 decided" in out.output
    assert re.search(r"alice\s+2 decided \(1 accepted, 1 rejected\) · 2 changes", out.output)


# ---------------------------------------------------------------------------------------------- durability, load


def test_kill_9_loses_no_acknowledged_decision(tmp_path):
    keys = fake_site(tmp_path / "rev", 3000)
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(i: int) -> None:
        c = Client(port)
        for key in keys[i::8]:
            if stop.is_set():
                return
            try:
                status, body = c.post({key: ("reject" if len(key) % 2 else "accept", f"n{i}", 0)}, f"r{i}")
            except (OSError, http.client.HTTPException):
                return  # the server died under us: this one was never acknowledged
            if status == 200:
                with lock:
                    acked[key] = body["revs"][key]

    with server_process(tmp_path / "rev", "--rate", "100000") as (proc, port, _):
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests are in flight
        proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(acked) >= 300
    data = read_journal(tmp_path / "rev" / "decisions.jsonl")
    missing = [k for k in acked if k not in data.current]
    assert not missing, f"{len(missing)} acknowledged decisions lost: {missing[:5]}"
    with server_process(tmp_path / "rev") as (_, port, _):  # restart: every acknowledged decision is served again
        served = json.loads(request(port, "GET", "/api/decisions")[1])["decisions"]
    assert all(served[k]["rev"] == rev for k, rev in acked.items())
    print(f"kill -9 after {len(acked)} acknowledged decisions ({data.seq} in the journal): none lost")


def test_20_concurrent_clients_lose_nothing(tmp_path, record_property):
    """20 clients post 4,000 disjoint decisions, one per request; every one is in the journal and the snapshot."""
    n_clients, per_client = 20, 200
    keys = fake_site(tmp_path / "rev", n_clients * per_client)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        c = Client(port)
        mine = []
        for key in keys[i::n_clients]:
            t0 = time.perf_counter()
            try:
                status, body = c.post({key: ("accept" if i % 2 else "reject", f"client {i}", 0)}, f"reviewer{i:02d}")
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{key}: {exc!r}")
                return
            mine.append(time.perf_counter() - t0)
            if status != 200 or body["revs"] != {key: 1}:
                failures.append(f"{key}: {status} {body}")
        with lock:
            latencies.extend(mine)

    with server_process(tmp_path / "rev", "--rate", "100000") as (proc, port, _):
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        proc.send_signal(signal.SIGINT)  # Ctrl+C: the server writes its last snapshot
        assert proc.wait(timeout=30) == 0
    assert not failures, failures[:5]
    records = journal_lines(tmp_path / "rev")[1:]
    assert len(records) == len(keys) and {r["key"] for r in records} == set(keys)
    assert [r["seq"] for r in records] == list(range(1, len(keys) + 1))
    snapshot = json.loads((tmp_path / "rev" / "decisions.json").read_text())
    assert set(snapshot["decisions"]) == set(keys) and snapshot["seq"] == len(keys)
    for k, d in snapshot["decisions"].items():
        i = keys.index(k) % n_clients
        assert (d["decision"], d["reviewer"]) == ("accept" if i % 2 else "reject", f"reviewer{i:02d}")
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[math.ceil(0.99 * len(latencies)) - 1]
    record_property("p99_ms", round(p99 * 1000, 1))
    print(f"{len(keys)} decisions from {n_clients} concurrent clients in {wall:.1f}s "
          f"({len(keys) / wall:.0f}/s, each fsynced before its reply): p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert p99 < 5.0
