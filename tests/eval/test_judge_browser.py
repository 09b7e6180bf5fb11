"""The judging page in a real headless Chromium: yes / no / can't tell by keyboard (with an undo), served (every
answer journaled) and from file:// (browser storage + Export), then imported: the people column and the table of each
judge against people fill in."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from typer.testing import CliRunner  # noqa: E402

from surd.cli import app  # noqa: E402
from surd.eval.judge import KEY_NAME, JudgeState, export_judge  # noqa: E402
from surd.review.journal import read_journal  # noqa: E402
from surd.review.server import make_server  # noqa: E402
from tests.eval.test_judge import run  # noqa: E402,F401
from tests.review.test_server_browser import CHROMEDRIVER, CHROMIUM, browser, press, wait_for  # noqa: E402,F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                       reason="needs Debian's chromium + chromium-driver: apt-get install -y chromium chromium-driver"),
]
KEYS = {"y": "yes", "1": "yes", "n": "no", "2": "no", "s": "skip"}


def judge_by_keyboard(driver, rater: str, pattern: str) -> dict[str, str]:
    """Enter a name and answer every image with the keys of *pattern* in turn (after a mistake on the second image,
    undone with U); returns item id → answer."""
    wait_for(driver, "document.body.dataset.ready === '1'")
    driver.find_element("id", "rater").send_keys(rater + "\n")
    ids = driver.execute_script("return SURD_JUDGE.items.map(p => p.id)")
    wait_for(driver, f"document.body.dataset.item === '{ids[0]}'")
    assert driver.find_element("id", "checks").text  # what to check is on screen
    expected = {}
    for i, item in enumerate(ids):
        wait_for(driver, f"document.body.dataset.item === '{item}'")
        if i == 1:
            press(driver, "y", "u")  # a mistake, taken back: the image is shown again
            wait_for(driver, f"document.body.dataset.item === '{item}'")
        k = pattern[i % len(pattern)]
        press(driver, k)
        expected[item] = KEYS[k]
    wait_for(driver, "document.body.dataset.done === '1'")
    return expected


def test_served_judging_round_trip_fills_the_kappa_table(run, browser, tmp_path):  # noqa: F811
    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_judge(out, tmp_path / "site")
    server = make_server(tmp_path / "site", port=0, state_class=JudgeState)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        browser.get(url)
        ann = judge_by_keyboard(browser, "Ann Rater", "yn1s2")
        assert "saved to the judging server" in browser.find_element("id", "mode").text
        wait_for(browser, "!SURD_JUDGE_STATE.save.dirty && !SURD_JUDGE_STATE.save.inFlight && "
                          "document.getElementById('save-status').dataset.state === 'saved'")
        browser.get(url)
        bob = judge_by_keyboard(browser, "bob", "y")
        wait_for(browser, "!SURD_JUDGE_STATE.save.dirty && !SURD_JUDGE_STATE.save.inFlight && "
                          "document.getElementById('save-status').dataset.state === 'saved'")
        browser.get(url)  # reload: Ann's answers come back from the server, nothing left to answer but her skips
        wait_for(browser, "document.body.dataset.ready === '1'")
        browser.find_element("id", "rater").send_keys("Ann Rater\n")
        skipped = [k for k, a in ann.items() if a == "skip"]
        wait_for(browser, f"document.body.dataset.item === '{skipped[0]}'")
    finally:
        server.shutdown()
        server.server_close()
    journal = read_journal(tmp_path / "site" / "decisions.jsonl")
    stored = {r["key"]: r["decision"] for r in journal.records}  # the last record per key
    assert stored == {f"{k}|Ann Rater": {"yes": "accept", "no": "reject"}[a] for k, a in ann.items() if a != "skip"} | {
        f"{k}|bob": "accept" for k in bob}
    res = CliRunner().invoke(app, ["eval", "judge", "import", str(out), str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    human = json.loads((out / "results.json").read_text())["human"]
    # Bob says yes to all: an image has a majority where Ann said yes too, or only Bob voted (Ann couldn't tell);
    # where Ann said no it is a tie, and no verdict.
    agreed = [k for k, a in ann.items() if a != "no"]
    assert human["raters"] == ["Ann Rater", "bob"] and human["images"] == len(agreed) > 0
    assert human["judges"]["vqa"]["n"] == len(agreed)
    html = (out / "report.html").read_text()
    assert "The judges against people" in html and "accuracy vs people %" in html and "Cohen's κ" in html


def test_file_mode_judging_round_trip(run, browser, tmp_path):  # noqa: F811
    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_judge(out, tmp_path / "site")
    browser.get((tmp_path / "site" / "index.html").as_uri())
    expected = judge_by_keyboard(browser, "cy", "ny2")
    assert "file mode" in browser.find_element("id", "mode").text
    browser.refresh()  # reload: answers come back from browser storage
    wait_for(browser, "document.body.dataset.ready === '1'")
    browser.find_element("id", "rater").send_keys("cy\n")
    wait_for(browser, "document.body.dataset.done === '1'")
    browser.find_element("id", "export").click()
    deadline = time.monotonic() + 20
    files = []
    while time.monotonic() < deadline and not files:
        files = [p for p in browser.downloads.glob("answers-*.json") if p.stat().st_size > 0]
        time.sleep(0.1)
    assert files, "the Export button produced no download"
    doc = json.loads(files[0].read_text())
    assert {k: v["answer"] for k, v in doc["answers"].items()} == expected
    res = CliRunner().invoke(app, ["eval", "judge", "import", str(out), str(files[0])])
    assert res.exit_code == 0, res.output
    key = json.loads((out / KEY_NAME).read_text())
    results = json.loads((out / "results.json").read_text())
    for m in ("baseline", "05_train_adapter"):
        mine = [expected[i] == "yes" for i, info in key["items"].items() if info["model"] == m]
        h = results["per_type"]["all"]["models"][m]["judges"]["human"]
        assert (h["k"], h["n"]) == (sum(mine), len(mine))
