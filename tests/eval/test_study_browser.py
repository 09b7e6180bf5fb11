"""The preference study page in a real headless Chromium: blind pairs answered by keyboard, served (answers saved to
disk as given) and from file:// (browser storage + Export), then imported into the report."""

from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("pyiqa")

from typer.testing import CliRunner  # noqa: E402

from surd.cli import app  # noqa: E402
from surd.eval.study import KEY_NAME, StudyState, export_study  # noqa: E402
from surd.review.server import make_server  # noqa: E402
from tests.eval.test_evaluate import PROMPTS, eval_args  # noqa: E402
from tests.review.test_server_browser import CHROMEDRIVER, CHROMIUM, browser, press, wait_for  # noqa: E402,F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                       reason="needs Debian's chromium + chromium-driver: apt-get install -y chromium chromium-driver"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Images of a baseline and an (untrained, non-zero) adapter: all a study needs; CLIP is the only metric."""
    import torch

    from surd.adapter.config import AdapterConfig
    from surd.adapter.model import SURAdapter

    root = tmp_path_factory.mktemp("eval_study")
    torch.manual_seed(0)
    adapter = SURAdapter(AdapterConfig(text_dim=32, llm_dim=16, ff_dim=64, eta=0.5))
    with torch.no_grad():
        adapter.g.weight.normal_(0, 0.5)
    adapter.save_pretrained(root / "05_train_adapter")
    (root / "prompts.json").write_text(json.dumps(PROMPTS))
    res = CliRunner().invoke(app, eval_args(root / "05_train_adapter", root / "eval", root / "prompts.json",
                                            "--metrics", "clip"))
    assert res.exit_code == 0, res.output
    return root


def answer_by_keyboard(driver, rater: str) -> dict[str, str]:
    """Enter a name, answer every pair (left, right, skip, a mistake undone with U); returns pair id → choice."""
    from selenium.webdriver.common.keys import Keys

    wait_for(driver, "document.body.dataset.ready === '1'")
    driver.find_element("id", "rater").send_keys(rater + "\n")
    n = driver.execute_script("return SURD_STUDY.pairs.length")
    ids = driver.execute_script("return SURD_STUDY.pairs.map(p => p.id)")
    wait_for(driver, f"document.body.dataset.pair === '{ids[0]}'")
    keys = {0: Keys.ARROW_LEFT, 1: "2", 2: "s"}
    expected = {}
    for i in range(n):
        k = keys.get(i, Keys.ARROW_RIGHT if i % 2 else "1")
        if i == 1:
            press(driver, "1", "u")  # a mistake, taken back: the pair is shown again and then answered "right"
            wait_for(driver, f"document.body.dataset.pair === '{ids[1]}'")
        press(driver, k)
        expected[ids[i]] = {Keys.ARROW_LEFT: "left", "1": "left", "2": "right", Keys.ARROW_RIGHT: "right",
                            "s": "skip"}[k]
    wait_for(driver, "document.body.dataset.done === '1'")
    return expected


def check_report(out, key: dict, answers: dict[str, str]) -> None:
    """The imported votes: the adapter wins when the side chosen was the adapter's, skips count for neither."""
    wins = sum(1 for pid, c in answers.items() if c != "skip" and key["pairs"][pid][c] != "baseline")
    votes = sum(1 for c in answers.values() if c != "skip")
    res = json.loads((out / "study_results.json").read_text())["adapters"]["05_train_adapter"]
    assert (res["wins"], res["n"]) == (wins, votes) and votes == len(answers) - 1
    assert f"1 rater(s), {votes} answers" in (out / "report.html").read_text()


def test_served_study_round_trip(run, browser, tmp_path):  # noqa: F811
    import shutil

    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_study(out, tmp_path / "site")
    server = make_server(tmp_path / "site", port=0, state_class=StudyState)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/")
        expected = answer_by_keyboard(browser, "Ann Rater")
        assert "saved to the study server" in browser.find_element("id", "mode").text
        wait_for(browser, "!SURD_STUDY_STATE.save.dirty && !SURD_STUDY_STATE.save.inFlight && "
                          "document.getElementById('save-status').dataset.state === 'saved'")
        saved = list((tmp_path / "site" / "answers").glob("*.json"))
        assert len(saved) == 1
        doc = json.loads(saved[0].read_text())
        assert doc["rater"] == "Ann Rater" and {k: v["choice"] for k, v in doc["answers"].items()} == expected
        browser.get(f"http://127.0.0.1:{server.server_port}/")  # reload: the rater's answers come back
        wait_for(browser, "document.body.dataset.ready === '1'")
        browser.find_element("id", "rater").send_keys("Ann Rater\n")
        wait_for(browser, "document.body.dataset.done === '1'")
    finally:
        server.shutdown()
        server.server_close()
    res = CliRunner().invoke(app, ["eval", "study", "import", str(out), str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    check_report(out, json.loads((out / KEY_NAME).read_text()), expected)


def test_file_mode_study_round_trip(run, browser, tmp_path):  # noqa: F811
    import shutil

    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_study(out, tmp_path / "site")
    browser.get((tmp_path / "site" / "index.html").as_uri())
    expected = answer_by_keyboard(browser, "bob")
    assert "file mode" in browser.find_element("id", "mode").text
    browser.refresh()  # reload: answers come back from browser storage
    wait_for(browser, "document.body.dataset.ready === '1'")
    browser.find_element("id", "rater").send_keys("bob\n")
    wait_for(browser, "document.body.dataset.done === '1'")
    browser.find_element("id", "export").click()
    deadline = time.monotonic() + 20
    files = []
    while time.monotonic() < deadline and not files:
        files = [p for p in browser.downloads.glob("answers-*.json") if p.stat().st_size > 0]
        time.sleep(0.1)
    assert files, "the Export button produced no download"
    assert {k: v["choice"] for k, v in json.loads(files[0].read_text())["answers"].items()} == expected
    res = CliRunner().invoke(app, ["eval", "study", "import", str(out), str(files[0])])
    assert res.exit_code == 0, res.output
    check_report(out, json.loads((out / KEY_NAME).read_text()), expected)
